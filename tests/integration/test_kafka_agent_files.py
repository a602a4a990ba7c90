"""The agent role as operators run it: `pipeline run --once` over real log files ->
parse -> the Kafka sink, read back with kcat (issue acceptance: 100k lines from files)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

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
    async def test_100k_lines_from_files_arrive_once_keyed_by_stream_and_zstd(
        self, tmp_path: Path, kafka_bootstrap: str, unique_name: str, created_topics: list[str]
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
                assert record["key"] == f"node-7:{path}"
                assert event["log_type"] == log_type and "_grokparsefailure" not in event.get("tags", ())
        assert len(seen) == sum(LINES.values()) and set(seen.values()) == {1}, "every line exactly once"
        codecs: Counter[int] = Counter()
        for topic in topics:
            codecs += await asyncio.to_thread(batch_codecs, topic)
        assert set(codecs) == {CODEC_IDS["zstd"]}, codecs
