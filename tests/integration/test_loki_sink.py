"""The `loki` sink against a real server that speaks Loki's push API (VictoriaLogs).

What arrived is read back independently with LogsQL: every line, with its stream
labels and its structured metadata, for both request encodings.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from parsers.dates import rfc3339_ms
from pipeline.metrics import Metrics
from sinks.loki import LokiSink, LokiSinkConfig
from tests.integration.conftest import logsql

ROOT = Path(__file__).resolve().parents[2]
PUSH_PATH = "/insert/loki/api/v1/push"
SERVICES = ("checkout", "orders", 'auth "v2"')  # a quote in a label value, escaped on the wire


def app_lines(n: int, now: float) -> tuple[list[str], list[dict[str, Any]]]:
    """JSON application log lines, a little out of order in time, and what each should become."""
    lines, expected = [], []
    for i in range(n):
        service = SERVICES[i % len(SERVICES)]
        ts = rfc3339_ms(now - 60 + i * 0.01 + random.uniform(-2, 2))  # out of order within a stream
        record = {"timestamp": ts, "level": "ERROR" if i % 7 == 0 else "INFO", "service": service,
                  "message": f"app {i} naïve ✓ \"quoted\"", "trace_id": f"trace-{i:05d}", "request_id": f"req-{i}"}
        lines.append(orjson.dumps(record).decode())
        expected.append({"_msg": record["message"], "log_type": "application", "service": service,
                         "trace_id": record["trace_id"], "request_id": record["request_id"], "_time": ts})
    return lines, expected


def access_lines(n: int, now: float) -> tuple[list[str], list[dict[str, Any]]]:
    lines, expected = [], []
    for i in range(n):
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now - 30 + i * 0.01))
        line = f'10.1.{i // 250}.{i % 250} - - [{stamp}] "GET /item/{i} HTTP/1.1" 200 {i} "-" "curl/8"'
        lines.append(line)
        # No service and no trace: the label falls back to its default, no metadata at all.
        expected.append({"_msg": line, "log_type": "access", "service": "none"})
    return lines, expected


def epoch_ms(rfc3339: str) -> int:
    """VictoriaLogs trims trailing zeros of fractions (…:37.46Z): compare instants, not strings."""
    return round(datetime.fromisoformat(rfc3339).timestamp() * 1000)


def as_counter(rows: list[dict[str, Any]], with_time: bool) -> Counter[str]:
    keys = ("_msg", "log_type", "service", "trace_id", "request_id")
    out: Counter[str] = Counter()
    for row in rows:
        item: dict[str, Any] = {k: row[k] for k in keys if k in row}
        if with_time:
            item["_time"] = epoch_ms(row["_time"])
        out[orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()] += 1
    return out


def test_files_parse_loki_every_line_with_labels_and_metadata(tmp_path: Path, victorialogs_url: str,
                                                               unique_name: str) -> None:
    now = time.time()
    app, app_expected = app_lines(900, now)
    access, access_expected = access_lines(300, now)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("\n".join(app) + "\n")
    (logs / "access.log").write_text("\n".join(access) + "\n")
    def loki(encoding: str, **extra: Any) -> dict[str, Any]:
        return {"type": "loki", "inputs": ["parsed"], "endpoint": victorialogs_url, "path": PUSH_PATH,
                "healthcheck_path": "/health", "encoding": encoding, "line": "{message}",
                "labels": {"job": unique_name, "enc": encoding, "log_type": "{log_type}",
                           "service": "{service|none}"},
                "structured_metadata": ["trace_id", "request_id"],
                "batch": {"max_events": 200, "timeout": "50ms"}, **extra}

    config = tmp_path / "pipeline.yaml"
    config.write_bytes(orjson.dumps({  # JSON is YAML
        "data_dir": str(tmp_path / "data"),
        "api": {"enabled": False},
        "sources": {"app": {"type": "file", "include": [f"{logs}/app.log"], "log_type": "application"},
                    "access": {"type": "file", "include": [f"{logs}/access.log"], "log_type": "access"}},
        "transforms": {"parsed": {"type": "parse", "inputs": ["app", "access"]}},
        "sinks": {"proto": loki("protobuf"), "json": loki("json", compression="gzip")},
    }))
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--log-format", "text", "run", "--config", str(config),
                           "--once"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"pipeline run --once failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert not (tmp_path / "data" / "dead_letter").exists() or not any((tmp_path / "data" / "dead_letter").iterdir())

    expected = app_expected + access_expected
    for enc in ("protobuf", "json"):
        rows = logsql(victorialogs_url, f'job:"{unique_name}" AND enc:"{enc}"')
        assert len(rows) == len(expected), f"{enc}: {len(rows)} rows for {len(expected)} lines"
        # Every line arrived once, with its labels and its structured metadata; app lines at their own time.
        assert as_counter(rows, with_time=False) == as_counter(expected, with_time=False), enc
        app_rows = [r for r in rows if r["log_type"] == "application"]
        assert as_counter(app_rows, with_time=True) == as_counter(app_expected, with_time=True), enc
        # Labels are the stream, structured metadata is not.
        streams = {r["_stream"] for r in rows}
        assert streams == {
            f'{{enc="{enc}",job="{unique_name}",log_type="application",service="{s}"}}'.replace('"auth "v2""',
                                                                                                 '"auth \\"v2\\""')
            for s in SERVICES
        } | {f'{{enc="{enc}",job="{unique_name}",log_type="access",service="none"}}'}
        assert not any("trace_id" in s for s in streams)


def make_sink(url: str, **body: Any) -> LokiSink:
    config = LokiSinkConfig.model_validate({"type": "loki", "inputs": ["src"], "endpoint": url, "path": PUSH_PATH,
                                            "healthcheck_path": "/health", "line": "{message}", **body})
    metrics = Metrics()
    return LokiSink("loki", config, metrics=metrics, stats=metrics.component("loki", "sink", "loki"))


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
async def test_label_values_survive_the_round_trip(victorialogs_url: str, unique_name: str, encoding: str) -> None:
    values = ['double "quote"', "back\\slash", "tab\there", "ünïcödé ✓ 日本", "{braces}=,comma", "new\nline"]
    sink = make_sink(victorialogs_url, encoding=encoding, labels={"job": unique_name, "v": "{value}"},
                     structured_metadata={"meta": "{value}"})
    await sink.start()
    try:
        await sink.healthcheck()
        outcome = await sink.send([{"@timestamp": rfc3339_ms(), "message": f"m{i}", "value": v}
                                   for i, v in enumerate(values)])
    finally:
        await sink.aclose()
    assert outcome.retry == [] and outcome.rejected == []
    rows = sorted(logsql(victorialogs_url, f'job:"{unique_name}"'), key=lambda r: r["_msg"])
    assert [(r["_msg"], r["v"], r["meta"]) for r in rows] == [(f"m{i}", v, v) for i, v in enumerate(values)]


async def test_overflow_stream_keeps_every_event_and_its_labels(victorialogs_url: str, unique_name: str) -> None:
    sink = make_sink(victorialogs_url, labels={"job": unique_name, "user": "{user}"}, max_streams=3,
                     structured_metadata=["trace_id"])
    await sink.start()
    try:
        outcome = await sink.send([{"@timestamp": rfc3339_ms(), "message": f"m{i}", "user": f"user-{i}",
                                    "trace_id": f"t{i}"} for i in range(10)])
    finally:
        await sink.aclose()
    assert outcome.rejected == []
    rows = logsql(victorialogs_url, f'job:"{unique_name}"')
    assert sorted(r["_msg"] for r in rows) == sorted(f"m{i}" for i in range(10))
    normal = [r for r in rows if "pipeline_overflow" not in r]
    overflow = [r for r in rows if r.get("pipeline_overflow") == "true"]
    assert len(normal) == 3 and len(overflow) == 7
    assert {r["_stream"] for r in overflow} == {f'{{job="{unique_name}",pipeline_overflow="true"}}'}
    # The label each would have had is there, as structured metadata, with the event's own metadata.
    assert all(r["user"] == f"user-{r['_msg'][1:]}" and r["trace_id"] == f"t{r['_msg'][1:]}" for r in rows)


async def test_healthcheck_and_a_bad_request_from_the_real_server(victorialogs_url: str) -> None:
    # VictoriaLogs answers /ready with 400 (it has no such page): a real non-2xx answer.
    sink = make_sink(victorialogs_url, healthcheck_path="/ready")
    await sink.start()
    try:
        with pytest.raises(Exception, match="HTTP 400"):
            await sink.healthcheck()
    finally:
        await sink.aclose()
