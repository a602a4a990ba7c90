"""Throughput of the `loki` sink: generated events -> the real driver and sink -> VictoriaLogs.

    scripts/services up victorialogs
    python bench/bench_loki.py [--events 200000] [--encodings protobuf,json,json+gzip]
                               [--send-events 1000] [--in-flight 2] [--line json|message]
                               [--url http://127.0.0.1:9428]

Two measurements per encoding:

- the sink's own Python work, no I/O: events -> streams (labels, structured metadata,
  timestamps) -> request body (protobuf + snappy, or JSON, or JSON + gzip): events/s
  and CPU seconds per million events;
- end to end: N events (made before the clock starts) in batches of 1000 through a
  bounded queue into the real SinkDriver and sink, pushed to VictoriaLogs until every
  batch is settled: events/s (wall) and this process's CPU seconds. The count is then
  checked with LogsQL.

Events look like parsed application logs (~250 bytes as JSON): 4 services x 3 levels
x 2 hosts = 24 streams, a unique trace_id and request_id each as structured metadata.
VictoriaLogs runs on the same 2-core machine and competes for its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_file_source import machine  # noqa: E402
from bench_stores import drive  # noqa: E402

from parsers.dates import rfc3339_ms  # noqa: E402
from pipeline.memtune import tune_memory  # noqa: E402
from pipeline.metrics import Metrics  # noqa: E402
from sinks.loki import LokiSink, LokiSinkConfig  # noqa: E402
from sinks.loki.encoding import ProtobufEncoder, encode_json, gzip  # noqa: E402
from sinks.loki.streams import StreamMapper  # noqa: E402


def app_events(n: int) -> list[dict[str, Any]]:
    now = time.time() - 600
    services = ("checkout", "orders", "auth", "search")
    levels = ("INFO", "INFO", "INFO", "WARN", "ERROR")
    out = []
    for i in range(n):
        out.append({
            "@timestamp": rfc3339_ms(now + i / 1000), "log_type": "application", "host": f"node-{i % 2}",
            "source": {"path": "/var/log/app/app.log", "offset": i * 200},
            "service": services[i % 4], "level": levels[i % 5 % 3] if i % 5 < 3 else levels[i % 5],
            "logger": "app.handlers", "trace_id": f"{i:032x}", "request_id": f"req-{i:010d}",
            "message": f"request {i} handled in {i % 997} ms for user u{i % 5000} path /api/v1/items/{i % 10000}",
        })
    return out


def config(args: argparse.Namespace, job: str, encoding: str) -> LokiSinkConfig:
    enc, _, packed = encoding.partition("+")
    return LokiSinkConfig.model_validate({
        "type": "loki", "inputs": ["gen"], "endpoint": args.url, "path": "/insert/loki/api/v1/push",
        "healthcheck_path": "/health", "encoding": enc, "compression": packed or "none",
        "labels": {"job": job, "service": "{service}", "level": "{level}", "host": "{host}"},
        "structured_metadata": ["trace_id", "request_id"],
        **({"line": "{message}"} if args.line == "message" else {}),
        "batch": {"max_events": args.send_events, "timeout": "100ms"}, "max_in_flight": args.in_flight,
    })


def python_work(events: list[dict[str, Any]], cfg: LokiSinkConfig, encoding: str, chunk: int) -> tuple[float, float]:
    """(events/s, CPU-s per million events) of grouping + encoding alone."""
    mapper = StreamMapper(cfg)
    proto = ProtobufEncoder()
    size = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), chunk):
        streams = mapper.group(events[i:i + chunk]).streams
        if encoding == "protobuf":
            body = proto.encode(streams)
        else:
            body = encode_json(streams)
            if encoding == "json+gzip":
                body = gzip(body)
        size += len(body)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return len(events) / wall, cpu / len(events) * 1e6


async def end_to_end(events: list[dict[str, Any]], cfg: LokiSinkConfig, tmp: Path) -> tuple[float, float, int]:
    """(events/s, CPU seconds of this process, body bytes) for pushing every event through the driver."""
    metrics = Metrics()
    sink = LokiSink("bench", cfg, metrics=metrics, stats=metrics.component("bench", "sink", "loki"))
    wall, cpu, metrics = await drive(sink, cfg, events, tmp, metrics)
    return len(events) / wall, cpu, metrics.component("bench", "sink", "loki").bytes_out


def stored(url: str, job: str) -> int:
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=60).read()
    query = urllib.parse.urlencode({"query": f'job:"{job}" | stats count() n'})
    with urllib.request.urlopen(f"{url}/select/logsql/query?{query}", timeout=60) as resp:
        rows = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    return int(rows[0]["n"]) if rows else 0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--encodings", default="protobuf,json,json+gzip")
    parser.add_argument("--send-events", type=int, default=1000, help="batch.max_events (events per push)")
    parser.add_argument("--in-flight", type=int, default=2, help="max_in_flight")
    parser.add_argument("--line", choices=("json", "message"), default="json",
                        help="the line: the whole event as JSON (the default) or its message")
    parser.add_argument("--url", default="http://127.0.0.1:9428")
    args = parser.parse_args()
    tune_memory()  # as `pipeline run` does: GC thresholds and malloc settings decide much of the cost

    print(machine())
    events = app_events(args.events)
    print(f"{len(events)} events, 24 streams, line={args.line}, {args.send_events} events/push, "
          f"max_in_flight={args.in_flight}")
    print(f"{'encoding':<10} {'encode ev/s':>12} {'CPU-s/1M':>9} {'push ev/s':>10} {'CPU-s':>7} {'MiB sent':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for encoding in args.encodings.split(","):
            job = f"bench-{uuid.uuid4().hex[:8]}"
            cfg = config(args, job, encoding)
            rate, cpu_per_m = python_work(events, cfg, encoding, args.send_events)
            push_rate, cpu, sent = await end_to_end(events, cfg, Path(tmp))
            count = stored(args.url, job)
            assert count == len(events), f"{encoding}: VictoriaLogs has {count} of {len(events)}"
            print(f"{encoding:<10} {rate:>12,.0f} {cpu_per_m:>9.2f} {push_rate:>10,.0f} {cpu:>7.2f} "
                  f"{sent / 2**20:>9.1f}")


if __name__ == "__main__":
    asyncio.run(main())
