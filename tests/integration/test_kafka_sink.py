"""`kafka` sink against the real broker: the agent path end to end, codecs, size rejections, topics.

What was produced is read back with kcat (an independent client, librdkafka). The
compression codec is read from the broker's own log segments: each record batch's
attributes (bits 0-2: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd), and, for the 100k
test, also through Kafka's own `kafka.tools.DumpLogSegments` run with the broker's jars.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Literal

import pytest
from aiokafka.errors import KafkaConnectionError

from pipeline.acks import Receipt, Status
from pipeline.config import SourceConfig, load_config
from pipeline.daemon import Daemon
from pipeline.errors import StartError, TransientError
from pipeline.event import Batch
from pipeline.registry import register
from sinks.kafka import KafkaSink, KafkaSinkConfig

from .conftest import TopicFactory

LOG_TYPES = ("application", "access", "error")
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
SERVICES_HOME = Path(os.environ.get("PIPELINE_SERVICES_HOME") or "~/.cache/pipeline-services").expanduser()
KAFKA_DATA = SERVICES_HOME / "kafka" / "data"


# -- a generating source: the agent's file/container sources stand in -------------------

RELEASED: list[Status] = []


class GenSourceConfig(SourceConfig):
    type: Literal["test_kafka_gen"]
    events: int = 1000
    batch: int = 500
    streams: int = 6
    message_bytes: int = 100


class GenSource:
    """Events as the parse transform leaves them: log_type per stream, source.path, event_id."""

    can_acknowledge = True

    def __init__(self, name: str, config: GenSourceConfig) -> None:
        self.name = name
        self.config = config

    async def run(self, ctx: Any) -> None:
        cfg = self.config
        pad = "x" * cfg.message_bytes
        for start in range(0, cfg.events, cfg.batch):
            events = []
            for n in range(start, min(start + cfg.batch, cfg.events)):
                stream = n % cfg.streams
                events.append(
                    {
                        "@timestamp": "2024-05-01T10:00:00.000Z",
                        "host": "node-1",
                        "event_id": f"ev-{n:07d}",
                        "log_type": LOG_TYPES[stream % 3],
                        "seq": n,
                        "source": {"path": f"/var/log/app/stream-{stream}.log", "offset": n * 200},
                        "message": f"{n} {pad}",
                    }
                )
            await ctx.emit(Batch(events, Receipt(RELEASED.append)))

    async def aclose(self) -> None:
        return None


@register("source", "test_kafka_gen", GenSourceConfig)
def _build_gen(name: str, config: GenSourceConfig, ctx: Any) -> GenSource:
    return GenSource(name, config)


# -- helpers ------------------------------------------------------------------------------


def kcat_read(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of a topic, as kcat's JSON envelope (key, payload, partition, offset, headers)."""
    proc = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def batch_codecs(topic: str) -> Counter[int]:
    """Compression codec ids of every record batch in the topic's segments, from the broker's files."""
    codecs: Counter[int] = Counter()
    dirs = sorted(KAFKA_DATA.glob(f"{topic}-[0-9]*"))
    assert dirs, f"no partition folders for {topic} under {KAFKA_DATA}"
    for folder in dirs:
        for segment in sorted(folder.glob("*.log")):
            data = segment.read_bytes()
            pos = 0
            # v2 batch header: baseOffset i64, batchLength i32, leaderEpoch i32, magic i8, crc u32, attributes i16
            while pos + 23 <= len(data):
                (length,) = struct.unpack_from(">i", data, pos + 8)
                magic = data[pos + 16]
                assert magic == 2, f"{segment}: record batch magic {magic}"
                (attributes,) = struct.unpack_from(">h", data, pos + 21)
                codecs[attributes & 0x07] += 1
                pos += 12 + length
    return codecs


