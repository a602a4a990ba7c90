"""The `kafka` sink: one aiokafka producer; a send settles when the broker acked every record.

A send encodes its events once (records.py), resolves each distinct key to a
partition (unkeyed records, the default: the whole send to the topic's next
partition in turn, so one busy file spreads over all partitions), fills one
record batch per partition (more when `max_batch_bytes` is reached) and hands
them to the producer with `send_batch`: per-record
`producer.send()` would cost a coroutine, a murmur2 hash and a future per
event. The send then waits for every batch's acknowledgement and classifies:

- acknowledged: delivered;
- too large for the broker: a batch of one record is rejected (DLQ); a batch
  of several is split and each record sent alone, so only the culprit goes to
  the DLQ;
- anything else (broker down, leader moving, timeouts, a topic whose metadata
  cannot be had): retried by the driver with backoff, only the records of the
  failed batches when others went through, so an acknowledged record is not
  sent twice. Within a producer session, idempotence drops the duplicates of
  aiokafka's own retries;
- not acknowledged within `delivery_timeout`: an idempotent aiokafka producer
  never gives up on a batch, so without a bound a broker outage would hang the
  send, unseen by the driver (no retry counted, no last error). Past the bound
  the producer is discarded unflushed (it must not deliver those batches later,
  behind their retry) and the records are retried like any failure;
- a producer-state error (out-of-order sequence, unknown producer id, fenced)
  makes the producer unusable: the next send starts a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
    RecordListTooLargeError,
    UnknownProducerId,
)
from aiokafka.partitioner import DefaultPartitioner

from pipeline.errors import ConfigError, StartError, TransientError
from pipeline.event import Events
from pipeline.kafka_common import client_kwargs, describe_error, diagnose
from pipeline.logs import component_log
from pipeline.metrics import ComponentStats
from pipeline.sink import Outcome
from pipeline.tls import warn_if_unverified
from sinks.kafka.config import BUILTIN_LOG_TYPES, KafkaSinkConfig
from sinks.kafka.records import Headers, RecordEncoder

log = logging.getLogger(__name__)

# A record as the sink handles it after partitioning: (index in the send, key, value, headers).
Rec = tuple[int, "bytes | None", bytes, Headers]
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)
# After these the producer's sequence numbers or identity are no longer valid.
_BROKEN_PRODUCER = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced, ProducerClosed)
_TOPIC_ALREADY_EXISTS = 36
ProducerFactory = Callable[..., Any]
AdminFactory = Callable[..., Any]


class _Sent:
    """One record batch handed to the producer: its records, and its result (or why it was not sent)."""

    __slots__ = ("builder", "future", "records", "tp")

    def __init__(self, tp: TopicPartition, builder: Any, records: list[Rec]) -> None:
        self.tp = tp
        self.builder = builder
        self.records = records
        self.future: asyncio.Future[Any] | None = None


class KafkaSink:
    accepts_encoded = True  # a worker's JSON lines become the record values as they are (records.py)

    def __init__(
        self,
        name: str,
        config: KafkaSinkConfig,
        *,
        stats: ComponentStats | None = None,
        producer_factory: ProducerFactory = AIOKafkaProducer,
        admin_factory: AdminFactory = AIOKafkaAdminClient,
    ) -> None:
        self.name = name
        self.log = component_log(log, name)
        self.config = config
        self.stats = stats
        self._client_kwargs = client_kwargs(config, name)  # ConfigError on unusable TLS / password files
        try:
            self._encoder = RecordEncoder(config.topic, config.key, config.default_log_type, config.max_request_bytes)
        except ValueError as exc:
            raise ConfigError([f"topic: {exc}"]) from None
        self.topics_to_create = config.topics_to_create or self._encoder.topics_for_log_types(BUILTIN_LOG_TYPES)
        self._producer_factory = producer_factory
        self._admin_factory = admin_factory
        self._producer: Any = None
        self._producer_generation = 0
        self._broken_generation: int | None = None
        self._reset_lock = asyncio.Lock()
        self._known_topics: set[str] = set()
        self._enqueued: asyncio.Future[None] | None = None  # resolved once the latest send has enqueued
        self._partitioner = DefaultPartitioner()
        self._turns: dict[str, int] = {}  # per topic, the round-robin turn of unkeyed sends
        self._closed = False  # after aclose, only start() makes a producer again (not a late send)
        self._tls_warned = False

    # -- lifecycle ---------------------------------------------------------
    def _new_producer(self) -> Any:
        cfg = self.config
        return self._producer_factory(
            **self._client_kwargs,
            acks="all" if cfg.acks == "all" else int(cfg.acks),
            enable_idempotence=cfg.enable_idempotence,
            compression_type=None if cfg.compression == "none" else cfg.compression,
            max_batch_size=cfg.max_batch_bytes,
            max_request_size=cfg.max_request_bytes,
            # The driver already groups events (batch.max_events / batch.timeout) and every send
            # hands over closed record batches, so waiting to fill them would only add latency.
            linger_ms=0,
        )

    async def _start_producer(self) -> None:
        producer = self._new_producer()
        try:
            await producer.start()
        except BaseException as exc:
            await self._stop_producer(producer)
            refused = await diagnose(self._client_kwargs) if isinstance(exc, KafkaError | OSError) else None
            if refused is not None:  # TLS or SASL refused: permanent, one clear line
                raise refused from None
            raise
        self._producer = producer
        self._producer_generation += 1

    async def _stop_producer(self, producer: Any) -> None:
        """Flush and close, bounded: with the broker gone a flush would wait forever."""
        try:
            await asyncio.wait_for(producer.stop(), self.config.request_timeout)
        except TimeoutError:
            self.log.warning(
                "kafka producer did not flush in time; unacknowledged batches are retried after restart",
            )
            await self._discard(producer)
        except Exception as exc:
            self.log.warning("kafka producer stop failed", extra={"error": describe_error(exc)})
            await self._discard(producer)

    async def _discard(self, producer: Any) -> None:
        """Close without flushing: what the producer still holds must never be sent by it.

        aiokafka has no abort. stop() flushes first, which with idempotence waits as long as
        the broker is away, and a stop() cut short leaves the sender task running: it keeps
        retrying and delivers those batches later, after their retry by a new producer. So
        cancel the sender, close the connections, and mark the producer closed (otherwise
        its destructor reports it as leaked). Its unresolved batch futures are never awaited.
        """
        try:
            sender = getattr(producer, "_sender", None)
            if sender is not None:
                await asyncio.wait_for(sender.close(), self.config.request_timeout)
            await producer.client.close()
        except Exception as exc:
            self.log.warning("discarding the kafka producer failed", extra={"error": describe_error(exc)})
        finally:
            if hasattr(producer, "_closed"):
                producer._closed = True

    async def _abandon(self, generation: int) -> None:
        """Discard the producer of `generation` (unless already replaced); the next send starts a fresh one."""
        async with self._reset_lock:
            if self._producer is None or self._producer_generation != generation:
                return
            producer, self._producer = self._producer, None
        self.log.warning(
            "kafka records not acknowledged within delivery_timeout; discarding the producer, retrying them",
            extra={"delivery_timeout_s": self.config.delivery_timeout},
        )
        await self._discard(producer)

    async def start(self) -> None:
        self._closed = False
        if self._producer is None:
            if not self._tls_warned:
                self._tls_warned = True
                warn_if_unverified(self.log, self.config.tls, ",".join(self.config.bootstrap_servers))
            await self._start_producer()
        if self.config.create_topics:
            await self._create_topics(self.topics_to_create)
        existing = await self._wait_for_topics(
            self.topics_to_create, self.config.request_timeout if self.config.create_topics else 0
        )
        missing = [t for t in self.topics_to_create if t not in existing]
        if missing:
            message = (
                f"topic(s) {', '.join(missing)} do not exist on {','.join(self.config.bootstrap_servers)}: "
                "create them, set create_topics: true, or list the topics the template yields in "
                "topics_to_create"
            )
            raise StartError("topics_to_create", message)
        self._known_topics.update(self.topics_to_create)

    async def healthcheck(self) -> None:
        producer = self._producer
        if producer is None:
            raise TransientError("kafka producer not started")
        try:
            await asyncio.wait_for(producer.client.fetch_all_metadata(), self.config.request_timeout)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise TransientError(
                f"kafka {','.join(self.config.bootstrap_servers)} unreachable: {describe_error(exc)}"
            ) from None

    async def aclose(self) -> None:
        """Stop the producer, on every path (also when start never succeeded); safe to call twice."""
        self._closed = True
        producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop_producer(producer)

    # -- topics ------------------------------------------------------------
    async def _existing_topics(self) -> set[str]:
        metadata = await self._producer.client.fetch_all_metadata()
        return set(metadata.topics())

    async def _wait_for_topics(self, topics: list[str], wait: float) -> set[str]:
        """Topics that exist. Waits up to `wait` seconds until each exists with a leader for every
        partition: after a creation the metadata lags, and producing early only draws NotLeader retries."""
        deadline = time.monotonic() + wait
        while True:
            metadata = await self._producer.client.fetch_all_metadata()
            existing = set(metadata.topics())
            if time.monotonic() >= deadline or all(_has_leaders(metadata, t) for t in topics):
                break
            await asyncio.sleep(0.2)
        if wait:
            await self._producer.client.force_metadata_update()  # the producer's own view, too
        return existing

    async def _create_topics(self, topics: list[str]) -> None:
        admin = self._admin_factory(**self._client_kwargs)
        try:
            await admin.start()
            replication = self.config.topic_replication_factor
            if replication is None:
                brokers = len(self._producer.client.cluster.brokers()) or 1
                replication = min(3, brokers)
            response = await admin.create_topics(
                [NewTopic(t, self.config.topic_partitions, replication) for t in topics]
            )
        finally:
            await admin.close()
        errors = [
            (topic, code, msg) for topic, code, msg in response.topic_errors if code not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if errors:
            raise TransientError(
                "creating topics failed: "
                + "; ".join(f"{topic}: error {code} {msg or ''}".strip() for topic, code, msg in errors)
            )
        self.log.info("kafka topics ensured", extra={"topics": topics})

    async def _check_topic(self, topic: str) -> str | None:
        """None when `topic` exists (creating it if configured), else why its events are rejected."""
        if self.config.create_topics:
            await self._create_topics([topic])
            existing = await self._wait_for_topics([topic], self.config.request_timeout)
        else:
            existing = await self._existing_topics()
        if topic in existing:
            self._known_topics.add(topic)
            return None
        return (
            f"topic {topic!r} does not exist (create it, set create_topics: true, or fix the topic template "
            f"{self.config.topic!r})"
        )

    # -- send --------------------------------------------------------------
    async def _producer_for_send(self) -> Any:
        if self._closed:
            raise TransientError(f"kafka sink {self.name} is closed")
        async with self._reset_lock:
            if self._broken_generation == self._producer_generation or self._producer is None:
                old, self._producer = self._producer, None
                if old is not None:
                    self.log.warning("restarting the kafka producer after a producer-state error")
                    await self._stop_producer(old)
                self._broken_generation = None
                await self._start_producer()
            return self._producer

    async def send(self, events: Events) -> Outcome:
        # Concurrent sends (max_in_flight > 1) hand their batches to the producer in the order the
        # driver started them, so a stream's records keep their order in its partition. The ticket is
        # taken before the first await: tasks start in creation order.
        previous, mine = self._enqueued, asyncio.get_running_loop().create_future()
        self._enqueued = mine
        try:
            return await self._send(events, previous, mine)
        finally:
            if previous is None or previous.done():
                _resolve(mine)
            else:  # left before our turn: the next send still waits for the one before us
                previous.add_done_callback(lambda _: _resolve(mine))

    async def _send(self, events: Events, previous: asyncio.Future[None] | None, mine: asyncio.Future[None]) -> Outcome:
        try:
            producer = await self._producer_for_send()
        except (KafkaError, OSError) as exc:
            raise TransientError(f"kafka producer cannot start: {describe_error(exc)}") from None
        generation = self._producer_generation
        encoded = self._encoder.encode(events)
        if encoded.truncated:
            self.log.warning(
                "messages cut to fit max_request_bytes (tagged _truncated)",
                extra={"events": encoded.truncated, "max_request_bytes": self.config.max_request_bytes},
            )
        rejected = list(encoded.rejected)
        retry: list[int] = []
        reasons: list[BaseException] = []

        per_tp: dict[TopicPartition, list[Rec]] = {}
        for topic, by_key in encoded.groups.items():
            if topic not in self._known_topics:
                try:
                    why = await self._check_topic(topic)
                except (KafkaError, OSError) as exc:
                    raise TransientError(f"kafka metadata for topic {topic!r}: {describe_error(exc)}") from None
                if why is not None:
                    rejected.extend((i, why) for records in by_key.values() for i, _, _ in records)
                    continue
            try:
                partitions = sorted(await producer.partitions_for(topic))
            except KafkaError as exc:
                # Only this topic's records wait (a deleted or leaderless topic); the others go ahead.
                reasons.append(exc)
                retry.extend(i for records in by_key.values() for i, _, _ in records)
                continue
            available = list(producer.client.cluster.available_partitions_for_topic(topic) or partitions)
            for key, records in by_key.items():
                if key is None:  # unkeyed: the send's records go together to the topic's next partition
                    turn = self._turns[topic] = self._turns.get(topic, -1) + 1
                    partition = sorted(available)[turn % len(available)]
                else:
                    partition = self._partitioner(key, partitions, available)
                tp = TopicPartition(topic, partition)
                bucket = per_tp.get(tp)
                if bucket is None:
                    bucket = per_tp[tp] = []
                bucket.extend((i, key, value, headers) for i, value, headers in records)

        groups = [self._fill(producer, tp, records) for tp, records in per_tp.items()]
        if previous is not None:
            await asyncio.wait([previous])  # our turn (not `await previous`: cancelling us must not cancel it)
        await self._enqueue(producer, groups)
        _resolve(mine)  # the next send may enqueue behind ours while ours are in flight
        deadline = asyncio.get_running_loop().time() + self.config.delivery_timeout
        if not await self._wait_acks(groups, deadline):
            await self._abandon(generation)
        split: list[tuple[TopicPartition, Rec]] = []
        delivered = self._classify(groups, generation, retry, rejected, reasons, split)
        if split:
            # A batch of several records was too large for the broker: send each alone to find the culprit.
            singles: dict[TopicPartition, list[_Sent]] = {}
            for tp, rec in split:
                singles.setdefault(tp, []).append(_Sent(tp, _one(producer, rec), [rec]))
            resent = list(singles.values())
            await self._enqueue(producer, resent)
            if not await self._wait_acks(resent, deadline):
                await self._abandon(generation)
            delivered += self._classify(resent, generation, retry, rejected, reasons, None)
        if retry and not delivered and not rejected:
            raise TransientError(f"kafka: no record acknowledged: {describe_error(reasons[0])}")
        return Outcome(
            retry=sorted(retry), rejected=rejected, retry_reason=type(reasons[0]).__name__ if reasons else "item"
        )

    def _fill(self, producer: Any, tp: TopicPartition, records: list[Rec]) -> list[_Sent]:
        """Record batches for one partition, in order, each at most max_batch_bytes (or one record)."""
        out: list[_Sent] = []
        builder = producer.create_batch()
        batch: list[Rec] = []
        for rec in records:
            _, key, value, headers = rec
            if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
                # Full (the builder closed itself); a fresh builder always takes one record.
                out.append(_Sent(tp, builder, batch))
                builder = producer.create_batch()
                batch = []
                builder.append(timestamp=None, key=key, value=value, headers=headers)
            batch.append(rec)
        if batch:
            builder.close()  # closed: the sender takes it at once instead of lingering for more
            out.append(_Sent(tp, builder, batch))
        return out

    async def _enqueue(self, producer: Any, groups: list[list[_Sent]]) -> None:
        """Hand every partition's batches to the producer: concurrently across partitions, in order within one."""
        await asyncio.gather(*(self._send_partition(producer, group) for group in groups))

    @staticmethod
    async def _wait_acks(groups: list[list[_Sent]], deadline: float) -> bool:
        """Wait for every batch's result until `deadline` (loop time); False when some are still out."""
        futures = [s.future for group in groups for s in group if s.future is not None]
        if not futures:
            return True
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        _, pending = await asyncio.wait(futures, timeout=timeout)
        return not pending

    @staticmethod
    async def _send_partition(producer: Any, group: list[_Sent]) -> None:
        for n, s in enumerate(group):
            try:
                s.future = await producer.send_batch(s.builder, s.tp.topic, partition=s.tp.partition)
            except Exception as exc:
                # Not queued (buffer full past request_timeout, partition gone, producer closed).
                # The batches after it are not sent either, to keep the partition's order.
                for rest in group[n:]:
                    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                    failed.set_exception(exc)
                    failed.exception()  # retrieved: no "exception never retrieved" warning
                    rest.future = failed
                return

    def _classify(
        self,
        groups: list[list[_Sent]],
        generation: int,
        retry: list[int],
        rejected: list[tuple[int, str]],
        reasons: list[BaseException],
        split: list[tuple[TopicPartition, Rec]] | None,
    ) -> int:
        """Sort each batch's records into delivered / retry / rejected / split; return how many were delivered."""
        delivered = 0
        wire_bytes = 0
        for group in groups:
            for s in group:
                assert s.future is not None
                if s.future.done():
                    exc = s.future.exception()
                else:  # its producer was discarded: never sent by it
                    exc = KafkaTimeoutError(
                        f"not acknowledged within delivery_timeout ({self.config.delivery_timeout:g}s)"
                    )
                if exc is None:
                    delivered += len(s.records)
                    wire_bytes += s.builder.size()  # built by now: the compressed size
                elif isinstance(exc, _TOO_LARGE) and (len(s.records) == 1 or split is None):
                    rejected.extend(
                        (rec[0], f"kafka rejected the record as too large ({describe_error(exc)}); topic {s.tp.topic}")
                        for rec in s.records
                    )
                elif isinstance(exc, _TOO_LARGE) and split is not None:
                    split.extend((s.tp, rec) for rec in s.records)
                else:
                    if isinstance(exc, _BROKEN_PRODUCER):
                        self._broken_generation = generation
                    reasons.append(exc)
                    retry.extend(rec[0] for rec in s.records)
        if self.stats is not None:
            self.stats.bytes_out += wire_bytes
        return delivered


def _has_leaders(metadata: Any, topic: str) -> bool:
    partitions = metadata.partitions_for_topic(topic)
    return bool(partitions) and all(
        (metadata.leader_for_partition(TopicPartition(topic, p)) or -1) >= 0 for p in partitions
    )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _one(producer: Any, rec: Rec) -> Any:
    builder = producer.create_batch()
    _, key, value, headers = rec
    builder.append(timestamp=None, key=key, value=value, headers=headers)
    builder.close()
    return builder
