"""`kafka` source (processor role): consumer group -> batches; offsets committed only when released.

One batch per `getmany` result (it may span partitions). Its receipt carries,
per partition, the range [start, last + 1) it covers, where `start` is where
the previous batch of that partition ended, so offsets the broker skips
(compaction, transaction markers) never leave a gap. When the batch is
released, each partition's `Watermark` advances, and the contiguous released
position is committed soon after, at most once per `commit_interval`
(`pipeline/coalesce.py`), and at revocation and shutdown. Auto-commit is never
used: a committed offset always means "every record before it was settled".

Records that are not JSON objects go to the dead-letter queue with their
topic, partition and offset; they count as settled, so they never hold back
a commit.

Events from a foreign producer may lack what our agent always sets; decoding
completes them, the same way on every replay: no `@timestamp` -> the record's
Kafka timestamp, tagged `_ingest_timestamp`; no `log_type` -> the source's
`log_type`, else the record's `log_type` header, else `application` (every
sink's default); no `event_id` -> `<topic>-<partition>-<offset>`.

Rebalances: on revoke, wait (bounded) for the partitions' in-flight batches,
commit what was released, then drop their trackers; a late release for a
dropped tracker is ignored (each assignment gets a fresh tracker object, so a
tracker is its own generation). While `emit` is blocked by backpressure for
long, the assigned partitions are paused and the consumer is polled, so
aiokafka's max_poll_interval never makes this member leave the group.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from pipeline.acks import Receipt, Status
from pipeline.coalesce import Coalescer
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.event import Batch, Event
from pipeline.kafka_common import client_kwargs, describe_error, diagnose
from pipeline.logs import component_log
from pipeline.metrics import Metrics
from pipeline.registry import register
from pipeline.retry import Backoff
from pipeline.sources.base import SourceContext
from pipeline.sources.kafka_config import KafkaSourceConfig
from pipeline.sources.kafka_offsets import PartitionTracker, Ranges, releaser
from pipeline.sources.kafka_records import complete_event, dead_letter_record
from pipeline.tls import warn_if_unverified

log = logging.getLogger(__name__)

ConsumerFactory = Callable[..., Any]
# How long emit may block before the partitions are paused and the consumer polled to stay in the group.
PAUSE_AFTER_S = 5.0


class _Listener:
    """The rebalance callbacks aiokafka awaits, forwarded to the source."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.source.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.source.partitions_assigned(assigned)


# A virtual subclass: aiokafka checks isinstance, and the ABC is untyped (subclassing Any).
ConsumerRebalanceListener.register(_Listener)


