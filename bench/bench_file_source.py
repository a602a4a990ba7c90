"""Throughput of the `file` source: N nginx-like lines -> blackhole, in-process, one core.

    python bench/bench_file_source.py [--lines 1000000] [--files 1] [--dir /tmp/bench-file-source]
                                      [--multiline] [--gc-threshold N] [--keep]

Generates the log files once (reused when present with the same line count), then
runs a Daemon with --once semantics (source -> blackhole sink) under uvloop and
prints lines/s and MiB/s for the whole run (wall clock and per CPU-second), plus the
machine it ran on. The process is pinned to one CPU when the OS allows it, so the
number is per core. The measured path is the whole runtime: the source reading,
splitting and building events, the queue, and the sink driver's batching.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GEOIP = ROOT / "tests" / "data" / "geoip"
sys.path.insert(0, str(ROOT))

from pipeline.config import parse_config  # noqa: E402
from pipeline.daemon import Daemon  # noqa: E402
from pipeline.memtune import GEN0_THRESHOLD, tune_memory  # noqa: E402

AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "curl/8.5.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Go-http-client/1.1",
]
PATHS = ["/", "/api/v1/orders", "/api/v1/users/42", "/static/app.js", "/health", "/login", "/search?q=shoes"]


def generate(path: Path, lines: int, seed: int = 7, request_time: bool = False) -> int:
    """nginx combined lines (plus `$request_time` when asked: the peer benchmark's 11-field format)."""
    rng = random.Random(seed)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    with open(path, "wb", buffering=1 << 20) as fh:
        buf = []
        for i in range(lines):
            ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            # Time moves forward one second every 100 lines: a server at 100 requests/s, so
            # consecutive lines share their minute as in a real log (not a new date per line).
            t = i // 100
            day, hour, minute = (t // 86400) % 28 + 1, (t // 3600) % 24, (t // 60) % 60
            ts = f"{day:02d}/{months[(t // (86400 * 28)) % 12]}/2024:{hour:02d}:{minute:02d}:{t % 60:02d} +0000"
            status = rng.choice((200, 200, 200, 201, 301, 304, 404, 500))
            line = (f'{ip} - - [{ts}] "GET {rng.choice(PATHS)} HTTP/1.1" {status} {rng.randrange(100, 50000)} '
                    f'"https://example.com/" "{rng.choice(AGENTS)}"')
            line += f" {rng.randrange(0, 3000) / 1000:.3f}\n" if request_time else "\n"
            buf.append(line)
            if len(buf) >= 10000:
                fh.write("".join(buf).encode())
                buf = []
        if buf:
            fh.write("".join(buf).encode())
    return path.stat().st_size


def generate_app(path: Path, lines: int, seed: int = 7) -> int:
    """Application log lines starting with an ISO time; every 50th record carries a 4-line traceback."""
    rng = random.Random(seed)
    written = 0
    with open(path, "wb", buffering=1 << 20) as fh:
        buf = []
        i = 0
        while written < lines:
            ts = f"2024-05-14T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
            if i % 50 == 49 and written + 5 <= lines:
                buf.append(f"{ts} ERROR [orders.api] request failed request_id={rng.getrandbits(64):016x}\n"
                           "Traceback (most recent call last):\n"
                           '  File "/app/orders/service.py", line 97, in place\n'
                           "    price = self.pricing.quote(cart.items, customer.tier)\n"
                           "KeyError: 'platinum'\n")
                written += 5
            else:
                buf.append(f"{ts} INFO [orders.api] request handled method=GET path=/api/v1/orders/{i} "
                           f"status=200 duration_ms={rng.randrange(1, 900)}\n")
                written += 1
            i += 1
            if len(buf) >= 10000:
                fh.write("".join(buf).encode())
                buf = []
        if buf:
            fh.write("".join(buf).encode())
    return path.stat().st_size


def child_env() -> dict[str, str]:
    """The environment of a `pipeline` child process: this tree's packages first, and their bytecode
    cached as an installed package's is (a run does not compile the modules changed since the last one)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT)
    return env


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}; {os.cpu_count()} CPUs; Python {platform.python_version()} "
            f"({platform.python_implementation()}); {platform.system()} {platform.release()}")


async def run_once(log_dir: Path, data_dir: Path, multiline: bool, parse: bool = False, geoip: bool = False,
                   sink: str = "blackhole") -> tuple[Daemon, float, float]:
    source: dict[str, object] = {"type": "file", "include": [f"{log_dir}/*.log"], "watch": False,
                                 "log_type": "application" if multiline else "access"}
    if multiline:
        source["multiline"] = {"preset": "iso8601_start"}
    transforms: dict[str, object] = {}
    last = "bench"
    if parse:
        transforms["parsed"] = {"type": "parse", "inputs": [last]}
        last = "parsed"
    if geoip:
        transforms["geo"] = {"type": "geoip", "inputs": [last], "database": str(GEOIP / "GeoLite2-City-Test.mmdb"),
                             "asn_database": str(GEOIP / "GeoLite2-ASN-Test.mmdb")}
        last = "geo"
    out: dict[str, object] = {"type": sink, "inputs": [last]}
    if sink == "file":
        out.update(path=str(data_dir / "out.jsonl"), fsync=False)
    raw = {
        "data_dir": str(data_dir),
        "api": {"enabled": False},
        "sources": {"bench": source},
        "transforms": transforms,
        "sinks": {"null": out},
    }
    config = parse_config(raw, "<bench>", {})
    daemon = Daemon(config, once=True)
    t0 = time.perf_counter()
    c0 = time.process_time()
    await daemon.run()
    return daemon, time.perf_counter() - t0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=1)
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench-file-source"))
    ap.add_argument("--multiline", action="store_true",
                    help="application log lines with tracebacks, joined by an iso8601_start joiner")
    ap.add_argument("--keep", action="store_true", help="keep the generated logs")
    ap.add_argument("--parse", action="store_true", help="add the parse transform (built-in formats)")
    ap.add_argument("--geoip", action="store_true", help="add the geoip transform (MaxMind test databases)")
    ap.add_argument("--sink", choices=["blackhole", "file"], default="blackhole",
                    help="file: JSON lines written (no fsync), as a log shipper's local output")
    ap.add_argument("--gc-threshold", type=int, default=GEN0_THRESHOLD,
                    help="generation-0 GC threshold, as `pipeline run` sets it (0: Python's default 700)")
    args = ap.parse_args()
    if args.gc_threshold:
        tune_memory(args.gc_threshold)

    with __import__("contextlib").suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    base = Path(args.dir)
    log_dir = base / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    per_file = args.lines // args.files
    total_bytes = 0
    kind = "app" if args.multiline else "access"
    for old in log_dir.glob("*.log"):
        if not old.name.startswith(kind):
            old.unlink()  # the other kind of input, from an earlier run
    for i in range(args.files):
        path = log_dir / f"{kind}-{i}.log"
        stamp = base / f"{kind}-{i}.lines"
        if not (path.exists() and stamp.exists() and stamp.read_text() == str(per_file)):
            t = time.perf_counter()
            (generate_app if args.multiline else generate)(path, per_file, seed=i)
            stamp.write_text(str(per_file))
            print(f"generated {path} ({per_file} lines) in {time.perf_counter() - t:.1f}s")
        total_bytes += path.stat().st_size
    data_dir = base / "data"
    shutil.rmtree(data_dir, ignore_errors=True)

    runner: Any
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    daemon, elapsed, cpu = runner(run_once(log_dir, data_dir, args.multiline, args.parse, args.geoip, args.sink))
    events = daemon.metrics.stats["bench"].events_out
    delivered = daemon.metrics.stats["null"].events_out
    lines = per_file * args.files
    print(f"machine: {machine()}")
    print(f"input: {args.files} file(s), {lines:,} lines, {total_bytes / 2**20:.1f} MiB"
          f"{' (app log, multiline iso8601_start)' if args.multiline else ' (nginx combined)'}"
          f"{f'; gc threshold {args.gc_threshold}' if args.gc_threshold else ''}")
    stages = " -> ".join(["file", *(["parse"] if args.parse else []), *(["geoip"] if args.geoip else []), args.sink])
    print(f"{stages}: {lines:,} lines -> {events:,} events ({delivered:,} delivered) in {elapsed:.2f}s: "
          f"{lines / elapsed:,.0f} lines/s, {total_bytes / 2**20 / elapsed:,.1f} MiB/s (one core, wall clock)")
    print(f"CPU time {cpu:.2f}s: {lines / cpu:,.0f} lines/s, {total_bytes / 2**20 / cpu:,.1f} MiB/s per CPU-second "
          f"(the wall-clock figure drops when other processes share the core)")
    shutil.rmtree(data_dir, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(log_dir, ignore_errors=True)
        for stamp in base.glob("*.lines"):
            stamp.unlink()
    if args.multiline:
        return 0 if delivered == events and events > lines // 2 else 1
    return 0 if events == lines else 1


if __name__ == "__main__":
    raise SystemExit(main())
