"""Throughput through the real broker: file -> parse -> geoip -> kafka (agent) and kafka -> blackhole (processor).

    scripts/services up kafka
    python bench/bench_kafka.py [--lines 500000] [--bootstrap 127.0.0.1:9092] [--compression zstd] [--stores]
                                [--partitions 3] [--dir /tmp/bench-kafka] [--keep-topics] [--workers 1|N|auto]
                                [--geoip tests/data/geoip/GeoLite2-City-Test.mmdb | --geoip none]

1. agent: N nginx access lines in one file -> `file` source -> `parse` -> `geoip` -> `kafka`
   sink (acks all, idempotent, the chosen codec) into a fresh topic; a Daemon with --once
   semantics, under uvloop. The geoip step (issue 15's agent path) uses MaxMind's small test
   City database by default: the generated addresses are random, so most lookups find no
   record (a real GeoLite2-City answers most and costs more per miss of the cache).
   Also `generated -> kafka` (events made in memory, no file or parse) to show the sink alone.
2. processor: the same topic -> `kafka` source (a fresh group) -> `blackhole`, --once.
   With `--stores` (needs `scripts/services up kafka elasticsearch alertmanager`), two more
   processor runs, each a fresh group: -> `elasticsearch` alone, then config/processor.yaml's
   fan-out (-> elasticsearch + clickhouse (chDB, in this process) + webhook to Alertmanager
   with its three rules). Each store run waits until every event was settled there; the
   Elasticsearch indices are deleted afterwards.

Prints events/s and MiB/s per run (MiB of the input file for the agent, of record
values for the processor), this process's CPU time and events per CPU-second, and the
machine. The broker runs on the same machine and competes for its cores, so nothing
is pinned: events/s are whole-machine numbers; events per CPU-second is the daemon's
own cost, steadier on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_file_source import generate, machine  # noqa: E402

from pipeline.acks import Receipt  # noqa: E402
from pipeline.config import SourceConfig, parse_config  # noqa: E402
from pipeline.daemon import Daemon  # noqa: E402
from pipeline.event import Batch  # noqa: E402
from pipeline.memtune import tune_memory  # noqa: E402
from pipeline.registry import register  # noqa: E402


class GenConfig(SourceConfig):
    type: Literal["bench_kafka_gen"]
    events: int


class Gen:
    """Events shaped like parsed access lines, made in batches of 1000."""

    can_acknowledge = True

    def __init__(self, name: str, config: GenConfig) -> None:
        self.name = name
        self.config = config

    async def run(self, ctx: Any) -> None:
        total = self.config.events
        for start in range(0, total, 1000):
            events = [
                {
                    "@timestamp": "2024-05-14T09:12:03.000Z",
                    "host": "node-1",
                    "log_type": "access",
                    "message": f'10.1.{n % 250}.{n % 200} - - [14/May/2024:09:12:03 +0000] "GET /api/v1/items/{n} '
                    'HTTP/1.1" 200 5120 "-" "curl/8.5.0"',
                    "source": {"path": f"/var/log/nginx/access-{n % 8}.log", "offset": n * 120},
                    "event_id": f"bench-{n:012x}",
                    "client_ip": f"10.1.{n % 250}.{n % 200}",
                    "method": "GET",
                    "path": f"/api/v1/items/{n}",
                    "status": 200,
                    "bytes": 5120,
                    "user_agent": "curl/8.5.0",
                }
                for n in range(start, min(start + 1000, total))
            ]
            await ctx.emit(Batch(events, Receipt(None)))

    async def aclose(self) -> None:
        return None


@register("source", "bench_kafka_gen", GenConfig)
def _build_gen(name: str, config: GenConfig, ctx: Any) -> Gen:
    return Gen(name, config)


async def run(raw: dict[str, Any]) -> tuple[Daemon, float, float]:
    """Run to the end; return the daemon, the wall time and this process's CPU time (user + system)."""
    daemon = Daemon(parse_config(raw, "<bench>", {}), once=True)
    cpu0, t0 = _cpu(), time.perf_counter()
    await daemon.run()
    return daemon, time.perf_counter() - t0, _cpu() - cpu0


def _cpu() -> float:
    """This process's CPU time and its reaped children's (worker processes, once they have exited)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _max_rss() -> str:
    """Peak RSS so far of this process (the daemon; the runs share it: a later run shows the largest
    yet) and of the largest worker process that has exited, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return f"{own:.0f}" + (f" (largest child process: a worker {workers:.0f})" if workers else "")


