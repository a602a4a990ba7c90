"""Scaling of the worker pool: one large file's blocks through 1..N worker processes.

    python bench/bench_pool.py [--lines 1000000] [--workers 1,2] [--repeat 3] [--block-bytes 262144]

The file -> parse -> JSON job of `bench_peers.py`, without the file source and sink
around it: the main process cuts one nginx log (in memory) into blocks of complete
lines as the file source does, submits them to a `ChunkPool` with a bounded number in
flight (as the source does), and takes the JSON lines back in order. Each pool size
runs `--repeat` times (interleaved), and the table shows the median:

    workers   seconds   events/s   main CPU-s   worker CPU-s   vs the first size

Worker processes are started before the clock starts (their imports are start-up, not
scaling). The issue's bound for N workers on N cores is 0.8 x N times one worker; on a
machine with N cores the main process shares them with the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_file_source import generate, machine  # noqa: E402

from pipeline.config import parse_config  # noqa: E402
from pipeline.memtune import tune_memory  # noqa: E402
from pipeline.workers.pool import ChunkPool  # noqa: E402
from pipeline.workers.tasks import ChainSpec, Result, Task  # noqa: E402

IN_FLIGHT_PER_WORKER = 3


def blocks(data: bytes, size: int) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos < len(data):
        end = data.rfind(b"\n", pos, pos + size)
        if end < 0:
            break
        out.append((pos, data[pos : end + 1]))
        pos = end + 1
    return out


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run(work: list[tuple[int, bytes]], workers: int, folder: Path) -> tuple[float, float, float, int]:
    """(seconds, main CPU-s, worker CPU-s, events) of one pass over `work`."""
    raw = {
        "data_dir": str(folder / "data"),
        "api": {"enabled": False},
        "sources": {"in": {"type": "file", "include": [str(folder / "*.log")], "log_type": "access"}},
        "transforms": {"parsed": {"type": "parse", "inputs": ["in"], "log_type": "access"}},
        "sinks": {"out": {"type": "blackhole", "inputs": ["parsed"]}},
    }
    pool = ChunkPool(parse_config(raw, "<bench>", {}), [ChainSpec("in", ("parsed",))], workers)

    def task(base: int, block: bytes) -> Task:
        return Task("in", "bench", "key", "/var/log/nginx/access.log", "access", "2026-12-01T00:00:00.000Z",
                    base, block, None, False)  # fmt: skip

    try:
        # Started and ready (imports done) before the clock starts.
        await asyncio.gather(*[pool.submit(task(base, block)) for base, block in work[:workers]])
        cpu_children = children_cpu()
        t0, c0 = time.perf_counter(), time.process_time()
        inflight: deque[asyncio.Future[Result]] = deque()
        events = 0
        for base, block in work:
            inflight.append(pool.submit(task(base, block)))
            if len(inflight) >= workers * IN_FLIGHT_PER_WORKER:
                events += (await inflight.popleft()).n
        while inflight:
            events += (await inflight.popleft()).n
        wall, main_cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        await pool.aclose()
    return wall, main_cpu, children_cpu() - cpu_children, events


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--workers", default="1,2", help="pool sizes to compare, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--block-bytes", type=int, default=256 * 1024, help="the file source's read_chunk_bytes")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench-pool"))
    args = ap.parse_args()
    tune_memory()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"access-{args.lines}.log"
    if not log.exists():
        generate(log, args.lines, request_time=True)
    work = blocks(log.read_bytes(), args.block_bytes)
    sizes = [int(n) for n in args.workers.split(",")]
    runs: dict[int, list[tuple[float, float, float, int]]] = {n: [] for n in sizes}
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    for i in range(args.repeat):
        for n in sizes:
            wall, main_cpu, worker_cpu, events = runner(run(work, n, folder))
            if events != args.lines:
                raise SystemExit(f"{n} workers gave {events} events for {args.lines} lines")
            runs[n].append((wall, main_cpu, worker_cpu, events))
            print(f"  {n} workers #{i + 1}: {wall:.2f}s, main {main_cpu:.2f} CPU-s, workers {worker_cpu:.2f} CPU-s")
    print(f"machine: {machine()}")
    print(f"input: {args.lines:,} nginx lines in blocks of {args.block_bytes:,} bytes; median of {args.repeat}")
    print()
    print(f"| workers | seconds | events/s | main CPU-s | worker CPU-s | vs {sizes[0]} |")
    print("|---:|---:|---:|---:|---:|---:|")
    first = statistics.median(r[0] for r in runs[sizes[0]])
    for n in sizes:
        wall = statistics.median(r[0] for r in runs[n])
        main_cpu = statistics.median(r[1] for r in runs[n])
        worker_cpu = statistics.median(r[2] for r in runs[n])
        ratio = first / wall
        print(f"| {n} | {wall:.2f} | {args.lines / wall:,.0f} | {main_cpu:.2f} | {worker_cpu:.2f} | {ratio:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
