"""`kafka` source against the real broker: the processor path end to end, dead letters, commits.

Records are produced with kcat (an independent client); the processor runs as the real
command, `pipeline run --once`, into a file sink; committed offsets are read back with
the admin client and compared with the log end offsets.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from .conftest import TopicFactory, http_request


def kcat_produce(bootstrap: str, topic: str, lines: list[str], tmp_path: Path) -> None:
    """One record per line, spread over the partitions by librdkafka's partitioner (no key)."""
    path = tmp_path / f"{topic}.in"
    path.write_text("".join(line + "\n" for line in lines))
    proc = subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-l", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


async def committed_and_end(bootstrap: str, group: str, topic: str,
                            partitions: int) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offset and the log end offset, per partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return ({tp.partition: om.offset for tp, om in committed.items() if tp.topic == topic},
            {tp.partition: off for tp, off in ends.items()})


def processor_config(tmp_path: Path, bootstrap: str, topic: str, group: str, out: Path) -> Path:
    path = tmp_path / "processor.yaml"
    path.write_text(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
sources:
  kafka:
    type: kafka
    bootstrap_servers: "{bootstrap}"
    topics: ["{topic}"]
    group_id: "{group}"
    start_from: earliest
sinks:
  out:
    type: file
    inputs: [kafka]
    path: "{out}"
    batch: {{max_events: 5000}}
""")
    return path


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--log-format", "text", "run", "--config", str(config),
                           "--once"], capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        return [json.loads(line) for line in fh]


class TestProcessorPath:
    async def test_100k_events_from_kcat_arrive_and_offsets_are_committed(
            self, tmp_path: Path, kafka_bootstrap: str, kafka_topic: TopicFactory, unique_name: str) -> None:
        n = 100_000
        topic = kafka_topic(partitions=4)
        lines = [json.dumps({"event_id": f"ev-{i:06d}", "message": f"GET /item/{i} 200", "host": "node-2",
                             "log_type": "access", "source": {"path": "/var/log/nginx/access.log"}})
                 for i in range(n)]
        await asyncio.to_thread(kcat_produce, kafka_bootstrap, topic, lines, tmp_path)
        out = tmp_path / "out.jsonl"
        group = f"{unique_name}-processor"
        proc = await asyncio.to_thread(run_once, processor_config(tmp_path, kafka_bootstrap, topic, group, out))

        events = read_jsonl(out)
        assert len(events) == n and len({e["event_id"] for e in events}) == n
        positions = {(e["source"]["partition"], e["source"]["offset"]) for e in events}
        assert len(positions) == n
        assert all(e["source"]["topic"] == topic and e["source"]["path"] == "/var/log/nginx/access.log"
                   for e in events)
        committed, ends = await committed_and_end(kafka_bootstrap, group, topic, 4)
        assert sum(ends.values()) == n and len(ends) == 4
        assert committed == ends
        assert "kafka" in proc.stdout  # the --once summary table names the source

    async def test_non_json_records_go_to_the_dlq_and_the_rest_flows(
            self, tmp_path: Path, kafka_bootstrap: str, kafka_topic: TopicFactory, unique_name: str) -> None:
        topic = kafka_topic(partitions=1)
        good = [json.dumps({"event_id": f"g{i}", "message": "ok"}) for i in range(10)]
        lines = [*good[:4], "this is not json", "[1, 2, 3]", *good[4:]]
        await asyncio.to_thread(kcat_produce, kafka_bootstrap, topic, lines, tmp_path)
        out = tmp_path / "out.jsonl"
        group = f"{unique_name}-processor"
        await asyncio.to_thread(run_once, processor_config(tmp_path, kafka_bootstrap, topic, group, out))

        assert [e["event_id"] for e in read_jsonl(out)] == [f"g{i}" for i in range(10)]
        dead = [json.loads(line) for p in sorted((tmp_path / "data" / "dead_letter").glob("*.jsonl"))
                for line in p.read_text().splitlines()]
        assert [(d["event"]["offset"], d["event"]["value"]) for d in dead] == [(4, "this is not json"),
                                                                                (5, "[1, 2, 3]")]
        assert all(d["component"] == "kafka" and d["event"]["topic"] == topic and d["event"]["partition"] == 0
                   for d in dead)
        assert dead[0]["reason"].startswith("not valid JSON") and dead[1]["reason"].startswith("not a JSON object")
        committed, ends = await committed_and_end(kafka_bootstrap, group, topic, 1)
        assert committed == ends == {0: 12}

    async def test_once_on_an_empty_topic_returns(self, tmp_path: Path, kafka_bootstrap: str,
                                                  kafka_topic: TopicFactory, unique_name: str) -> None:
        topic = kafka_topic(partitions=2)
        out = tmp_path / "out.jsonl"
        await asyncio.to_thread(run_once, processor_config(tmp_path, kafka_bootstrap, topic, unique_name, out))
        assert not out.exists() or out.read_text() == ""


class TestForeignProducer:
    async def test_events_without_timestamp_or_log_type_land_alike_in_every_sink(
            self, tmp_path: Path, kafka_bootstrap: str, kafka_topic: TopicFactory, unique_name: str,
            es_url: str, es_index: str) -> None:
        # A producer that is not our agent: no @timestamp, no log_type, no event_id. Elasticsearch put
        # them in `<prefix>-unknown-<today>` without a @timestamp; ClickHouse dead-lettered them.
        topic = kafka_topic(partitions=1)
        lines = [json.dumps({"message": f"foreign {i}", "level": "INFO", "host": "legacy-1"}) for i in range(20)]
        before = time.time()
        await asyncio.to_thread(kcat_produce, kafka_bootstrap, topic, lines, tmp_path)
        config = tmp_path / "processor.yaml"
        config.write_text(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
sources:
  kafka:
    type: kafka
    bootstrap_servers: "{kafka_bootstrap}"
    topics: ["{topic}"]
    group_id: "{unique_name}-processor"
sinks:
  es:
    type: elasticsearch
    inputs: [kafka]
    hosts: ["{es_url}"]
    index: "{es_index}-{{log_type}}-%Y.%m.%d"
    template: {{name: "{es_index}-template", index_patterns: ["{es_index}-*"]}}
  ch:
    type: clickhouse
    inputs: [kafka]
    dsn: "chdb://{tmp_path}/chdb"
""")
        await asyncio.to_thread(run_once, config)
        assert not list((tmp_path / "data" / "dead_letter").glob("*.jsonl")), "nothing dead-lettered"

        http_request("POST", f"{es_url}/{es_index}-*/_refresh")  # searchable now, not after the refresh interval
        status, body = http_request("POST", f"{es_url}/{es_index}-*/_search?size=100", {"query": {"match_all": {}}})
        assert status == 200
        hits = body["hits"]["hits"]
        assert len(hits) == 20
        day = time.strftime("%Y.%m.%d", time.gmtime(before))
        assert {h["_index"] for h in hits} <= {f"{es_index}-application-{day}",
                                               f"{es_index}-application-{time.strftime('%Y.%m.%d')}"}
        docs = [h["_source"] for h in hits]
        assert all(d["log_type"] == "application" and d["tags"] == ["_ingest_timestamp"] for d in docs)
        stamps = sorted(d["@timestamp"] for d in docs)
        assert time.strftime("%Y-%m-%dT%H:%M", time.gmtime(before - 60)) <= stamps[0][:16]
        assert {h["_id"] for h in hits} == {f"{topic}-0-{i}" for i in range(20)}

        query = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pipeline", "query", "--config", str(config),
             "SELECT count() AS n, uniqExact(event_id) AS ids, min(timestamp) > now() - 600 AS recent, "
             "countIf(has(tags, '_ingest_timestamp')) AS tagged FROM logs.application_logs"],
            capture_output=True, text=True, timeout=120, check=False)
        assert query.returncode == 0, query.stderr
        assert [cell.strip() for cell in query.stdout.splitlines()[2].split("|")] == ["20", "20", "1", "20"]
