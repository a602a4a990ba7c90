"""`kafka` sink: config, record encoding, and the error paths a real broker can't produce on demand.

The producer is a fake injected through `producer_factory`; it uses aiokafka's real
BatchBuilder, so batch filling and size limits behave as with the real client.
Delivery against the real broker is in tests/integration/test_kafka_sink.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
)
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import ValidationError

from pipeline.encoded import EncodedEvents
from pipeline.errors import ConfigError, StartError, TransientError
from pipeline.metrics import ComponentStats
from pipeline.sink import Outcome
from sinks.kafka import KafkaSink, KafkaSinkConfig
from sinks.kafka.records import RecordEncoder, stream_key

BROKER = "127.0.0.1:1"
Script = Callable[[str, int, BatchBuilder], BaseException | None]


def make_config(**overrides: Any) -> KafkaSinkConfig:
    body: dict[str, Any] = {"type": "kafka", "inputs": ["src"], "bootstrap_servers": BROKER}
    body.update(overrides)
    return KafkaSinkConfig.model_validate(body)


def event(i: int, log_type: str | None = "access", path: str | None = "/var/log/a.log", **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"@timestamp": "2024-05-01T10:00:00.000Z", "message": f"line {i}", "host": "node-1",
                          "event_id": f"id-{i}"}
    if log_type:
        ev["log_type"] = log_type
    if path:
        ev["source"] = {"path": path, "offset": i * 10}
    ev.update(extra)
    return ev


class FakeCluster:
    def __init__(self, topics: dict[str, int]) -> None:
        self.topics_ = topics

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        n = self.topics_.get(topic)
        return None if n is None else set(range(n))

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions_for_topic(topic)

    def leader_for_partition(self, tp: Any) -> int | None:
        return 1 if tp.topic in self.topics_ else None

    def brokers(self) -> list[object]:
        return [object()]

    def topics(self) -> set[str]:
        return set(self.topics_)


class NoAnswer(Exception):
    """Returned by a script: the broker never answers for this batch (its future stays pending)."""


class FakeSender:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class FakeClient:
    def __init__(self, owner: FakeProducer) -> None:
        self.owner = owner
        self.cluster = FakeCluster(owner.topics)
        self.closed = False

    async def close(self) -> None:
        self.closed = True

    async def force_metadata_update(self) -> bool:
        return True

    async def fetch_all_metadata(self) -> FakeCluster:
        if self.owner.down:
            raise KafkaConnectionError("Unable to connect")
        return FakeCluster(self.owner.topics)


class FakeProducer:
    """Records what was sent; `script(topic, partition, builder)` returns an exception to fail a batch."""

    instances: list[FakeProducer] = []

    def __init__(self, topics: dict[str, int], script: Script | None = None, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.topics = topics
        self.script = script
        self.down = False
        self.started = self.stopped = False
        self.stop_hangs = False  # stop() flushes forever (a broker that is gone)
        self.client = FakeClient(self)
        self._sender = FakeSender()  # what the sink cancels when it discards a producer
        self.metadata_errors: dict[str, BaseException] = {}  # topic -> raised by partitions_for
        self.delivered: list[tuple[str, int, bytes | None, bytes, list[tuple[str, bytes]]]] = []
        self._pending: list[tuple[str, int, list[Any]]] = []
        FakeProducer.instances.append(self)

    async def start(self) -> None:
        if self.down:
            raise KafkaConnectionError("Unable to bootstrap")
        self.started = True

    async def stop(self) -> None:
        if self.stop_hangs:
            await asyncio.Event().wait()
        self.stopped = True

    async def partitions_for(self, topic: str) -> set[int]:
        if topic in self.metadata_errors:
            raise self.metadata_errors[topic]
        return set(range(self.topics[topic]))

    def create_batch(self) -> BatchBuilder:
        builder = BatchBuilder(self.kwargs["max_batch_size"], 0)
        builder.records = []
        original = builder.append

        def append(*, timestamp: Any, key: Any, value: Any, headers: Any) -> Any:
            md = original(timestamp=timestamp, key=key, value=value, headers=headers)
            if md is not None:
                builder.records.append((key, value, headers))
            return md

        builder.append = append
        return builder

    async def send_batch(self, builder: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        builder._build()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failure = self.script(topic, partition, builder) if self.script else None
        if isinstance(failure, KafkaTimeoutError) and getattr(failure, "raise_on_send", False):
            raise failure
        if isinstance(failure, NoAnswer):
            return future
        if failure is not None:
            future.set_exception(failure)
        else:
            for key, value, headers in builder.records:
                self.delivered.append((topic, partition, key, value, headers))
            future.set_result(None)
        return future


@pytest.fixture(autouse=True)
def _clear_instances() -> None:
    FakeProducer.instances.clear()


def make_sink(config: KafkaSinkConfig | None = None, *, topics: dict[str, int] | None = None,
              script: Script | None = None,
              stats: ComponentStats | None = None) -> KafkaSink:
    topics = {"application-logs": 3, "access-logs": 3, "error-logs": 3} if topics is None else topics

    def factory(**kwargs: Any) -> FakeProducer:
        return FakeProducer(topics, script, **kwargs)

    return KafkaSink("kafka", config or make_config(), stats=stats, producer_factory=factory)


class TestConfig:
    def test_defaults_are_at_least_once(self) -> None:
        cfg = make_config()
        assert (cfg.acks, cfg.enable_idempotence, cfg.compression) == ("all", True, "zstd")
        assert (cfg.topic, cfg.key, cfg.create_topics) == ("{log_type}-logs", None, False)

    def test_bootstrap_servers_accepts_a_comma_separated_string(self) -> None:
        assert make_config(bootstrap_servers="a:9092, b:9092").bootstrap_servers == ["a:9092", "b:9092"]

    @pytest.mark.parametrize("acks", [pytest.param(1, id="int"), pytest.param("0", id="str")])
    def test_idempotence_requires_acks_all(self, acks: Any) -> None:
        with pytest.raises(ValidationError, match="enable_idempotence requires acks: all"):
            make_config(acks=acks)
        assert make_config(acks=acks, enable_idempotence=False).acks == str(acks)

    def test_delivery_timeout_is_at_least_the_request_timeout(self) -> None:
        with pytest.raises(ValidationError, match=r"delivery_timeout \(5s\) must be at least request_timeout \(30s\)"):
            make_config(delivery_timeout="5s")
        assert make_config(delivery_timeout="5s", request_timeout="5s").delivery_timeout == 5.0

    def test_unknown_compression_is_rejected(self) -> None:
        with pytest.raises(ValidationError, match="compression"):
            make_config(compression="brotli")

    def test_topics_to_create_default_from_template(self) -> None:
        assert make_sink().topics_to_create == ["access-logs", "application-logs", "error-logs"]
        sink = make_sink(make_config(topic="logs.{log_type}"))
        assert sink.topics_to_create == ["logs.access", "logs.application", "logs.error"]

    def test_bad_date_code_in_topic_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match="topic:"):
            make_sink(make_config(topic="logs-%j"))

    def test_producer_gets_the_configured_options(self) -> None:
        sink = make_sink(make_config(compression="none", max_batch_bytes="64KiB", acks=1,
                                     enable_idempotence=False))
        producer = sink._new_producer()
        assert producer.kwargs["compression_type"] is None
        assert producer.kwargs["max_batch_size"] == 64 * 1024
        assert producer.kwargs["acks"] == 1 and producer.kwargs["enable_idempotence"] is False
        assert producer.kwargs["security_protocol"] == "PLAINTEXT"


class TestEncoding:
    def encoder(self, **kw: Any) -> RecordEncoder:
        args: dict[str, Any] = {"topic": "{log_type}-logs", "key": "{host}:{source.path}",
                                "default_log_type": "application", "max_request_bytes": 1 << 20}
        args.update(kw)
        return RecordEncoder(**args)

    def test_value_is_the_event_as_json_and_headers_carry_ids(self) -> None:
        ev = event(1)
        out = self.encoder().encode([ev])
        ((key, [(index, value, headers)]),) = out.groups["access-logs"].items()
        assert key == b"node-1:/var/log/a.log" and index == 0
        assert orjson.loads(value) == ev
        assert dict(headers) == {"log_type": b"access", "host": b"node-1", "event_id": b"id-1"}

    def test_missing_log_type_uses_the_default(self) -> None:
        out = self.encoder().encode([event(1, log_type=None)])
        ((_, [(_, _, headers)]),) = out.groups["application-logs"].items()
        assert dict(headers)["log_type"] == b"application"

    def test_missing_log_type_with_a_general_template(self) -> None:
        enc = self.encoder(topic="{log_type}.{host}", default_log_type="misc")
        assert list(enc.encode([event(1, log_type=None)]).groups) == ["misc.node-1"]

    @pytest.mark.parametrize(("ev", "key"), [
        pytest.param({"host": "h", "source": {"path": "/p"}}, b"h:/p", id="host-and-path"),
        pytest.param({"host": "h", "source": {"topic": "t", "partition": 0}}, b"h", id="kafka-sourced"),
        pytest.param({"host": "h"}, b"h", id="stdin"),
        pytest.param({"message": "x"}, None, id="neither"),
    ])
    def test_default_key_is_the_stream_id(self, ev: dict[str, Any], key: bytes | None) -> None:
        assert stream_key(ev) == key

    def test_custom_key_template_and_no_key(self) -> None:
        enc = self.encoder(key="{kubernetes.container_id}")
        assert list(enc.encode([event(1, kubernetes={"container_id": "abc"})]).groups["access-logs"]) == [b"abc"]
        assert list(self.encoder(key=None).encode([event(1)]).groups["access-logs"]) == [None]

    def test_events_of_one_stream_share_a_group_in_order(self) -> None:
        events = [event(i, path=f"/p{i % 2}") for i in range(6)]
        groups = self.encoder().encode(events).groups["access-logs"]
        assert [i for i, _, _ in groups[b"node-1:/p0"]] == [0, 2, 4]
        assert [i for i, _, _ in groups[b"node-1:/p1"]] == [1, 3, 5]

    def test_record_over_max_request_bytes_has_its_message_cut_to_fit(self) -> None:
        big = event(1, message="x" * 5000)
        out = self.encoder(max_request_bytes=2000).encode([event(0), big, event(2)])
        assert out.rejected == [] and out.truncated == 1
        records = {i: (key, value, headers) for key, recs in out.groups["access-logs"].items()
                   for i, value, headers in recs}
        assert sorted(records) == [0, 1, 2]
        key, value, headers = records[1]
        assert 1900 < DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) <= 2000
        sent = orjson.loads(value)
        assert sent["tags"] == ["_truncated"] and big["message"].startswith(sent["message"])
        assert "tags" not in big  # the sink's copy was cut, not the shared event

    def test_record_too_large_without_its_message_is_rejected_before_sending(self) -> None:
        out = self.encoder(max_request_bytes=2000).encode([event(0), event(1, blob="y" * 5000), event(2)])
        assert [i for i, _ in out.rejected] == [1]
        assert "exceeds max_request_bytes (2000) even with its message cut" in out.rejected[0][1]
        assert sorted(i for recs in out.groups["access-logs"].values() for i, _, _ in recs) == [0, 2]

    def test_an_event_that_cannot_be_encoded_is_rejected_alone(self) -> None:
        # Before: encode() raised, so the sink's send did, and the driver retried the batch forever.
        out = self.encoder().encode([event(0), event(1, n=2**70), event(2, host="a\ud800")])
        assert out.rejected[0] == (1, "cannot encode the event as JSON: Integer exceeds 64-bit range")
        assert out.rejected[1][0] == 2 and "surrogates not allowed" in out.rejected[1][1]
        assert [i for recs in out.groups["access-logs"].values() for i, _, _ in recs] == [0]

    def test_odd_field_types_are_stringified_not_fatal(self) -> None:
        out = self.encoder().encode([event(1, host=["a", "b"], log_type=7, event_id=42)])
        ((_key, [(_, _, headers)]),) = out.groups["7-logs"].items()
        assert dict(headers) == {"log_type": b"7", "host": b"['a', 'b']", "event_id": b"42"}

    def test_events_encoded_by_a_worker_keep_their_json_as_the_value(self) -> None:
        events = [event(0), event(1, log_type=None, path="/p1"), event(2, message="x" * 5000), event(3, n=1.5)]
        encoded = EncodedEvents(b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in events), 4)
        enc = self.encoder(max_request_bytes=2000)
        assert enc.encode(encoded).groups == enc.encode([dict(e) for e in events]).groups
        # The lines themselves are the values (not the decoded events encoded again).
        marked = EncodedEvents(b'{"log_type":"access","host":"h","event_id":"e", "spaced":  true}\n', 1)
        ((_, [(_, value, _)]),) = self.encoder().encode(marked).groups["access-logs"].items()
        assert value == b'{"log_type":"access","host":"h","event_id":"e", "spaced":  true}'

    def test_encoding_does_not_mutate_events(self) -> None:
        events = [event(i, log_type=None) for i in range(3)]
        before = orjson.dumps(events)
        self.encoder().encode(events)
        assert orjson.dumps(events) == before


class TestStart:
    async def test_missing_topic_is_a_start_error_naming_it(self) -> None:
        sink = make_sink(topics={"access-logs": 1})
        with pytest.raises(StartError, match="application-logs, error-logs do not exist") as err:
            await sink.start()
        assert err.value.key == "topics_to_create"
        await sink.aclose()

    async def test_unreachable_broker_fails_start_and_closes_the_producer(self) -> None:
        def factory(**kwargs: Any) -> FakeProducer:
            producer = FakeProducer({}, **kwargs)
            producer.down = True
            return producer

        sink = KafkaSink("kafka", make_config(), producer_factory=factory)
        with pytest.raises(KafkaConnectionError):
            await sink.start()
        assert FakeProducer.instances[0].stopped

    async def test_healthcheck(self) -> None:
        sink = make_sink()
        with pytest.raises(TransientError, match="not started"):
            await sink.healthcheck()
        await sink.start()
        await sink.healthcheck()
        FakeProducer.instances[0].down = True
        with pytest.raises(TransientError, match=f"kafka {BROKER} unreachable: KafkaConnectionError"):
            await sink.healthcheck()
        await sink.aclose()
        assert FakeProducer.instances[0].stopped


    async def test_a_stop_that_cannot_flush_still_closes_the_connections(self) -> None:
        # With the broker gone, stop() waits for a flush that never comes: after request_timeout
        # the sender task is stopped and the connections closed anyway (nothing left to leak).
        closed: list[str] = []

        class Sender:
            async def close(self) -> None:
                closed.append("sender")

        class Hanging(FakeProducer):
            async def stop(self) -> None:
                await asyncio.sleep(3600)

        def factory(**kwargs: Any) -> FakeProducer:
            producer = Hanging({"application-logs": 1, "access-logs": 1, "error-logs": 1}, **kwargs)
            producer._sender = Sender()

            async def close_client() -> None:
                closed.append("client")

            producer.client.close = close_client  # type: ignore[attr-defined]
            return producer

        sink = KafkaSink("kafka", make_config(request_timeout="50ms"), producer_factory=factory)
        await sink.start()
        await sink.aclose()
        assert closed == ["sender", "client"]

    async def test_no_producer_is_made_after_aclose(self) -> None:
        sink = make_sink()
        await sink.start()
        await sink.aclose()
        with pytest.raises(TransientError, match="closed"):
            await sink.send([event(0)])
        assert len(FakeProducer.instances) == 1


class TestSend:
    async def test_delivers_every_record_keyed_by_stream(self) -> None:
        stats = ComponentStats("kafka", "sink", "kafka")
        sink = make_sink(stats=stats)
        await sink.start()
        events = [event(i, log_type=("access", "error", None)[i % 3]) for i in range(30)]
        outcome = await sink.send(events)
        assert outcome.retry == [] and outcome.rejected == []
        delivered = FakeProducer.instances[0].delivered
        assert sorted(orjson.loads(v)["event_id"] for _, _, _, v, _ in delivered) == sorted(e["event_id"]
                                                                                           for e in events)
        assert {t for t, *_ in delivered} == {"access-logs", "error-logs", "application-logs"}
        # One stream -> one partition per topic.
        assert len({(t, p) for t, p, *_ in delivered}) == 3
        assert stats.bytes_out > 0
        await sink.aclose()

    async def test_order_within_a_stream_is_kept_across_batches(self) -> None:
        sink = make_sink(make_config(max_batch_bytes=1000))
        await sink.start()
        events = [event(i) for i in range(50)]
        await sink.send(events)
        ids = [orjson.loads(v)["event_id"] for *_, v, _ in FakeProducer.instances[0].delivered]
        assert ids == [e["event_id"] for e in events]
        await sink.aclose()

    async def test_nothing_acknowledged_raises_transient(self) -> None:
        sink = make_sink(script=lambda t, p, b: KafkaConnectionError("broker down"))
        await sink.start()
        with pytest.raises(TransientError, match="no record acknowledged: KafkaConnectionError"):
            await sink.send([event(i) for i in range(5)])
        await sink.aclose()

    async def test_only_the_failed_batches_are_retried(self) -> None:
        sink = make_sink(script=lambda t, p, b: NotLeaderForPartitionError() if t == "error-logs" else None)
        await sink.start()
        events = [event(i, log_type="error" if i % 2 else "access") for i in range(10)]
        outcome = await sink.send(events)
        assert outcome.retry == [1, 3, 5, 7, 9]
        assert outcome.retry_reason == "NotLeaderForPartitionError"
        assert len(FakeProducer.instances[0].delivered) == 5
        await sink.aclose()

    async def test_unacknowledged_past_delivery_timeout_discards_the_producer(self) -> None:
        # An idempotent aiokafka producer retries a batch for as long as the broker is away: without a
        # bound the send would hang, and the driver would never count a retry or show an error.
        silent = {"error-logs"}
        sink = make_sink(make_config(request_timeout="50ms", delivery_timeout="100ms"),
                         script=lambda t, p, b: NoAnswer() if t in silent else None)
        await sink.start()
        events = [event(i, log_type="error" if i % 2 else "access") for i in range(6)]
        outcome = await sink.send(events)
        assert outcome.retry == [1, 3, 5] and outcome.retry_reason == "KafkaTimeoutError"
        first = FakeProducer.instances[0]
        # Discarded without a flush: its sender is cancelled so it never delivers those batches later.
        assert first._sender.closed and first.client.closed and not first.stopped
        silent.clear()
        assert await sink.send([events[i] for i in outcome.retry]) == Outcome()
        second = FakeProducer.instances[1]
        assert [orjson.loads(v)["event_id"] for *_, v, _ in second.delivered] == ["id-1", "id-3", "id-5"]
        await sink.aclose()

    async def test_nothing_acknowledged_within_delivery_timeout_raises_transient(self) -> None:
        sink = make_sink(make_config(request_timeout="50ms", delivery_timeout="100ms"),
                         script=lambda t, p, b: NoAnswer())
        await sink.start()
        with pytest.raises(TransientError, match=r"not acknowledged within delivery_timeout \(0.1s\)"):
            await sink.send([event(i) for i in range(3)])
        assert FakeProducer.instances[0]._sender.closed
        await sink.aclose()

    async def test_one_topic_without_metadata_holds_only_its_records(self) -> None:
        sink = make_sink()
        await sink.start()
        FakeProducer.instances[0].metadata_errors["error-logs"] = KafkaTimeoutError("no metadata")
        outcome = await sink.send([event(i, log_type="error" if i % 2 else "access") for i in range(6)])
        assert outcome.retry == [1, 3, 5] and outcome.retry_reason == "KafkaTimeoutError"
        assert len(FakeProducer.instances[0].delivered) == 3
        await sink.aclose()

    async def test_a_stop_that_cannot_flush_discards_the_producer(self) -> None:
        sink = make_sink(make_config(request_timeout="50ms", delivery_timeout="50ms"))
        await sink.start()
        producer = FakeProducer.instances[0]
        producer.stop_hangs = True
        await sink.aclose()
        # Not left running: a cut-short stop() leaves aiokafka's sender retrying and delivering later.
        assert producer._sender.closed and producer.client.closed

    async def test_enqueue_timeout_fails_the_rest_of_the_partition(self) -> None:
        calls: list[int] = []

        def script(topic: str, partition: int, builder: BatchBuilder) -> BaseException | None:
            calls.append(1)
            if len(calls) == 2:
                exc = KafkaTimeoutError()
                exc.raise_on_send = True
                return exc
            return None

        sink = make_sink(make_config(max_batch_bytes=500), topics={"access-logs": 1, "application-logs": 1,
                                                                    "error-logs": 1}, script=script)
        await sink.start()
        outcome = await sink.send([event(i) for i in range(20)])
        delivered = FakeProducer.instances[0].delivered
        # The first batch went through; from the failed one on, every record is retried, in order.
        assert outcome.retry == list(range(len(delivered), 20))
        assert len(calls) == 2  # nothing sent after the failure (would reorder the partition)
        await sink.aclose()

    async def test_record_too_large_for_the_broker_alone_is_rejected(self) -> None:
        def script(topic: str, partition: int, builder: BatchBuilder) -> BaseException | None:
            too_big = any(len(v) > 5000 for _, v, _ in builder.records)
            return MessageSizeTooLargeError() if too_big else None

        sink = make_sink(script=script)
        await sink.start()
        events = [event(0), event(1, message="x" * 8000), event(2)]
        outcome = await sink.send(events)
        # The first try had all three in one batch; the split resend isolates the culprit.
        assert outcome.retry == []
        assert [i for i, _ in outcome.rejected] == [1]
        assert "too large" in outcome.rejected[0][1] and "access-logs" in outcome.rejected[0][1]
        ids = sorted(orjson.loads(v)["event_id"] for *_, v, _ in FakeProducer.instances[0].delivered)
        assert ids == ["id-0", "id-2"]
        await sink.aclose()

    async def test_missing_topic_at_send_goes_to_the_dlq(self) -> None:
        sink = make_sink()
        await sink.start()
        outcome = await sink.send([event(0), event(1, log_type="audit")])
        assert [i for i, _ in outcome.rejected] == [1]
        assert "topic 'audit-logs' does not exist" in outcome.rejected[0][1]
        await sink.aclose()

    async def test_producer_state_error_restarts_the_producer(self, caplog: pytest.LogCaptureFixture) -> None:
        failures = [OutOfOrderSequenceNumber()]

        def script(topic: str, partition: int, builder: BatchBuilder) -> BaseException | None:
            return failures.pop() if failures else None

        sink = make_sink(script=script)
        await sink.start()
        with pytest.raises(TransientError):
            await sink.send([event(0)])
        with caplog.at_level(logging.WARNING, logger="pipeline.sink.kafka"):
            outcome = await sink.send([event(0)])
        assert outcome.retry == []
        first, second = FakeProducer.instances
        assert first.stopped and second.started and len(second.delivered) == 1
        assert "restarting the kafka producer" in caplog.text
        await sink.aclose()

    async def test_concurrent_sends(self) -> None:
        sink = make_sink()
        await sink.start()
        outcomes = await asyncio.gather(*(sink.send([event(i + 10 * k) for i in range(10)]) for k in range(4)))
        assert all(not o.retry and not o.rejected for o in outcomes)
        assert len(FakeProducer.instances[0].delivered) == 40
        await sink.aclose()


class TestConcurrentOrder:
    async def test_concurrent_sends_enqueue_in_start_order(self) -> None:
        sink = make_sink()
        await sink.start()
        producer = FakeProducer.instances[0]
        calls = 0
        original = producer.partitions_for

        async def slow_first(topic: str) -> set[int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(0.05)  # the first send is slower to prepare than the second
            return await original(topic)

        producer.partitions_for = slow_first
        await asyncio.gather(sink.send([event(i) for i in range(5)]), sink.send([event(i) for i in range(5, 10)]))
        ids = [orjson.loads(v)["event_id"] for *_, v, _ in producer.delivered]
        assert ids == [f"id-{i}" for i in range(10)]
        await sink.aclose()

    async def test_a_send_failing_before_its_turn_does_not_block_the_next(self) -> None:
        sink = make_sink()
        await sink.start()
        producer = FakeProducer.instances[0]
        original = producer.partitions_for

        async def fail_error_topic(topic: str) -> set[int]:
            if topic == "error-logs":
                await asyncio.sleep(0.02)
                raise KafkaConnectionError("metadata")
            return await original(topic)

        producer.partitions_for = fail_error_topic
        first, second = await asyncio.gather(sink.send([event(0, log_type="error")]), sink.send([event(1)]),
                                             return_exceptions=True)
        assert isinstance(first, TransientError)
        assert isinstance(second, Outcome) and not second.retry and not second.rejected
        assert len(producer.delivered) == 1
        await sink.aclose()


class FakeAdmin:
    created: list[tuple[str, int, int]] = []
    codes: dict[str, int] = {}

    def __init__(self, topics: dict[str, int], **kwargs: Any) -> None:
        self.topics = topics

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def create_topics(self, new_topics: list[Any]) -> Any:
        errors = []
        for nt in new_topics:
            FakeAdmin.created.append((nt.name, nt.num_partitions, nt.replication_factor))
            code = FakeAdmin.codes.get(nt.name, 0)
            if code in (0, 36):
                self.topics.setdefault(nt.name, nt.num_partitions)
            errors.append((nt.name, code, None if code == 0 else "boom"))

        class Response:
            topic_errors = errors

        return Response()


class TestCreateTopics:
    @pytest.fixture(autouse=True)
    def _clear(self) -> None:
        FakeAdmin.created.clear()
        FakeAdmin.codes.clear()

    def sink(self, topics: dict[str, int], **config: Any) -> KafkaSink:
        return KafkaSink("kafka", make_config(create_topics=True, **config),
                         producer_factory=lambda **kw: FakeProducer(topics, **kw),
                         admin_factory=lambda **kw: FakeAdmin(topics, **kw))

    async def test_creates_the_derived_topics_at_start(self) -> None:
        topics: dict[str, int] = {"access-logs": 3}
        FakeAdmin.codes["access-logs"] = 36  # already exists: fine
        sink = self.sink(topics, topic_partitions=6)
        await sink.start()
        # One broker in the fake cluster: replication min(3, brokers) = 1.
        assert FakeAdmin.created == [("access-logs", 6, 1), ("application-logs", 6, 1), ("error-logs", 6, 1)]
        assert set(topics) == {"access-logs", "application-logs", "error-logs"}
        await sink.aclose()

    async def test_a_failed_creation_is_transient_and_names_the_topic(self) -> None:
        FakeAdmin.codes["error-logs"] = 29
        sink = self.sink({}, topic_replication_factor=2)
        with pytest.raises(TransientError, match="creating topics failed: error-logs: error 29 boom"):
            await sink.start()
        assert ("error-logs", 3, 2) in FakeAdmin.created
        await sink.aclose()

    async def test_a_new_topic_from_the_template_is_created_on_first_use(self) -> None:
        topics: dict[str, int] = {}
        sink = self.sink(topics)
        await sink.start()
        outcome = await sink.send([event(0, log_type="audit")])
        assert outcome.rejected == [] and "audit-logs" in topics
        assert FakeProducer.instances[0].delivered[0][0] == "audit-logs"
        await sink.aclose()
