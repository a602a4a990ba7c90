"""The Sink protocol, per-event outcomes, and the driver shared by every sink.

A sink only *classifies*: `send(events)` returns which events to retry and
which are rejected for good. The driver does everything else the same way for
all sinks: group incoming batches (count, bytes, time), bound concurrency,
back off and retry, write rejections to the dead-letter queue, and settle the
receipts only once every event's fate is known.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.acks import Receipt, Status
from pipeline.config import SinkConfig
from pipeline.dlq import DeadLetterQueue
from pipeline.errors import PermanentError
from pipeline.metrics import ComponentStats, Metrics
from pipeline.queues import BatchQueue
from pipeline.retry import Backoff

log = logging.getLogger("pipeline.sink")

Event = dict[str, Any]


@dataclass
class Outcome:
    """Result of one send: indices to retry and (index, reason) rejected; the rest delivered."""

    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    retry_reason: str = "item"

    @classmethod
    def delivered(cls) -> Outcome:
        return cls()


class Sink(Protocol):
    name: str

    async def start(self) -> None:
        """Connect and prepare (create topics, templates, tables)."""

    async def healthcheck(self) -> None:
        """Raise a descriptive error when the destination is unreachable."""

    async def send(self, events: list[Event]) -> Outcome:
        """Deliver events; raise TransientError to retry all, PermanentError to dead-letter all."""
        ...

    async def aclose(self) -> None:
        """Flush and release connections."""


def estimate_bytes(events: list[Event]) -> int:
    """A cheap size estimate for batching: the message plus a fixed overhead per event."""
    return sum(len(e.get("message") or "") for e in events) + 128 * len(events)


class SinkDriver:
    """Runs one sink: reads its queue, batches, sends with retry, dead-letters, settles."""

    def __init__(
        self,
        sink: Sink,
        config: SinkConfig,
        queue: BatchQueue,
        stats: ComponentStats,
        metrics: Metrics,
        dlq: DeadLetterQueue,
    ) -> None:
        self.sink = sink
        self.config = config
        self.queue = queue
        self.stats = stats
        self.metrics = metrics
        self.dlq = dlq
        self._slots = asyncio.Semaphore(config.max_in_flight)
        self._latency = metrics.sink_latency.labels(sink.name)
        self._batch_size = metrics.batch_events.labels(sink.name)
        self.in_flight = 0
        self.last_error: str | None = None

    async def run(self) -> None:
        opts = self.config.batch
        events: list[Event] = []
        receipts: list[Receipt] = []
        size = 0
        deadline: float | None = None
        async with asyncio.TaskGroup() as tasks:
            while True:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that lands as the get completes, which would hang shutdown.
                delay = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    async with asyncio.timeout(delay):
                        batch = await self.queue.get()
                except TimeoutError:
                    await self._dispatch(tasks, events, receipts)
                    events, receipts, size, deadline = [], [], 0, None
                    continue
                if batch is None:
                    break
                self.stats.events_in += len(batch.events)
                if not batch.events:
                    batch.receipt.settle()
                    continue
                events.extend(batch.events)
                receipts.append(batch.receipt)
                size += estimate_bytes(batch.events)
                if deadline is None:
                    deadline = time.monotonic() + opts.timeout
                if len(events) >= opts.max_events or size >= opts.max_bytes:
                    await self._dispatch(tasks, events, receipts)
                    events, receipts, size, deadline = [], [], 0, None
            if events:
                await self._dispatch(tasks, events, receipts)

    async def _dispatch(self, tasks: asyncio.TaskGroup, events: list[Event], receipts: list[Receipt]) -> None:
        if not events:
            return
        await self._slots.acquire()  # bound concurrency: the queue fills behind us
        self.in_flight += 1
        tasks.create_task(self._deliver(events, receipts))

    async def _deliver(self, events: list[Event], receipts: list[Receipt]) -> None:
        started = time.monotonic()
        status = Status.DELIVERED
        backoff = Backoff(self.config.retry.initial_backoff, self.config.retry.max_backoff)
        self._batch_size.observe(len(events))
        try:
            current = events
            while current:
                try:
                    outcome = await self.sink.send(current)
                except PermanentError as exc:
                    outcome = Outcome(rejected=[(i, str(exc)) for i in range(len(current))])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # transient or unexpected: retry the whole send
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self.stats.retry("error")
                    delay = backoff.next_delay()
                    log.warning(
                        "sink send failed, retrying",
                        extra={
                            "component": self.sink.name,
                            "error": self.last_error,
                            "attempt": backoff.attempts,
                            "retry_in_s": round(delay, 3),
                        },
                    )
                    await asyncio.sleep(delay)
                    continue
                self.last_error = None
                if outcome.rejected:
                    status = Status.REJECTED
                    bad = [current[i] for i, _ in outcome.rejected]
                    # A blocking fsync, off the loop.
                    await asyncio.to_thread(
                        self.dlq.write, self.sink.name, bad, [reason for _, reason in outcome.rejected]
                    )
                    self.stats.dead_lettered += len(bad)
                    self.stats.events_failed += len(bad)
                self.stats.events_out += len(current) - len(outcome.retry) - len(outcome.rejected)
                if not outcome.retry:
                    break
                self.stats.retry(outcome.retry_reason, len(outcome.retry))
                current = [current[i] for i in outcome.retry]
                await asyncio.sleep(backoff.next_delay())
            for receipt in receipts:
                receipt.settle(status)
        finally:
            self.in_flight -= 1
            self._slots.release()
            self._latency.observe(time.monotonic() - started)