def kafka_sink(args: argparse.Namespace, inputs: list[str], topic: str) -> dict[str, Any]:
    return {
        "type": "kafka",
        "inputs": inputs,
        "bootstrap_servers": args.bootstrap,
        "topic": topic,
        "topics_to_create": [topic],
        "create_topics": True,
        "topic_partitions": args.partitions,
        "compression": args.compression,
        "batch": {"max_events": 2000},
        "max_in_flight": 2,
    }


def agent_config(args: argparse.Namespace, log_dir: Path, data_dir: Path, topic: str) -> dict[str, Any]:
    transforms: dict[str, Any] = {"parsed": {"type": "parse", "inputs": ["files"]}}
    last = "parsed"
    if args.geoip != "none":
        transforms["located"] = {"type": "geoip", "inputs": ["parsed"], "database": args.geoip}
        last = "located"
    return {
        "data_dir": str(data_dir),
        "api": {"enabled": False},
        "workers": args.workers if args.workers == "auto" else int(args.workers),
        "sources": {"files": {"type": "file", "include": [f"{log_dir}/*.log"], "watch": False, "log_type": "access"}},
        "transforms": transforms,
        "sinks": {"kafka": kafka_sink(args, [last], topic)},
    }


def generated_config(args: argparse.Namespace, data_dir: Path, topic: str) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "api": {"enabled": False},
        "sources": {"gen": {"type": "bench_kafka_gen", "events": args.lines}},
        "sinks": {"kafka": kafka_sink(args, ["gen"], topic)},
    }


def processor_config(args: argparse.Namespace, data_dir: Path, topic: str) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "api": {"enabled": False},
        "sources": {
            "kafka": {
                "type": "kafka",
                "bootstrap_servers": args.bootstrap,
                "topics": [topic],
                "group_id": f"{topic}-bench",
                "start_from": "earliest",
            }
        },
        "sinks": {"null": {"type": "blackhole", "inputs": ["kafka"]}},
    }


def store_sinks(args: argparse.Namespace, prefix: str, data_dir: Path, fan_out: bool) -> dict[str, Any]:
    """config/processor.yaml's sinks (Elasticsearch alone unless `fan_out`), on the local services."""
    sinks: dict[str, Any] = {
        "elasticsearch": {
            "type": "elasticsearch",
            "inputs": ["kafka"],
            "hosts": [args.es_url],
            "index": f"{prefix}-{{log_type}}-%Y.%m.%d",
            "template": {
                "name": prefix,
                "index_patterns": [f"{prefix}-*"],
                "settings": {"index.number_of_replicas": 0, "index.refresh_interval": "30s"},
            },
            "batch": {"max_events": 2000, "max_bytes": "8MiB", "timeout": "1s"},
            "max_in_flight": 2,
        }
    }
    if fan_out:
        processor = yaml.safe_load((ROOT / "config" / "processor.yaml").read_text())
        sinks["clickhouse"] = {
            "type": "clickhouse",
            "inputs": ["kafka"],
            "dsn": f"chdb://{data_dir / 'chdb'}",
            "batch": {"max_events": 5000, "timeout": "2s"},
        }
        alerts = processor["sinks"]["alerts"]
        sinks["alerts"] = {**alerts, "targets": [{"type": "alertmanager", "url": args.alertmanager_url}]}
    return sinks


async def delete_indices(es_url: str, prefix: str) -> None:
    from elasticsearch import AsyncElasticsearch

    async with AsyncElasticsearch(es_url) as es:
        await es.options(ignore_status=404).indices.delete(index=f"{prefix}-*")
        await es.options(ignore_status=404).indices.delete_index_template(name=prefix)


