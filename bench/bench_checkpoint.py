"""Cost of one checkpoint write with many tracked files: a journal append vs a whole snapshot.

    python bench/bench_checkpoint.py [--files 1000 10000] [--changed 1 10] [--writes 200] [--dir DIR]

For each number of tracked files, fills a `CheckpointStore` with entries shaped like
a DaemonSet agent's (Kubernetes pod log paths), then times:

- journal write: `prepare()` on the event loop (serialises the changed entries) and
  `commit()` (append + fdatasync, run in a thread by the source), with `--changed`
  entries touched before each write, as after a batch of releases;
- snapshot write: `snapshot()` (the whole state) and `write()` (tmp + fsync + renames
  + directory fsync), which the store does for the first write after start-up, at
  compaction and at shutdown (and which was every write before the journal);
- how many journal writes pass between two compactions, and the cost of loading
  (snapshot + journal replay) just before a compaction.

Prints medians and 90th percentiles in milliseconds and the machine. The directory
defaults to one under the repository (the same filesystem as a usual data_dir), not
/tmp, which may be a tmpfs where fsync is free.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_file_source import machine  # noqa: E402

from pipeline.checkpoint import COMPACT_BYTES, CheckpointStore, Entry  # noqa: E402


def filled(path: Path, files: int) -> CheckpointStore:
    store = CheckpointStore(path, "bench")
    now = time.time()
    for i in range(files):
        path_i = f"/var/log/pods/shop_checkout-{i:05d}_6f1c2d3e-4b5a-4c6d-8e9f-{i:012x}/checkout/0.log"
        store.put(Entry(f"2049:{100000 + i}:{i:016x}", 2049, 100000 + i, 1024, f"{i:016x}", i * 4096, path_i, now, now))
    store.flush()  # the first write after start-up is a whole snapshot
    return store


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def summary(samples: list[float]) -> str:
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return f"median {statistics.median(samples):7.3f} ms  p90 {p90:7.3f} ms"


def bench(base: Path, files: int, changed: int, writes: int) -> None:
    store = filled(base / f"f{files}" / "bench.json", files)
    keys = list(store.entries)
    prep: list[float] = []
    commit: list[float] = []
    for n in range(writes):
        for key in keys[(n * changed) % files : (n * changed) % files + changed]:
            entry = store.entries[key]
            entry.offset += 100
            store.touch(entry)
        t0 = time.perf_counter()
        pending = store.prepare()
        t1 = time.perf_counter()
        assert pending is not None
        if pending.snapshot:  # a compaction came due: not a journal write, measured below
            store.commit(pending)
            continue
        store.commit(pending)
        t2 = time.perf_counter()
        prep.append((t1 - t0) * 1000)
        commit.append((t2 - t1) * 1000)
    record_bytes = store.journal.size / max(1, len(prep))
    snap: list[float] = []
    write: list[float] = []
    size = 0
    for _ in range(max(5, writes // 20)):
        t0 = time.perf_counter()
        data = store.snapshot()
        t1 = time.perf_counter()
        store.write(data)
        t2 = time.perf_counter()
        size = len(data)
        snap.append((t1 - t0) * 1000)
        write.append((t2 - t1) * 1000)
    every = max(COMPACT_BYTES, size) / record_bytes
    # Load just before a compaction: the snapshot plus a full journal.
    journal_bytes = 0
    while journal_bytes < max(COMPACT_BYTES, size) - record_bytes:
        for key in keys[:changed]:
            store.touch(store.entries[key])
        pending = store.prepare()
        assert pending is not None and not pending.snapshot
        store.commit(pending)
        journal_bytes = store.journal.size
    store.close()
    again = CheckpointStore(store.path, "bench")
    load = timed(again.read)
    assert len(again.entries) == files
    print(f"{files:>6} files, {changed:>3} changed per write:")
    print(f"    journal write   prepare (loop) {summary(prep)} | append+fdatasync (thread) {summary(commit)}"
          f" | {record_bytes:.0f} B/record")
    print(f"    snapshot write  serialise (loop) {summary(snap)} | write+fsyncs (thread) {summary(write)}"
          f" | {size / 1024:.0f} KiB")
    print(f"    a compaction every {every:,.0f} journal writes; load before one: {load:.1f} ms "
          f"(snapshot + {journal_bytes / 1024:.0f} KiB journal)")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--changed", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--dir", default=None, help="where to write (default: a temporary folder under the repo)")
    args = ap.parse_args()
    base = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix=".bench-checkpoint-", dir=ROOT))
    try:
        print(f"machine: {machine()}")
        print(f"directory: {base} (compaction once the journal exceeds max({COMPACT_BYTES // 1024} KiB, snapshot))")
        for files in args.files:
            for changed in args.changed:
                bench(base, files, changed, args.writes)
    finally:
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
