"""The agent role as operators run it: `pipeline run --once` over real log files ->
parse -> the Kafka sink, read back with kcat (issue acceptance: 100k lines from files)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .conftest import TopicFactory
from .test_kafka_sink import CODEC_IDS, batch_codecs, kcat_read

LINES = {"access": 40_000, "application": 30_000, "error": 30_000}


def _line(log_type: str, i: int) -> str:
    s = i % 60
    if log_type == "access":
        return f'89.160.20.112 - - [10/Oct/2024:13:55:{s:02d} +0000] "GET /item/{i} HTTP/1.1" 200 {i} "-" "curl/8"\n'
    if log_type == "application":
        return f"2024-10-10 13:55:{s:02d},123 INFO shop.orders - order {i} placed\n"
    return (f"2024/10/10 13:55:{s:02d} [error] 12#12: *{i} upstream timed out, client: 1.2.3.4, "
            f'server: shop, request: "GET /item/{i} HTTP/1.1", host: "shop"\n')


class TestAgentFromFiles:
    # workers 2: worker processes parse and encode the lines; the sink sends their JSON as the record
    # values (access lines written straight from the match), and must give what one process gives.
    @pytest.mark.parametrize("workers", [1, 2])
    async def test_100k_lines_from_files_arrive_once_spread_over_partitions_and_zstd(
        self, tmp_path: Path, kafka_bootstrap: str, unique_name: str, created_topics: list[str], workers: int
    ) -> None:
        logs = tmp_path / "logs"
        logs.mkdir()
        sources = ""
        for log_type, n in LINES.items():
            (logs / f"{log_type}.log").write_text("".join(_line(log_type, i) for i in range(n)))
            sources += (f"  {log_type}: {{type: file, include: [\"{logs}/{log_type}.log\"], "
                        f"log_type: {log_type}}}\n")
        topics = [f"{unique_name}-{lt}-logs" for lt in LINES]
        created_topics.extend(topics)
        config = tmp_path / "agent.yaml"
        config.write_text(f"""
data_dir: {tmp_path}/data
host: node-7
api: {{enabled: false}}
workers: {workers}
sources:
{sources}
transforms:
  parsed: {{type: parse, inputs: [{", ".join(LINES)}]}}
sinks:
  kafka:
    type: kafka
    inputs: [parsed]
    bootstrap_servers: "{kafka_bootstrap}"
    topic: "{unique_name}-{{log_type}}-logs"
    create_topics: true
    topics_to_create: [{", ".join(topics)}]
    topic_partitions: 3
""")
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "pipeline", "run", "--config", str(config), "--once"],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]

        seen: Counter[str] = Counter()
        for topic, (log_type, n) in zip(topics, LINES.items(), strict=True):
            records = await asyncio.to_thread(kcat_read, kafka_bootstrap, topic)
            assert len(records) == n, f"{topic}: {len(records)} records, {n} lines"
            path = str(logs / f"{log_type}.log")
            for record in records:
                event = json.loads(record["payload"])
                seen[event["event_id"]] += 1
                assert record["key"] is None and event["source"]["path"] == path
                assert event["log_type"] == log_type and "_grokparsefailure" not in event.get("tags", ())
                headers = dict(zip(record["headers"][::2], record["headers"][1::2], strict=True))
                assert headers == {"log_type": log_type, "host": "node-7", "event_id": event["event_id"]}
                if log_type == "access":
                    i = int(event["path"].rsplit("/", 1)[1])
                    assert event["bytes"] == i and event["status"] == 200 and event["client_ip"] == "89.160.20.112"
            assert {r["partition"] for r in records} == {0, 1, 2}, "one file over every partition"
        assert len(seen) == sum(LINES.values()) and set(seen.values()) == {1}, "every line exactly once"
        codecs: Counter[int] = Counter()
        for topic in topics:
            codecs += await asyncio.to_thread(batch_codecs, topic)
        assert set(codecs) == {CODEC_IDS["zstd"]}, codecs


    async def test_a_line_longer_than_max_line_bytes_reaches_kafka_cut_and_tagged(
        self, tmp_path: Path, kafka_bootstrap: str, kafka_topic: TopicFactory
    ) -> None:
        # The file source cuts a line at its default max_line_bytes (1 MiB); the event around it is
        # larger than the sink's default max_request_bytes (1 MiB, the broker's own default limit),
        # so the sink cuts the message a little more instead of dead-lettering it. No compression:
        # the broker checks the record batch as sent.
        topic = kafka_topic()  # the broker's default max.message.bytes
        logs = tmp_path / "logs"
        logs.mkdir()
        long_line = "".join(f"{i:08d} " for i in range(400_000))  # 3.6 MB
        (logs / "app.log").write_text(f"2024-10-10 13:55:00,123 INFO app - before\n{long_line}\n"
                                      "2024-10-10 13:55:01,123 INFO app - after\n")
        config = tmp_path / "agent.yaml"
        config.write_text(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
sources:
  app: {{type: file, include: ["{logs}/app.log"], log_type: application}}
sinks:
  kafka:
    type: kafka
    inputs: [app]
    bootstrap_servers: "{kafka_bootstrap}"
    topic: "{topic}"
    topics_to_create: ["{topic}"]
    compression: none
""")
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "pipeline", "run", "--config", str(config), "--once"],
            capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "messages cut to fit max_request_bytes" in proc.stderr
        assert not list((tmp_path / "data").glob("dead_letter/**/*.jsonl")), "nothing dead-lettered"
        records = await asyncio.to_thread(kcat_read, kafka_bootstrap, topic)
        events = [json.loads(r["payload"]) for r in records]
        assert [e["message"][:12] for e in events] == ["2024-10-10 1", long_line[:12], "2024-10-10 1"]
        cut = events[1]
        assert "_truncated" in cut["tags"]
        assert long_line.startswith(cut["message"])
        assert 1024 * 1024 - 2048 < len(cut["message"]) < 1024 * 1024
        assert len(records[1]["payload"]) <= 1024 * 1024
