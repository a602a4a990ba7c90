"""Throughput into the stores: generated access events -> elasticsearch / clickhouse sink via the driver.

    scripts/services up elasticsearch        # for the elasticsearch run
    python bench/bench_stores.py [--events 200000] [--stores elasticsearch,clickhouse]
                                 [--es-url http://127.0.0.1:9200] [--send-events 5000] [--in-flight 2]
                                 [--ch-dedup default|on|off]

For each store: N events shaped like parsed nginx access lines (made in memory before
the clock starts) go in batches of 1000 through a bounded queue into the real
SinkDriver and sink, until every batch is settled; events/s = N / wall time. The
Elasticsearch run writes daily indices `bench-<id>-access-*` (deleted afterwards);
the ClickHouse run writes to chDB (the embedded engine) in a temporary directory, then
times a few queries as stored (`final = 0`) and with replays collapsed (`final = 1`,
what `pipeline query` uses).

Also measured: the sink's own Python work alone (bulk NDJSON encoding; conversion to
typed columns), which bounds what one process can push into either store.

The stores run on the same machine and compete for its cores: whole-machine numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_file_source import machine  # noqa: E402

from parsers.dates import rfc3339_ms  # noqa: E402
from pipeline.acks import Receipt  # noqa: E402
from pipeline.dlq import DeadLetterQueue  # noqa: E402
from pipeline.driver import SinkDriver  # noqa: E402
from pipeline.event import Batch  # noqa: E402
from pipeline.memtune import tune_memory  # noqa: E402
from pipeline.metrics import Metrics  # noqa: E402
from pipeline.queues import BatchQueue  # noqa: E402

DAY = 86400.0


def access_events(n: int) -> list[dict[str, Any]]:
    """Parsed-access-log-shaped events over the last 3 days (inside ClickHouse's default TTL)."""
    now = time.time()
    start = now - now % DAY - 2 * DAY
    statuses = (200, 200, 200, 200, 304, 404, 500)
    agents = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "curl/8.5.0", "Go-http-client/1.1")
    out = []
    for i in range(n):
        ip = f"10.{i % 7}.{i % 250}.{i % 199}"
        status = statuses[i % 7]
        out.append({
            "@timestamp": rfc3339_ms(start + (i % 3) * DAY + (i // 3) % 86000 + (i % 1000) / 1000),
            "event_id": f"bench-{i:012x}", "log_type": "access", "host": f"web-{i % 4}",
            "source": {"path": "/var/log/nginx/access.log", "offset": i * 180},
            "message": f'{ip} - - [01/Jan/2025:00:00:00 +0000] "GET /api/items/{i} HTTP/1.1" {status} {i % 5000} '
                       f'"-" "{agents[i % 3]}" 0.012',
            "client_ip": ip, "method": "GET", "path": f"/api/items/{i}", "http_version": "1.1",
            "status": status, "bytes": i % 5000, "referrer": "-", "user_agent": agents[i % 3],
            "request_time": 0.012, "upstream_response_time": 0.010,
            "geoip": {"country_iso_code": "DE", "city_name": "Berlin", "location": {"lat": 52.52, "lon": 13.40}},
        })
    return out


async def drive(
    sink: Any, config: Any, events: list[dict[str, Any]], tmp: Path, metrics: Metrics | None = None
) -> tuple[float, float, Metrics]:
    """Every event through the real SinkDriver in batches of 1000, until all settled: (wall seconds,
    this process's CPU seconds, the metrics). `metrics`: those the sink was built with, if any."""
    metrics = metrics or Metrics()
    stats = metrics.component("bench", "sink", config.type)
    if hasattr(sink, "stats"):
        sink.stats = stats
    queue = BatchQueue("bench", 16)
    driver = SinkDriver(sink, config, queue, stats, metrics, DeadLetterQueue(tmp / "dead_letter"))
    await sink.start()
    await sink.healthcheck()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(driver.run())
    receipts = []
    for i in range(0, len(events), 1000):
        receipt = Receipt(None)
        receipts.append(receipt)
        await queue.put(Batch(events[i:i + 1000], receipt))
    await queue.close()
    await task
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await sink.aclose()
    assert all(r.settled for r in receipts)
    assert stats.events_out == len(events) and stats.dead_lettered == 0, (
        f"delivered {stats.events_out} of {len(events)}, dead-lettered {stats.dead_lettered}")
    return elapsed, cpu, metrics


async def bench_elasticsearch(events: list[dict[str, Any]], args: argparse.Namespace, tmp: Path) -> float:
    from elasticsearch import AsyncElasticsearch

    from sinks.elasticsearch import ElasticsearchSink, ElasticsearchSinkConfig

    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    config = ElasticsearchSinkConfig.model_validate({
        "type": "elasticsearch", "inputs": ["gen"], "hosts": [args.es_url],
        "index": f"{prefix}-{{log_type}}-%Y.%m.%d",
        "template": {"name": prefix, "index_patterns": [f"{prefix}-*"],
                     "settings": {"index.number_of_replicas": 0, "index.refresh_interval": "30s"}},
        "batch": {"max_events": args.send_events, "timeout": "100ms"}, "max_in_flight": args.in_flight,
    })
    metrics = Metrics()
    sink = ElasticsearchSink("bench", config, metrics=metrics, stats=metrics.component("bench", "sink", "es"))
    try:
        elapsed, _, _ = await drive(sink, config, events, tmp)
    finally:
        async with AsyncElasticsearch(args.es_url) as es:
            await es.options(ignore_status=404).indices.delete(index=f"{prefix}-*")
            await es.options(ignore_status=404).indices.delete_index_template(name=prefix)
    return elapsed


CH_QUERIES = {
    "count": "SELECT count() FROM logs.access_logs",
    "status": "SELECT status, count() FROM logs.access_logs GROUP BY status",
    "hour": "SELECT toStartOfHour(timestamp) AS h, count(), avg(request_time) FROM logs.access_logs "
            "WHERE status >= 400 GROUP BY h ORDER BY h",
}


async def bench_clickhouse(events: list[dict[str, Any]], args: argparse.Namespace, tmp: Path) -> float:
    from sinks.clickhouse import ClickHouseSink, ClickHouseSinkConfig

    raw: dict[str, Any] = {
        "type": "clickhouse", "inputs": ["gen"], "dsn": f"chdb://{tmp / 'chdb'}",
        "batch": {"max_events": args.send_events, "timeout": "100ms"}, "max_in_flight": args.in_flight,
    }
    if args.ch_dedup != "default":
        raw["dedup"] = args.ch_dedup == "on"
    config = ClickHouseSinkConfig.model_validate(raw)
    sink = ClickHouseSink("bench", config, data_dir=tmp, metrics=Metrics())
    # One warm-up insert: clickhouse-connect imports pandas/numpy lazily on the first insert.
    await sink.start()
    await sink.send(events[:10])
    await sink.aclose()
    elapsed = (await drive(sink, config, events, tmp))[0]
    await clickhouse_queries(sink, config.dedup)
    return elapsed


async def clickhouse_queries(sink: Any, dedup: bool) -> None:
    """Median latency of a few typical queries, as stored (final = 0) and with replays collapsed (final = 1)."""
    await sink.client.open()
    try:
        engine = (await sink.client.query(
            "SELECT engine FROM system.tables WHERE database = 'logs' AND name = 'access_logs'")).rows[0][0]
        parts = (await sink.client.query(
            "SELECT count() FROM system.parts WHERE database = 'logs' AND table = 'access_logs' AND active")).rows
        print(f"clickhouse table: {engine} (dedup {dedup}), {parts[0][0]} active parts")
        for name, sql in CH_QUERIES.items():
            times = {}
            for final in (0, 1):
                runs = []
                for _ in range(15):
                    started = time.perf_counter()
                    await sink.client.query(sql, settings={"final": final})
                    runs.append(time.perf_counter() - started)
                times[final] = sorted(runs)[7] * 1000  # the median
            print(f"  query {name:<8} final=0 {times[0]:7.1f} ms   final=1 {times[1]:7.1f} ms")
    finally:
        await sink.client.aclose()


def python_work(events: list[dict[str, Any]]) -> dict[str, float]:
    """Events/s of the sinks' own per-event work, with no I/O."""
    from pipeline.template import Template
    from sinks.clickhouse.schema import SCHEMAS, to_columns
    from sinks.elasticsearch.bulk import BulkEncoder, IndexNamer

    source = "logs-{log_type}-%Y.%m.%d"
    encoder = BulkEncoder(IndexNamer(Template(source, missing="unknown", strict_dates=True)), 10 * 1024 * 1024)
    out = {}
    for name, fn in (("elasticsearch: NDJSON bulk encoding", lambda chunk: encoder.encode(chunk)),
                     ("clickhouse: typed column conversion", lambda chunk: to_columns(SCHEMAS["access"], chunk))):
        started = time.perf_counter()
        for i in range(0, len(events), 5000):
            fn(events[i:i + 5000])
        out[name] = len(events) / (time.perf_counter() - started)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--stores", default="elasticsearch,clickhouse")
    parser.add_argument("--es-url", default="http://127.0.0.1:9200")
    parser.add_argument("--send-events", type=int, default=5000, help="driver batch.max_events (events per send)")
    parser.add_argument("--in-flight", type=int, default=2, help="max_in_flight (chDB always uses one thread)")
    parser.add_argument("--ch-dedup", choices=("default", "on", "off"), default="default",
                        help="clickhouse dedup (ReplacingMergeTree) on or off; default: the sink's default")
    args = parser.parse_args()
    tune_memory()  # as `pipeline run` does: GC thresholds and malloc settings decide much of the cost

    print(machine())
    print(f"generating {args.events} access events ...", flush=True)
    events = access_events(args.events)
    for name, rate in python_work(events).items():
        print(f"{name:<42} {rate:>10,.0f} events/s (one core, no I/O)")
    for store in args.stores.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"bench-{store}-"))
        try:
            run = {"elasticsearch": bench_elasticsearch, "clickhouse": bench_clickhouse}[store]
            elapsed = await run(events, args, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"{store + ' (sink via driver, end to end)':<42} {args.events / elapsed:>10,.0f} events/s "
              f"({args.events} events in {elapsed:.1f}s, {args.send_events} per send, "
              f"max_in_flight {args.in_flight})", flush=True)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