async def delete_topics(bootstrap: str, topics: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(topics)
    finally:
        await admin.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=500_000)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--compression", default="zstd", choices=["zstd", "lz4", "gzip", "snappy", "none"])
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench-kafka"))
    ap.add_argument("--keep-topics", action="store_true")
    ap.add_argument("--workers", default="1", help="the agent run's `workers` setting: auto or a count")
    ap.add_argument("--stores", action="store_true", help="also Kafka -> Elasticsearch and the processor fan-out")
    ap.add_argument("--es-url", default="http://127.0.0.1:9200")
    ap.add_argument("--alertmanager-url", default="http://127.0.0.1:9093")
    ap.add_argument(
        "--geoip",
        default=str(ROOT / "tests" / "data" / "geoip" / "GeoLite2-City-Test.mmdb"),
        help="the agent run's geoip database, or `none` for file -> parse -> kafka",
    )
    args = ap.parse_args()
    tune_memory()  # as `pipeline run` does: GC thresholds and malloc settings decide much of the cost

    base = Path(args.dir)
    log_dir = base / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "access.log"
    stamp = base / "access.lines"
    if not (log_file.exists() and stamp.exists() and stamp.read_text() == str(args.lines)):
        generate(log_file, args.lines)
        stamp.write_text(str(args.lines))
    size_mib = log_file.stat().st_size / 2**20
    run_id = uuid.uuid4().hex[:8]
    topic, gen_topic = f"bench-{run_id}-access", f"bench-{run_id}-generated"

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run

    print(f"machine: {machine()}")
    print(
        f"input: {args.lines:,} nginx access lines, {size_mib:.1f} MiB; codec {args.compression}, "
        f"{args.partitions} partitions, broker {args.bootstrap} on this machine"
    )
    ok = True
    dirs = [base / "data", base / "data-gen", base / "data-proc"]
    for folder in dirs:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        daemon, elapsed, cpu = runner(run(agent_config(args, log_dir, dirs[0], topic)))
        stats = daemon.metrics.stats["kafka"]
        ok &= stats.events_out == args.lines
        agent_path = "file -> parse -> kafka" if args.geoip == "none" else "file -> parse -> geoip -> kafka"
        print(
            f"{agent_path}: {stats.events_out:,} events in {elapsed:.2f}s: "
            f"{stats.events_out / elapsed:,.0f} events/s, {size_mib / elapsed:,.1f} MiB/s of log lines "
            f"({stats.bytes_out / 2**20:.1f} MiB {args.compression} record batches sent); "
            f"{cpu:.1f} CPU-s: {stats.events_out / cpu:,.0f} events per CPU-second; max RSS {_max_rss()} MiB"
        )

        daemon, elapsed, cpu = runner(run(generated_config(args, dirs[1], gen_topic)))
        stats = daemon.metrics.stats["kafka"]
        ok &= stats.events_out == args.lines
        print(
            f"generated -> kafka: {stats.events_out:,} events in {elapsed:.2f}s: "
            f"{stats.events_out / elapsed:,.0f} events/s (the sink alone: events made in memory); "
            f"{cpu:.1f} CPU-s: {stats.events_out / cpu:,.0f} events per CPU-second; max RSS {_max_rss()} MiB"
        )

        daemon, elapsed, cpu = runner(run(processor_config(args, dirs[2], topic)))
        stats = daemon.metrics.stats["kafka"]
        ok &= stats.events_out == args.lines
        print(
            f"kafka -> blackhole: {stats.events_out:,} events in {elapsed:.2f}s: "
            f"{stats.events_out / elapsed:,.0f} events/s, {stats.bytes_in / 2**20 / elapsed:,.1f} MiB/s of "
            f"record values ({stats.bytes_in / 2**20:.1f} MiB); "
            f"{cpu:.1f} CPU-s: {stats.events_out / cpu:,.0f} events per CPU-second; max RSS {_max_rss()} MiB"
        )
        if args.stores:
            prefix = f"bench-{run_id}"
            for fan_out, label in ((False, "kafka -> elasticsearch"), (True, "kafka -> es + clickhouse + webhook")):
                folder = base / ("data-fan-out" if fan_out else "data-es")
                dirs.append(folder)
                shutil.rmtree(folder, ignore_errors=True)
                raw = processor_config(args, folder, topic)
                raw["sources"]["kafka"]["group_id"] = f"{topic}-{'fan-out' if fan_out else 'es'}"
                raw["sinks"] = store_sinks(args, prefix, folder, fan_out)
                try:
                    daemon, elapsed, cpu = runner(run(raw))
                finally:
                    runner(delete_indices(args.es_url, prefix))
                settled = {name: daemon.metrics.stats[name].events_out for name in raw["sinks"]}
                failed = {name: daemon.metrics.stats[name].dead_lettered for name in raw["sinks"]}
                ok &= all(n == args.lines for n in settled.values()) and not any(failed.values())
                print(
                    f"{label}: {args.lines:,} events in {elapsed:.2f}s: {args.lines / elapsed:,.0f} events/s; "
                    f"{cpu:.1f} CPU-s: {args.lines / cpu:,.0f} events per CPU-second; "
                    f"max RSS {_max_rss()} MiB; settled {settled}, dead-lettered {failed}"
                )
    finally:
        if not args.keep_topics:
            runner(delete_topics(args.bootstrap, [topic, gen_topic]))
        for folder in dirs:
            shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
