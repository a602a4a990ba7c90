"""`kafka` source: decoding, dead letters, contiguous commits, rebalance, backpressure, --once.

The consumer is a fake injected through `consumer_factory` (rebalance timing and a
blocked pipeline can't be produced on demand with the real broker). The real-broker
paths are in tests/integration/test_kafka_source.py and tests/reliability/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from prometheus_client import generate_latest
from pydantic import ValidationError

from pipeline.dlq import DeadLetterQueue
from pipeline.event import Batch
from pipeline.metrics import Metrics
from pipeline.sources import kafka as kafka_source
from pipeline.sources.base import SourceContext
from pipeline.sources.kafka import KafkaSource, KafkaSourceConfig

TP0 = TopicPartition("logs", 0)
TP1 = TopicPartition("logs", 1)


@dataclass
class Rec:
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: int = 1704164645123  # ms, the record's Kafka timestamp (CreateTime / LogAppendTime)
    headers: tuple[tuple[str, bytes], ...] = ()


def rec(offset: int, **fields: Any) -> Rec:
    return Rec(offset, orjson.dumps({"message": f"m{offset}", **fields}))


class FakeConsumer:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.fetches: list[dict[TopicPartition, list[Rec]]] = []
        self.assigned: set[TopicPartition] = {TP0, TP1}
        self.commits: list[dict[TopicPartition, int]] = []
        self.paused_tps: set[TopicPartition] = set()
        self.pause_calls: list[set[TopicPartition]] = []
        self.keepalive_polls: list[tuple[TopicPartition, ...]] = []
        self.end: dict[TopicPartition, int] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.highwaters: dict[TopicPartition, int] = {}
        self.start_failures = 0
        self.stopped = False
        self.listener: Any = None
        self.subscription: dict[str, Any] = {}

    def subscribe(self, topics: Any = (), pattern: Any = None, listener: Any = None) -> None:
        self.subscription = {"topics": topics, "pattern": pattern}
        self.listener = listener

    async def start(self) -> None:
        if self.start_failures:
            self.start_failures -= 1
            raise KafkaConnectionError("Unable to bootstrap")

    async def stop(self) -> None:
        self.stopped = True

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0,
                      max_records: int | None = None) -> dict[TopicPartition, list[Rec]]:
        if partitions:
            self.keepalive_polls.append(partitions)
            return {}
        if self.fetches:
            batch = self.fetches.pop(0)
            for tp, records in batch.items():
                if records:
                    self.positions[tp] = records[-1].offset + 1
            return batch
        await asyncio.sleep(min(timeout_ms, 10) / 1000)
        return {}

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.commits.append({tp: om.offset for tp, om in offsets.items()})

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.pause_calls.append(set(tps))
        self.paused_tps |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_tps -= set(tps)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end.get(tp, 0) for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions.get(tp, 0)


def make_config(**overrides: Any) -> KafkaSourceConfig:
    body: dict[str, Any] = {"type": "kafka", "bootstrap_servers": "127.0.0.1:1", "topics": ["logs"],
                            "group_id": "g", "revoke_timeout": 1.0, "commit_interval": 60}
    body.update(overrides)
    return KafkaSourceConfig.model_validate(body)


class Harness:
    def __init__(self, tmp_path: Path, config: KafkaSourceConfig | None = None, *, once: bool = False) -> None:
        self.consumer = FakeConsumer()
        self.dlq = DeadLetterQueue(tmp_path / "dlq")
        self.source = KafkaSource("kafka", config or make_config(), self.dlq,
                                  consumer_factory=self._factory)
        self.batches: list[Batch] = []
        self.metrics = Metrics()
        self.emit_gate: asyncio.Event | None = None
        self.ctx = SourceContext(name="kafka", host="h", data_dir=tmp_path, once=once, shutdown=asyncio.Event(),
                                 stats=self.metrics.component("kafka", "source", "kafka"), metrics=self.metrics,
                                 _emit=self._emit)

    def _factory(self, **kwargs: Any) -> FakeConsumer:
        self.consumer.kwargs = kwargs
        return self.consumer

    async def _emit(self, batch: Batch) -> None:
        if self.emit_gate is not None:
            await self.emit_gate.wait()
        self.batches.append(batch)

    async def handle(self, fetch: dict[TopicPartition, list[Rec]]) -> Batch | None:
        self.source.consumer = self.consumer
        before = len(self.batches)
        await self.source._handle(self.ctx, fetch)
        return self.batches[-1] if len(self.batches) > before else None

    def settle_all(self) -> None:
        for batch in self.batches:
            if not batch.receipt.settled:
                batch.receipt.settle()


async def until(predicate: Callable[[], bool]) -> None:
    """Poll a condition the fakes change (they have no event to wait on); fail after 3 s."""
    async with asyncio.timeout(3.0):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


class TestConfig:
    def test_auto_commit_is_always_off(self, tmp_path: Path) -> None:
        h = Harness(tmp_path, make_config(start_from="latest", max_batch_records=50))
        h.source._new_consumer()
        kw = h.consumer.kwargs
        assert kw["enable_auto_commit"] is False
        assert (kw["auto_offset_reset"], kw["max_poll_records"], kw["group_id"]) == ("latest", 50, "g")

    def test_pattern_subscription(self, tmp_path: Path) -> None:
        h = Harness(tmp_path, make_config(topics=None, topic_pattern=r".*-logs"))
        h.source._new_consumer()
        assert h.consumer.subscription["pattern"] == r".*-logs"

    @pytest.mark.parametrize(("body", "message"), [
        pytest.param({"topics": None}, "exactly one of topics or topic_pattern", id="neither"),
        pytest.param({"topic_pattern": "x"}, "exactly one of topics or topic_pattern", id="both"),
        pytest.param({"topics": None, "topic_pattern": "("}, "invalid regex", id="bad-regex"),
        pytest.param({"heartbeat_interval": 20}, "heartbeat_interval must be shorter", id="heartbeat"),
        pytest.param({"enable_auto_commit": True}, "Extra inputs", id="no-auto-commit-option"),
    ])
    def test_invalid(self, body: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            make_config(**body)


class TestDecode:
    async def test_events_get_their_kafka_position_merged_into_source(self, tmp_path: Path) -> None:
        h = Harness(tmp_path, make_config(log_type="access"))
        batch = await h.handle({TP0: [rec(7, source={"path": "/var/log/a.log"}, log_type="error"), rec(8)]})
        assert batch is not None
        first, second = batch.events
        assert first["source"] == {"path": "/var/log/a.log", "topic": "logs", "partition": 0, "offset": 7}
        assert second["source"] == {"topic": "logs", "partition": 0, "offset": 8}
        # log_type from the config fills in only where the event has none.
        assert (first["log_type"], second["log_type"]) == ("error", "access")
        h.settle_all()

    async def test_a_foreign_producers_event_is_completed_from_its_record(self, tmp_path: Path) -> None:
        # No @timestamp, log_type or event_id (not our agent): the record's own timestamp, header and
        # position fill them in, the same on every replay.
        h = Harness(tmp_path)
        bare = Rec(5, orjson.dumps({"message": "hello", "tags": ["x"]}))
        headed = Rec(6, orjson.dumps({"message": "GET /"}), headers=(("host", b"h"), ("log_type", b"access")))
        own = rec(7, **{"@timestamp": "2024-05-01T10:00:00.000Z", "log_type": "error", "event_id": "id-7"})
        batch = await h.handle({TP0: [bare, headed, own]})
        assert batch is not None
        first, second, third = batch.events
        assert first["@timestamp"] == "2024-01-02T03:04:05.123Z" and first["tags"] == ["x", "_ingest_timestamp"]
        assert (first["log_type"], first["event_id"]) == ("application", "logs-0-5")
        assert (second["log_type"], second["event_id"], second["tags"]) == ("access", "logs-0-6",
                                                                           ["_ingest_timestamp"])
        assert third == {"@timestamp": "2024-05-01T10:00:00.000Z", "log_type": "error", "event_id": "id-7",
                         "message": "m7", "source": {"topic": "logs", "partition": 0, "offset": 7}}
        again = Harness(tmp_path / "replay")
        replayed = await again.handle({TP0: [Rec(5, bare.value)]})
        assert replayed is not None and replayed.events[0] == first
        h.settle_all()
        again.settle_all()

    async def test_bad_records_go_to_the_dlq_and_the_rest_flows(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        fetch = {TP0: [rec(0), Rec(1, b"not json \xff"), Rec(2, b"[1, 2]"), Rec(3, None, b"k"), rec(4)]}
        batch = await h.handle(fetch)
        assert batch is not None and [e["message"] for e in batch.events] == ["m0", "m4"]
        dead = h.dlq.read_all()
        assert [d["event"]["offset"] for d in dead] == [1, 2, 3]
        assert {d["event"]["topic"] for d in dead} == {"logs"} and {d["component"] for d in dead} == {"kafka"}
        assert dead[0]["event"]["value"] == "not json \ufffd" and dead[0]["reason"].startswith("not valid JSON")
        assert dead[1]["reason"] == "not a JSON object (a JSON list)"
        assert dead[2]["reason"] == "empty record (no value)" and dead[2]["event"]["key"] == "k"
        assert h.ctx.stats.dead_lettered == 3
        h.settle_all()
        await h.source.commit()
        assert h.consumer.commits == [{TP0: 5}]  # dead letters are settled: they don't hold the commit back

    async def test_a_batch_of_only_bad_records_is_released_at_once(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        assert await h.handle({TP0: [Rec(0, b"{"), Rec(1, b"nope")]}) is None
        await h.source.commit()
        assert h.consumer.commits == [{TP0: 2}]


class TestCommits:
    async def test_only_contiguous_released_offsets_are_committed(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        b1 = await h.handle({TP0: [rec(0), rec(1)], TP1: [rec(10)]})
        b2 = await h.handle({TP0: [rec(2), rec(3)]})
        assert b1 is not None and b2 is not None
        b2.receipt.settle()
        await h.source.commit()
        assert h.consumer.commits == []  # TP0's 0-1 are still in flight; TP1 is in b1 too
        b1.receipt.settle()
        await h.source.commit()
        assert h.consumer.commits == [{TP0: 4, TP1: 11}]
        await h.source.commit()
        assert len(h.consumer.commits) == 1  # nothing moved: no commit

    async def test_skipped_offsets_do_not_leave_a_gap(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        b1 = await h.handle({TP0: [rec(0), rec(1), rec(5)]})  # 2-4 compacted away
        b2 = await h.handle({TP0: [rec(9), rec(10)]})  # 6-8 too
        assert b1 is not None and b2 is not None
        b2.receipt.settle()
        b1.receipt.settle()
        await h.source.commit()
        assert h.consumer.commits == [{TP0: 11}]

    async def test_commit_loop_runs_on_the_interval_and_aclose_commits(self, tmp_path: Path) -> None:
        h = Harness(tmp_path, make_config(commit_interval=0.05, fetch_timeout=0.01))
        h.consumer.fetches = [{TP0: [rec(0), rec(1)]}]
        task = asyncio.create_task(h.source.run(h.ctx))
        await until(lambda: bool(h.batches))
        h.settle_all()
        await until(lambda: h.consumer.commits == [{TP0: 2}])
        h.consumer.fetches = [{TP0: [rec(2)]}]
        await until(lambda: len(h.batches) == 2)
        h.ctx.shutdown.set()
        await task
        h.settle_all()
        await h.source.aclose()
        assert h.consumer.commits[-1] == {TP0: 3} and h.consumer.stopped

    async def test_a_release_is_committed_at_once_and_a_burst_waits_for_the_interval(self, tmp_path: Path) -> None:
        h = Harness(tmp_path, make_config(commit_interval="1h", fetch_timeout=0.01))
        h.consumer.fetches = [{TP0: [rec(0), rec(1)]}]
        task = asyncio.create_task(h.source.run(h.ctx))
        await until(lambda: bool(h.batches))
        h.settle_all()
        await until(lambda: h.consumer.commits == [{TP0: 2}])  # no timer: the interval is an hour
        h.consumer.fetches = [{TP0: [rec(2)]}, {TP1: [rec(0)]}]
        await until(lambda: len(h.batches) == 3)
        h.settle_all()
        await asyncio.sleep(0.05)
        assert h.consumer.commits == [{TP0: 2}]  # coalesced: the next commit waits for the interval
        h.ctx.shutdown.set()
        await task
        await h.source.aclose()
        assert h.consumer.commits == [{TP0: 2}, {TP0: 3, TP1: 1}]

    async def test_a_failed_commit_is_retried_without_a_new_release(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        h = Harness(tmp_path, make_config(commit_interval=0.01, fetch_timeout=0.01))
        real_commit = h.consumer.commit
        failures: list[dict[TopicPartition, Any]] = []

        async def flaky_commit(offsets: dict[TopicPartition, Any]) -> None:
            if not failures:
                failures.append(offsets)
                raise KafkaConnectionError("broker went away")
            await real_commit(offsets)

        h.consumer.commit = flaky_commit  # type: ignore[method-assign]
        h.consumer.fetches = [{TP0: [rec(0), rec(1)]}]
        task = asyncio.create_task(h.source.run(h.ctx))
        await until(lambda: bool(h.batches))
        h.settle_all()
        await until(lambda: h.consumer.commits == [{TP0: 2}])
        h.ctx.shutdown.set()
        await task
        await h.source.aclose()
        assert len(failures) == 1
        assert any("kafka offset commit failed" in r.getMessage() for r in caplog.records)


class TestRebalance:
    async def test_revoke_waits_for_in_flight_batches_then_commits(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        batch = await h.handle({TP0: [rec(0), rec(1)], TP1: [rec(0)]})
        assert batch is not None
        revoke = asyncio.create_task(h.source.partitions_revoked({TP0}))
        await asyncio.sleep(0.05)
        assert not revoke.done()
        batch.receipt.settle()
        await revoke
        assert h.consumer.commits == [{TP0: 2}]
        assert TP0 not in h.source.trackers and TP1 in h.source.trackers

    async def test_revoke_wait_is_bounded_and_late_releases_are_ignored(self, tmp_path: Path) -> None:
        h = Harness(tmp_path, make_config(revoke_timeout=0.05))
        batch = await h.handle({TP0: [rec(0), rec(1)]})
        assert batch is not None
        await asyncio.wait_for(h.source.partitions_revoked({TP0}), 1.0)
        assert h.consumer.commits == []
        # Assigned again (to us): a fresh tracker, from the committed position.
        again = await h.handle({TP0: [rec(0)]})
        assert again is not None
        batch.receipt.settle()  # the old generation's release must not move the new tracker
        await h.source.commit()
        assert h.consumer.commits == []
        again.receipt.settle()
        await h.source.commit()
        assert h.consumer.commits == [{TP0: 1}]

    async def test_listener_delegates_to_the_source(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        h.source._new_consumer()
        await h.consumer.listener.on_partitions_assigned({TP0})
        await h.handle({TP0: [rec(0)]})
        h.settle_all()
        await h.consumer.listener.on_partitions_revoked({TP0})
        assert h.consumer.commits == [{TP0: 1}] and not h.source.trackers


class TestBackpressure:
    async def test_a_long_blocked_emit_pauses_and_keeps_polling(self, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(kafka_source, "PAUSE_AFTER_S", 0.02)
        h = Harness(tmp_path)
        h.emit_gate = asyncio.Event()
        task = asyncio.create_task(h.handle({TP0: [rec(0)]}))
        await until(lambda: bool(h.consumer.keepalive_polls))
        assert h.consumer.paused_tps == {TP0, TP1}
        assert set(h.consumer.keepalive_polls[0]) == {TP0, TP1}
        h.emit_gate.set()
        await task
        assert h.consumer.paused_tps == set()  # resumed
        h.settle_all()

    async def test_a_short_block_does_not_pause(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        h.emit_gate = asyncio.Event()
        task = asyncio.create_task(h.handle({TP0: [rec(0)]}))
        await asyncio.sleep(0.05)
        h.emit_gate.set()
        await task
        assert h.consumer.pause_calls == []
        h.settle_all()


class TestLifecycle:
    async def test_once_reads_to_the_end_offsets_then_returns(self, tmp_path: Path) -> None:
        h = Harness(tmp_path, make_config(fetch_timeout=0.01), once=True)
        h.consumer.end = {TP0: 3, TP1: 1}
        h.consumer.fetches = [{TP0: [rec(0), rec(1)]}, {}, {TP0: [rec(2)], TP1: [rec(0)]},
                              {TP0: [rec(3)]}]  # offset 3 arrived after the start: not read
        await asyncio.wait_for(h.source.run(h.ctx), 5)
        assert sum(len(b.events) for b in h.batches) == 4
        h.settle_all()
        await h.source.aclose()
        assert h.consumer.commits == [{TP0: 3, TP1: 1}]

    async def test_start_retries_until_the_broker_answers(self, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(kafka_source, "_sleep_or_shutdown", _no_sleep)
        h = Harness(tmp_path, once=True)
        h.consumer.start_failures = 2
        h.consumer.end = {TP0: 0, TP1: 0}
        await asyncio.wait_for(h.source.run(h.ctx), 5)
        assert h.source.consumer is h.consumer
        await h.source.aclose()

    async def test_shutdown_while_the_broker_is_down_returns(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        h.consumer.start_failures = 1000
        task = asyncio.create_task(h.source.run(h.ctx))
        await asyncio.sleep(0.05)
        h.ctx.shutdown.set()
        await asyncio.wait_for(task, 2)
        await h.source.aclose()  # nothing started: nothing to commit

    async def test_lag_gauge(self, tmp_path: Path) -> None:
        h = Harness(tmp_path)
        h.source.register_metrics(h.metrics)
        await h.handle({TP0: [rec(5), rec(6)]})
        h.consumer.highwaters = {TP0: 20}
        text = generate_latest(h.metrics.registry).decode()
        assert 'pipeline_kafka_consumer_lag{component="kafka",partition="0",topic="logs"} 15.0' in text
        h.settle_all()
        await h.source.commit()
        text = generate_latest(h.metrics.registry).decode()
        assert 'pipeline_kafka_consumer_lag{component="kafka",partition="0",topic="logs"} 13.0' in text


async def _no_sleep(ctx: SourceContext, delay: float) -> None:
    await asyncio.sleep(0)



