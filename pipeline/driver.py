"""The sink driver: runs one sink, the same way for every sink.

It starts the sink (retrying until it can), reads the sink's input queue,
groups batches into sends (`pipeline.batching`), bounds concurrent sends
(`max_in_flight`), retries failed sends and items with backoff, writes
rejected events to the dead-letter queue, and settles the receipts once every
event's fate is known. The sink itself only delivers and classifies
(`pipeline.sink`), like Vector's `Driver` over a `Service`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from pipeline.acks import Status
from pipeline.batching import Batcher, Group, grouped
from pipeline.config import SinkConfig
from pipeline.dlq import DeadLetterQueue
from pipeline.errors import ConfigError, StartError, TransientError
from pipeline.event import Batch, Events, as_list
from pipeline.logs import component_log
from pipeline.metrics import ComponentStats, Metrics
from pipeline.queues import BatchQueue
from pipeline.retry import Backoff
from pipeline.sink import Outcome, Sink

_log = logging.getLogger(__name__)


def describe_error(exc: BaseException) -> str:
    """`Type: message` (or the type alone), as the API and logs show a failure."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SinkDriver:
    """Runs one sink: starts it, reads its queue, batches, sends with retry, dead-letters, settles."""

    def __init__(
        self,
        sink: Sink,
        config: SinkConfig,
        queue: BatchQueue,
        stats: ComponentStats,
        metrics: Metrics,
        dlq: DeadLetterQueue,
        once: bool = False,
    ) -> None:
        self.sink = sink
        self.once = once
        self._takes_encoded = bool(getattr(sink, "accepts_encoded", False))
        self.config = config
        self.queue = queue
        self.stats = stats
        self.dlq = dlq
        self.log = component_log(_log, sink.name)
        self._slots = asyncio.Semaphore(config.max_in_flight)
        self._latency = metrics.sink_latency.labels(sink.name)
        self._batch_size = metrics.batch_events.labels(sink.name)
        self.in_flight = 0
        self.started = False
        # Set when the topology stops: a sink still failing to start gives up then (its
        # batches stay unsettled and are read again after the restart).
        self.stopping = asyncio.Event()
        self._batcher: Batcher | None = None
        self._unsettled: dict[int, float] = {}  # id(group) -> when its first batch arrived
        self.last_error: str | None = None

    async def start(self) -> None:
        """Start the sink, retrying with backoff until it can.

        A StartError (the destination refuses our setup) ends a `--once` run; a daemon
        logs it at error level and keeps retrying, since an operator may fix it.
        """
        backoff = self._backoff()
        while True:
            try:
                await self.sink.start()
                break
            except ConfigError:
                raise
            except asyncio.CancelledError:
                raise
            except StartError as exc:
                exc.component = self.sink.name
                if self.once:
                    raise
                self.last_error = str(exc)
                self.stats.retry("start")
                self.log.error(
                    "sink cannot start: the destination refuses its setup; retrying",
                    extra={"error": self.last_error, "attempt": backoff.attempts + 1},
                )
            except Exception as exc:
                self._failed(exc, "sink start failed, retrying", "start", backoff)
            if await self._stopped_within(backoff.next_delay()):
                return
        self.started = True
        self.last_error = None

    async def _stopped_within(self, delay: float) -> bool:
        try:
            async with asyncio.timeout(delay):
                await self.stopping.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """Deliver everything the queue holds until its producers close it."""
        opts = self.config.batch
        self._batcher = batcher = Batcher(opts.max_events, opts.max_bytes, opts.timeout)
        async with asyncio.TaskGroup() as tasks:
            async for group in grouped(self.queue, batcher, self._received):
                self._unsettled[id(group)] = group.since
                await self._slots.acquire()  # bound concurrency: the queue fills behind us
                self.in_flight += 1
                tasks.create_task(self._deliver(group))

    def oldest_unsettled_age(self) -> float | None:
        """Seconds since the oldest batch this sink holds (waiting to be grouped or in flight) arrived."""
        times = list(self._unsettled.values())
        if self._batcher is not None and self._batcher.since is not None:
            times.append(self._batcher.since)
        return time.monotonic() - min(times) if times else None

    async def start_and_run(self) -> None:
        """The sink's whole life in a topology: start, deliver until the end, close on every path."""
        try:
            await self.start()
            if self.started:
                await self.run()
            else:
                self.log.warning(
                    "stopping before the sink ever started: its batches stay unsettled and are "
                    "read again after the restart"
                )
        finally:
            await self.sink.aclose()

    def _received(self, batch: Batch) -> None:
        self.stats.events_in += len(batch.events)

    def _backoff(self) -> Backoff:
        return Backoff(self.config.retry.initial_backoff, self.config.retry.max_backoff)

    def _failed(self, exc: Exception, message: str, outcome: str, backoff: Backoff) -> None:
        self.last_error = describe_error(exc)
        self.stats.retry(outcome)
        extra = {"error": self.last_error, "attempt": backoff.attempts + 1}
        # An expected failure (server down) is one line; anything else is probably a bug:
        # keep its traceback, once per failing send.
        trace = not isinstance(exc, TransientError) and backoff.attempts == 0
        self.log.warning(message, extra=extra, exc_info=exc if trace else None)

    async def _deliver(self, group: Group) -> None:
        started = time.monotonic()
        status = Status.DELIVERED
        backoff = self._backoff()
        self._batch_size.observe(len(group.events))
        try:
            # Encoded events go as they are to a sink that writes bytes; the others get dicts.
            current: Events = group.events if self._takes_encoded else as_list(group.events)
            while current:
                try:
                    outcome = await self.sink.send(current)  # type: ignore[arg-type]
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # nothing known delivered: retry the whole send
                    self._failed(exc, "sink send failed, retrying", "error", backoff)
                    await asyncio.sleep(backoff.next_delay())
                    continue
                self.last_error = None
                if outcome.rejected:
                    status = Status.REJECTED
                    await self._dead_letter(current, outcome, backoff)
                self.stats.events_out += len(current) - len(outcome.retry) - len(outcome.rejected)
                if not outcome.retry:
                    break
                self.stats.retry(outcome.retry_reason, len(outcome.retry))
                current = [current[i] for i in outcome.retry]
                await asyncio.sleep(backoff.next_delay())
            for receipt in group.receipts:
                receipt.settle(status)
        finally:
            self._unsettled.pop(id(group), None)
            self.in_flight -= 1
            self._slots.release()
            self._latency.observe(time.monotonic() - started)

    async def _dead_letter(self, events: Events, outcome: Outcome, backoff: Backoff) -> None:
        bad = [events[i] for i, _ in outcome.rejected]
        reasons = [reason for _, reason in outcome.rejected]
        while True:
            try:
                # A blocking fsync, off the loop; written before the receipts settle.
                await asyncio.to_thread(self.dlq.write, self.sink.name, bad, reasons)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a full disk: the events must reach the DLQ before they settle
                self._failed(exc, "dead-letter write failed, retrying", "dead_letter", backoff)
                await asyncio.sleep(backoff.next_delay())
        self.stats.dead_lettered += len(bad)
        self.stats.events_failed += len(bad)