class KafkaSource:
    can_acknowledge = True

    def __init__(
        self,
        name: str,
        config: KafkaSourceConfig,
        dlq: DeadLetterQueue,
        consumer_factory: ConsumerFactory = AIOKafkaConsumer,
    ) -> None:
        self.name = name
        self.log = component_log(log, name)
        self.config = config
        self.dlq = dlq
        self._client_kwargs = client_kwargs(config, name)  # ConfigError on unusable TLS / password files
        self._consumer_factory = consumer_factory
        self.consumer: Any = None
        self.trackers: dict[TopicPartition, PartitionTracker] = {}
        self._commit_lock = asyncio.Lock()
        self._committer = Coalescer(self.commit, config.commit_interval, self.log, "committing offsets")
        self._end_offsets: dict[TopicPartition, int] = {}

    # -- consumer lifecycle ------------------------------------------------
    def _new_consumer(self) -> Any:
        cfg = self.config
        consumer = self._consumer_factory(
            **self._client_kwargs,
            group_id=cfg.group_id,
            enable_auto_commit=False,
            auto_offset_reset=cfg.start_from,
            max_poll_records=cfg.max_batch_records,
            session_timeout_ms=int(cfg.session_timeout * 1000),
            heartbeat_interval_ms=int(cfg.heartbeat_interval * 1000),
            max_poll_interval_ms=int(cfg.max_poll_interval * 1000),
            # Members wait this long for each other to rejoin: leave room for our bounded revoke.
            rebalance_timeout_ms=int((cfg.session_timeout + cfg.revoke_timeout) * 1000),
            fetch_max_bytes=cfg.fetch_max_bytes,
        )
        if cfg.topics is not None:
            consumer.subscribe(topics=list(cfg.topics), listener=_Listener(self))
        else:
            consumer.subscribe(pattern=cfg.topic_pattern, listener=_Listener(self))
        return consumer

    async def _start(self, ctx: SourceContext) -> bool:
        """Start the consumer, retrying with backoff; False if shut down first."""
        backoff = Backoff(0.5, 30.0)
        warn_if_unverified(self.log, self.config.tls, ",".join(self.config.bootstrap_servers))
        while not ctx.shutdown.is_set():
            consumer = self._new_consumer()
            try:
                await consumer.start()
            except (KafkaError, OSError) as exc:
                await self._stop_consumer(consumer)
                delay = backoff.next_delay()
                refused = await diagnose(self._client_kwargs)
                if refused is not None:
                    # TLS or SASL refused: ends a --once run (exit 2); a daemon says so and retries.
                    refused.component, refused.section = self.name, "sources"
                    if ctx.once:
                        raise refused from None
                    self.log.error(
                        "kafka consumer cannot start: the broker refuses our TLS or credentials; retrying",
                        extra={"error": str(refused), "retry_in_s": round(delay, 3)},
                    )
                    await _sleep_or_shutdown(ctx, delay)
                    continue
                self.log.warning(
                    "kafka consumer cannot start, retrying",
                    extra={"error": describe_error(exc), "retry_in_s": round(delay, 3)},
                )
                await _sleep_or_shutdown(ctx, delay)
                continue
            self.consumer = consumer
            return True
        return False

    async def _stop_consumer(self, consumer: Any) -> None:
        try:
            await asyncio.wait_for(consumer.stop(), self.config.request_timeout)
        except Exception as exc:
            self.log.warning("kafka consumer stop failed", extra={"error": describe_error(exc)})

    # -- rebalance ---------------------------------------------------------
    async def partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        trackers = {tp: self.trackers[tp] for tp in revoked if tp in self.trackers}
        busy = [t.idle.wait() for t in trackers.values() if t.inflight]
        if busy:
            try:
                await asyncio.wait_for(asyncio.gather(*busy), self.config.revoke_timeout)
            except TimeoutError:
                self.log.warning(
                    "revoked partitions still have unsettled batches; the new owner consumes them again",
                    extra={"partitions": sorted(map(str, trackers))},
                )
        await self.commit(trackers)
        for tp, tracker in trackers.items():
            tracker.revoked = True
            if self.trackers.get(tp) is tracker:
                del self.trackers[tp]
            self._end_offsets.pop(tp, None)

    def partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.log.info(
            "kafka partitions assigned",
            extra={"partitions": sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned)},
        )

    # -- commits -----------------------------------------------------------
    async def commit(self, trackers: dict[TopicPartition, PartitionTracker] | None = None) -> bool:
        """Commit the released, contiguous position of each partition that moved; False if it failed."""
        consumer = self.consumer
        if consumer is None:
            return True
        trackers = dict(self.trackers) if trackers is None else trackers
        due = {
            tp: (t, t.watermark.position)
            for tp, t in trackers.items()
            if not t.revoked and t.watermark.position > t.committed
        }
        if not due:
            return True
        async with self._commit_lock:
            try:
                await consumer.commit({tp: OffsetAndMetadata(pos, "") for tp, (_, pos) in due.items()})
            except (KafkaError, OSError) as exc:
                # Not fatal: a later commit covers it; a crash meanwhile only replays settled records.
                self.log.warning("kafka offset commit failed", extra={"error": describe_error(exc)})
                return False
        for tracker, pos in due.values():
            tracker.committed = max(tracker.committed, pos)
        return True

    def register_metrics(self, metrics: Metrics) -> None:
        # The topology drops this registration when the source closes (owner = the source).
        metrics.gauge(
            "pipeline_kafka_consumer_lag",
            "Records of a partition not yet committed by the group (highwater - committed offset).",
            ["component", "topic", "partition"],
            self.lag_samples,
            owner=self,
        )

    def lag(self) -> tuple[str, dict[str, int]]:
        """For /status: records not yet committed per partition (`topic[partition]`)."""
        return "records", {
            f"{labels['topic']}[{labels['partition']}]": int(value) for labels, value in self.lag_samples()
        }

    def lag_samples(self) -> Iterator[tuple[dict[str, str], float]]:
        consumer = self.consumer
        if consumer is None:
            return
        for tp, tracker in list(self.trackers.items()):
            try:
                highwater = consumer.highwater(tp)
            except (AssertionError, KafkaError):  # revoked since the snapshot
                continue
            if highwater is not None:
                yield (
                    {"component": self.name, "topic": tp.topic, "partition": str(tp.partition)},
                    float(max(0, highwater - tracker.committed)),
                )

    # -- reading -----------------------------------------------------------
    async def run(self, ctx: SourceContext) -> None:
        if not await self._start(ctx):
            return
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._committer.run(), name=f"{self.name}:commit")
            try:
                await self._read(ctx)
            finally:
                self._committer.close()  # aclose() commits the rest, after the sinks drained

    async def _read(self, ctx: SourceContext) -> None:
        consumer = self.consumer
        cfg = self.config
        timeout_ms = int(cfg.fetch_timeout * 1000)
        backoff = Backoff(0.2, 10.0)
        if ctx.once and not await self._observe_end_offsets(ctx):
            return
        while not ctx.shutdown.is_set():
            if ctx.once and await self._reached_end():
                return
            try:
                records = await consumer.getmany(timeout_ms=timeout_ms, max_records=cfg.max_batch_records)
            except KafkaError as exc:
                delay = backoff.next_delay()
                self.log.warning("kafka poll failed, retrying", extra={"error": describe_error(exc)})
                await _sleep_or_shutdown(ctx, delay)
                continue
            backoff.reset()
            if records:
                await self._handle(ctx, records)

    async def _handle(self, ctx: SourceContext, records: dict[TopicPartition, list[Any]]) -> None:
        events, ranges, bad, reasons = self._decode(records, ctx)
        if bad:
            # Written (fsynced) before the range can be released: a dead-lettered record counts as settled.
            await asyncio.to_thread(self.dlq.write, self.name, bad, reasons)
            ctx.stats.dead_lettered += len(bad)
            ctx.stats.events_failed += len(bad)
        release = releaser(ranges)
        if not events:
            release(Status.REJECTED)
            return
        await self._emit(ctx, Batch(events, Receipt(release)))

    def _decode(
        self, records: dict[TopicPartition, list[Any]], ctx: SourceContext
    ) -> tuple[list[Event], Ranges, list[dict[str, Any]], list[str]]:
        """One loop over the records: decode, stamp `source`, and note each partition's range."""
        events: list[Event] = []
        ranges: Ranges = []
        bad: list[dict[str, Any]] = []
        reasons: list[str] = []
        loads = orjson.loads
        log_type = self.config.log_type
        nbytes = 0
        for tp, messages in records.items():
            if not messages:
                continue
            tracker = self.trackers.get(tp)
            first = messages[0].offset
            if tracker is None:
                tracker = self.trackers[tp] = PartitionTracker(first, self._committer.poke)
            last = messages[-1].offset
            ranges.append((tracker, min(tracker.next_start, first), last + 1))
            tracker.next_start = last + 1
            tracker.begin()
            topic, partition = tp.topic, tp.partition
            for msg in messages:
                value = msg.value
                try:
                    nbytes += len(value)
                    event = loads(value)
                except (orjson.JSONDecodeError, TypeError) as exc:
                    bad.append(dead_letter_record(topic, partition, msg))
                    reasons.append("empty record (no value)" if value is None else f"not valid JSON: {exc}")
                    continue
                if type(event) is not dict:
                    bad.append(dead_letter_record(topic, partition, msg))
                    reasons.append(f"not a JSON object (a JSON {type(event).__name__})")
                    continue
                source = event.get("source")
                if type(source) is dict:
                    source["topic"] = topic
                    source["partition"] = partition
                    source["offset"] = msg.offset
                else:
                    event["source"] = {"topic": topic, "partition": partition, "offset": msg.offset}
                if not event.get("log_type") or not event.get("@timestamp") or not event.get("event_id"):
                    complete_event(event, msg, log_type)
                events.append(event)
        ctx.stats.bytes_in += nbytes
        return events, ranges, bad, reasons

    async def _emit(self, ctx: SourceContext, batch: Batch) -> None:
        """Emit; if backpressure holds it long, pause fetching and keep polling so the group keeps us."""
        task = asyncio.ensure_future(ctx.emit(batch))
        try:
            done, _ = await asyncio.wait({task}, timeout=PAUSE_AFTER_S)
            if not done:
                await self._keepalive_until(task)
        finally:
            if not task.done():
                task.cancel()
        task.result()

    async def _keepalive_until(self, task: asyncio.Future[None]) -> None:
        consumer = self.consumer
        paused: set[TopicPartition] = set()
        try:
            while not task.done():
                assigned = set(consumer.assignment())
                newly = assigned - paused
                if newly:
                    consumer.pause(*newly)
                    paused |= newly
                paused &= assigned
                if paused:
                    try:
                        # Only paused partitions: returns nothing, but counts as a poll for max_poll_interval.
                        await consumer.getmany(*paused, timeout_ms=0)
                    except KafkaError as exc:
                        self.log.warning("kafka keepalive poll failed", extra={"error": describe_error(exc)})
                await asyncio.wait({task}, timeout=1.0)
        finally:
            still = paused & set(consumer.assignment())
            if still:
                consumer.resume(*still)

    # -- --once ------------------------------------------------------------
    async def _observe_end_offsets(self, ctx: SourceContext) -> bool:
        """Wait for the first assignment; False if none came (nothing to read)."""
        deadline = time.monotonic() + max(10.0, 2 * self.config.session_timeout)
        while not self.consumer.assignment():
            if ctx.shutdown.is_set() or time.monotonic() > deadline:
                self.log.warning("kafka source got no partitions; nothing to read")
                return False
            await asyncio.sleep(0.1)
        return True

    async def _reached_end(self) -> bool:
        """True when every assigned partition's position reached its end offset observed at assignment."""
        consumer = self.consumer
        assigned = set(consumer.assignment())
        new = [tp for tp in assigned if tp not in self._end_offsets]
        if new:
            self._end_offsets.update(await consumer.end_offsets(new))
        try:
            for tp in assigned:
                if await consumer.position(tp) < self._end_offsets[tp]:
                    return False
        except KafkaError:  # revoked meanwhile: look again on the next round
            return False
        return bool(assigned)

    async def aclose(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        await self.commit()
        self.consumer = None
        await self._stop_consumer(consumer)


async def _sleep_or_shutdown(ctx: SourceContext, delay: float) -> None:
    try:
        await asyncio.wait_for(ctx.shutdown.wait(), delay)
    except TimeoutError:
        pass


@register("source", "kafka", KafkaSourceConfig)
def build(name: str, config: KafkaSourceConfig, ctx: BuildContext) -> KafkaSource:
    source = KafkaSource(name, config, ctx.dlq)
    source.register_metrics(ctx.metrics)
    return source