def dump_log_segments_codecs(topics: list[str]) -> Counter[str]:
    """`compresscodec:` of every batch as Kafka's DumpLogSegments tool reports it."""
    libs = sorted((SERVICES_HOME / "kafka").glob("libs-*"))
    assert libs, "no Kafka jars in the services cache"
    files = [str(p) for t in topics for d in sorted(KAFKA_DATA.glob(f"{t}-[0-9]*")) for p in sorted(d.glob("*.log"))]
    proc = subprocess.run(
        ["java", "-cp", f"{libs[-1]}/*", "kafka.tools.DumpLogSegments", "--files", ",".join(files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Counter(part.split()[0] for part in proc.stdout.split("compresscodec:")[1:])


@pytest.fixture(autouse=True)
def _reset() -> None:
    RELEASED.clear()


def agent_config(
    write_config: Any,
    tmp_path: Path,
    bootstrap: str,
    topic: str,
    sink_extra: str = "",
    events: int = 1000,
    message_bytes: int = 100,
    streams: int = 6,
) -> Any:
    return load_config(
        write_config(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
sources:
  gen: {{type: test_kafka_gen, events: {events}, batch: 1000, message_bytes: {message_bytes}, streams: {streams}}}
sinks:
  kafka:
    type: kafka
    inputs: [gen]
    bootstrap_servers: "{bootstrap}"
    topic: "{topic}"
    batch: {{max_events: 2000}}
    max_in_flight: 2
{sink_extra}
""")
    )


# -- tests --------------------------------------------------------------------------------


class TestAgentPath:
    async def test_100k_events_reach_three_topics_keyed_and_zstd(
        self, write_config: Any, tmp_path: Path, kafka_bootstrap: str, unique_name: str, created_topics: list[str]
    ) -> None:
        n = 100_000
        topics = [f"{unique_name}-{lt}-logs" for lt in LOG_TYPES]
        created_topics.extend(topics)
        cfg = agent_config(
            write_config,
            tmp_path,
            kafka_bootstrap,
            f"{unique_name}-{{log_type}}-logs",
            """
    create_topics: true
    topic_partitions: 3
    key: "{host}:{source.path}"
""",
            events=n,
        )
        daemon = Daemon(cfg, once=True)
        await asyncio.wait_for(daemon.run(), 120)
        assert len(RELEASED) == n // 1000 and set(RELEASED) == {Status.DELIVERED}

        seen: Counter[str] = Counter()
        stream_partitions: dict[str, set[tuple[str, int]]] = defaultdict(set)
        last_seq: dict[tuple[str, int, str], int] = {}
        for topic, log_type in zip(topics, LOG_TYPES, strict=True):
            for record in await asyncio.to_thread(kcat_read, kafka_bootstrap, topic):
                event = json.loads(record["payload"])
                seen[event["event_id"]] += 1
                assert event["log_type"] == log_type
                path = event["source"]["path"]
                assert record["key"] == f"node-1:{path}"
                headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
                assert headers == {"log_type": log_type, "host": "node-1", "event_id": event["event_id"]}
                where = (topic, record["partition"])
                stream_partitions[path].add(where)
                # Order within a stream is kept: offsets rise with the sequence.
                order_key = (topic, record["partition"], path)
                assert event["seq"] > last_seq.get(order_key, -1)
                last_seq[order_key] = event["seq"]
        assert len(seen) == n and set(seen.values()) == {1}, "every event exactly once"
        assert all(len(where) == 1 for where in stream_partitions.values()), "one stream, one partition"

        codecs = Counter[int]()
        for topic in topics:
            codecs += await asyncio.to_thread(batch_codecs, topic)
        assert set(codecs) == {CODEC_IDS["zstd"]}, codecs
        reported = await asyncio.to_thread(dump_log_segments_codecs, topics)
        assert set(reported) == {"zstd"} and sum(reported.values()) == sum(codecs.values()), reported
        assert daemon.metrics.stats["kafka"].bytes_out > 0


class TestPartitioning:
    async def test_one_busy_file_spreads_over_every_partition(
        self, write_config: Any, tmp_path: Path, kafka_bootstrap: str, kafka_topic: TopicFactory
    ) -> None:
        # The default (no key): a processor group of three can share one file's load.
        topic = kafka_topic(partitions=3)
        cfg = agent_config(
            write_config,
            tmp_path,
            kafka_bootstrap,
            topic,
            f"""
    topics_to_create: ["{topic}"]
""",
            events=6000,
            streams=1,
        )
        await asyncio.wait_for(Daemon(cfg, once=True).run(), 60)
        records = await asyncio.to_thread(kcat_read, kafka_bootstrap, topic)
        seqs = [json.loads(r["payload"])["seq"] for r in records]
        assert sorted(seqs) == list(range(6000)), "every event exactly once"
        assert {json.loads(r["payload"])["source"]["path"] for r in records} == {"/var/log/app/stream-0.log"}
        by_partition: dict[int, list[int]] = defaultdict(list)
        for record, seq in zip(records, seqs, strict=True):
            assert record["key"] is None
            by_partition[record["partition"]].append(seq)
        assert sorted(by_partition) == [0, 1, 2]
        # Round robin per send (the source's batches of 1000, merged up to batch.max_events 2000):
        # each partition holds whole sends, each in order, and the sends in the order they were made.
        for seqs_of_partition in by_partition.values():
            assert seqs_of_partition == sorted(seqs_of_partition)
            runs = [seqs_of_partition[i : i + 1000] for i in range(0, len(seqs_of_partition), 1000)]
            assert all(run == list(range(run[0], run[0] + 1000)) and run[0] % 1000 == 0 for run in runs)


class TestCodecs:
    @pytest.mark.parametrize("codec", ["lz4", "snappy", "gzip", "none"])
    async def test_codec_is_used_and_readable(
        self, codec: str, write_config: Any, tmp_path: Path, kafka_bootstrap: str, kafka_topic: TopicFactory
    ) -> None:
        topic = kafka_topic(partitions=2)
        cfg = agent_config(
            write_config,
            tmp_path,
            kafka_bootstrap,
            topic,
            f"""
    compression: {codec}
    topics_to_create: ["{topic}"]
""",
            events=600,
        )
        await asyncio.wait_for(Daemon(cfg, once=True).run(), 60)
        records = await asyncio.to_thread(kcat_read, kafka_bootstrap, topic)
        assert sorted(json.loads(r["payload"])["seq"] for r in records) == list(range(600))
        assert set(await asyncio.to_thread(batch_codecs, topic)) == {CODEC_IDS[codec]}


class TestRejections:
    async def test_record_too_large_for_the_topic_goes_to_the_dlq(
        self, write_config: Any, tmp_path: Path, kafka_bootstrap: str, kafka_topic: TopicFactory
    ) -> None:
        topic = kafka_topic(config={"max.message.bytes": "20000"})
        big = base64.b64encode(os.urandom(30_000)).decode()  # incompressible, ~40 kB
        cfg = agent_config(
            write_config,
            tmp_path,
            kafka_bootstrap,
            topic,
            f"""
    compression: none
    topics_to_create: ["{topic}"]
""",
            events=20,
        )

        class OneBig(GenSource):
            async def run(self, ctx: Any) -> None:
                events = [
                    {"host": "h", "event_id": f"e{i}", "message": big if i == 7 else f"small {i}"} for i in range(20)
                ]
                await ctx.emit(Batch(events, Receipt(RELEASED.append)))

        daemon = Daemon(cfg, once=True)
        source = daemon.topology.nodes["gen"]
        source.component = OneBig("gen", source.config)
        await asyncio.wait_for(daemon.run(), 60)
        assert RELEASED == [Status.REJECTED]  # settled: the DLQ counts as settled
        dead = daemon.topology.dlq.read_all()
        assert [d["event"]["event_id"] for d in dead] == ["e7"]
        assert "too large" in dead[0]["reason"] and "MessageSizeTooLargeError" in dead[0]["reason"]
        records = await asyncio.to_thread(kcat_read, kafka_bootstrap, topic)
        assert sorted(json.loads(r["payload"])["event_id"] for r in records) == sorted(
            f"e{i}" for i in range(20) if i != 7
        )
        assert daemon.metrics.stats["kafka"].dead_lettered == 1


class TestTopicsAndHealth:
    async def test_missing_topic_is_an_error_at_start_naming_it(self, kafka_bootstrap: str, unique_name: str) -> None:
        cfg = KafkaSinkConfig.model_validate(
            {
                "type": "kafka",
                "inputs": ["x"],
                "bootstrap_servers": kafka_bootstrap,
                "topic": f"{unique_name}-{{log_type}}",
            }
        )
        sink = KafkaSink("k", cfg)
        try:
            with pytest.raises(StartError, match=f"{unique_name}-access, {unique_name}-application"):
                await sink.start()
            await sink.healthcheck()  # the broker itself is fine
        finally:
            await sink.aclose()

    def test_missing_topic_with_once_is_one_line_and_exit_2(
        self, kafka_bootstrap: str, unique_name: str, tmp_path: Path
    ) -> None:
        logs = tmp_path / "app.log"
        logs.write_text("hello\n")
        config = tmp_path / "agent.yaml"
        config.write_text(
            f"data_dir: {tmp_path}/data\n"
            "sources:\n"
            f"  app: {{type: file, include: ['{logs}'], log_type: application}}\n"
            "sinks:\n"
            f"  kafka: {{type: kafka, inputs: [app], bootstrap_servers: '{kafka_bootstrap}', "
            f"topic: '{unique_name}-{{log_type}}', create_topics: false}}\n"
        )
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "--log-level", "error", "run", "--config", str(config), "--once"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines == [
            f"{config}: sinks.kafka.topics_to_create: topic(s) {unique_name}-access, {unique_name}-application, "
            f"{unique_name}-error do not exist on {kafka_bootstrap}: create them, set create_topics: true, or list "
            "the topics the template yields in topics_to_create",
            "configuration invalid: 1 problem(s)",
        ]
        assert "Unclosed" not in proc.stderr and "Traceback" not in proc.stderr

    async def test_unreachable_broker(self) -> None:
        cfg = KafkaSinkConfig.model_validate(
            {"type": "kafka", "inputs": ["x"], "bootstrap_servers": "127.0.0.1:1", "request_timeout": "2s"}
        )
        sink = KafkaSink("k", cfg)
        with pytest.raises(KafkaConnectionError):
            await sink.start()
        with pytest.raises(TransientError, match="not started"):
            await sink.healthcheck()
