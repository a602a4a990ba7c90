#!/usr/bin/env python3
"""Container framing throughput: raw Docker json-file / CRI lines -> events, on one core.

    python bench/bench_container.py [--lines 200000] [--batch 1000] [--repeat 3] [--cpu N]

Times `ContainerFramer.feed` (what the `container` source's reader calls per chunk):
UTF-8 decoding, the format's decoder (partial reassembly), and building the event
dicts with their metadata. Rows: Docker lines, Docker lines with 16 KiB-style partials
(one line in 20 split in two), CRI lines, CRI lines with P fragments, and a Docker
file on a Docker host path (`/var/lib/docker/containers/<id>/<id>-json.log`, where
events also carry `container` metadata). The lines are built beforehand; only the
framing is timed (best of `--repeat`, CPU time of this process), with the daemon's GC and
malloc settings (`pipeline.memtune`).
This is a benchmark, not a test; it prints a table and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.memtune import tune_memory  # noqa: E402
from pipeline.sources.container import ContainerFramers, ContainerSourceConfig  # noqa: E402

CID = "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e"
WORDS = ["GET", "/api/v1/orders", "200", "user=42", "took", "12ms", "INFO", "cache", "miss", "retrying", "db"]


def _messages(rng: random.Random, n: int) -> list[str]:
    return [f"2024-05-14 09:12:{i % 60:02d},{i % 1000:03d} " + " ".join(rng.choices(WORDS, k=8)) for i in range(n)]


def _ts(i: int) -> str:
    return f"2024-05-14T09:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}.{i % 1000:03d}456789Z"


def docker_lines(rng: random.Random, n: int, partials: bool) -> list[bytes]:
    out = []
    for i, msg in enumerate(_messages(rng, n)):
        stream = "stderr" if i % 7 == 0 else "stdout"
        if partials and i % 20 == 0:
            out.append(json.dumps({"log": msg[:20], "stream": stream, "time": _ts(i)}).encode())
            msg = msg[20:]
        out.append(json.dumps({"log": msg + "\n", "stream": stream, "time": _ts(i)}).encode())
    return out


def cri_lines(rng: random.Random, n: int, partials: bool) -> list[bytes]:
    out = []
    for i, msg in enumerate(_messages(rng, n)):
        stream = "stderr" if i % 7 == 0 else "stdout"
        if partials and i % 20 == 0:
            out.append(f"{_ts(i)} {stream} P {msg[:20]}".encode())
            msg = msg[20:]
        out.append(f"{_ts(i)} {stream} F {msg}".encode())
    return out


def raw_batches(lines: list[bytes], batch: int) -> list[list[tuple[bytes, int, int, bool]]]:
    out = []
    pos = 0
    for i in range(0, len(lines), batch):
        chunk = []
        for raw in lines[i : i + batch]:
            chunk.append((raw, pos, pos + len(raw) + 1, False))
            pos += len(raw) + 1
        out.append(chunk)
    return out


def run(path: str, lines: list[bytes], batch: int, repeat: int) -> tuple[float, int]:
    cfg = ContainerSourceConfig.model_validate({"type": "container", "watch": False})
    batches = raw_batches(lines, batch)
    best = float("inf")
    events = 0
    for _ in range(repeat):
        framer = ContainerFramers(cfg, node="node-1")("bench-host", "key", path)
        gc.collect()
        cpu = time.process_time()
        events = 0
        for b in batches:
            events += len(framer.feed(b, 0.0, "2024-05-14T09:12:00.000Z", False)[0])
        events += len(framer.flush("2024-05-14T09:12:00.000Z")[0])
        best = min(best, time.process_time() - cpu)
    return best, events


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=200_000, help="records per row (default 200000)")
    ap.add_argument("--batch", type=int, default=1000, help="lines per feed (default 1000)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed one)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {args.cpu if args.cpu is not None else allowed[0]})

    tune_memory()  # as the daemon does: GC thresholds decide much of the cost of building dicts
    rng = random.Random(7)
    k8s = f"/var/log/containers/web-1_shop_nginx-{CID}.log"
    with tempfile.TemporaryDirectory() as tmp:
        docker_dir = Path(tmp) / CID
        docker_dir.mkdir()
        (docker_dir / "config.v2.json").write_text(
            json.dumps({"ID": CID, "Name": "/web-1", "Config": {"Image": "nginx:1.25", "Labels": {"app": "web"}}})
        )
        host_path = str(docker_dir / f"{CID}-json.log")
        rows = [
            ("docker json-file (k8s path)", k8s, docker_lines(rng, args.lines, False)),
            ("docker json-file, 5% partials", k8s, docker_lines(rng, args.lines, True)),
            ("cri (k8s path)", k8s, cri_lines(rng, args.lines, False)),
            ("cri, 5% P fragments", k8s, cri_lines(rng, args.lines, True)),
            ("docker json-file (docker host path)", host_path, docker_lines(rng, args.lines, False)),
        ]
        print(f"machine: {platform.platform()} | python {platform.python_version()} | batch={args.batch}"
              f" | best of {args.repeat} | CPU time")  # fmt: skip
        print(f"{'row':40s} {'events':>8s} {'lines/s':>10s} {'us/line':>8s}")
        for title, path, lines in rows:
            cpu, events = run(path, lines, args.batch, args.repeat)
            print(f"{title:40s} {events:8d} {len(lines) / cpu:10.0f} {cpu / len(lines) * 1e6:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
