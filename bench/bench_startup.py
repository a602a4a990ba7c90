"""Start-up: how long `pipeline run` takes from process start to its first read of a log file.

    python bench/bench_startup.py [--repeat 9]

The config is file-only (a file source into a file sink, no API), the case issue 15's
goal names. Each run is a fresh interpreter (`python -m pipeline run --once`, as the
console script starts it) with a small preamble that notes the time of the first
`os.open` of the log file; the table shows the median and the spread. Wall time from
the fork is measured too, so the interpreter's own start (site, .pth files) shows
separately from ours. Bytecode is written and reused (as an installed package has it):
the first, uncached run is dropped.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_file_source import child_env, machine

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child: notes when the log is first opened, then runs the CLI as `python -m pipeline` would.
PREAMBLE = """
import os, sys, time
started = time.perf_counter()
target, real_open = sys.argv[1], os.open
def traced_open(path, *args, **kwargs):
    if os.fspath(path) == target:
        os.write(2, b"FIRST_READ %.6f\\n" % (time.perf_counter() - started))
        os.open = real_open
    return real_open(path, *args, **kwargs)
os.open = traced_open
sys.argv = ["pipeline", "--log-level", "warning", "run", "--once", "--config", sys.argv[2]]
from pipeline.cli import main
sys.exit(main())
"""


def config(folder: Path) -> tuple[Path, Path]:
    log = folder / "app.log"
    log.write_text("one line\nanother line\n")
    cfg = folder / "pipeline.yaml"
    cfg.write_text(
        f"data_dir: {folder / 'data'}\n"
        "api: {enabled: false}\n"
        f"sources:\n  app: {{type: file, include: [{log}], start_at: beginning}}\n"
        f"sinks:\n  out: {{type: file, inputs: [app], path: {folder / 'out.jsonl'}}}\n"
    )
    return log, cfg


def run(log: Path, cfg: Path) -> tuple[float, float]:
    """(seconds to the first read inside the interpreter, seconds from fork to exit)."""
    env = child_env()
    shutil.rmtree(cfg.parent / "data", ignore_errors=True)  # no checkpoint: each run reads from the start
    (cfg.parent / "out.jsonl").unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PREAMBLE, str(log), str(cfg)], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pipeline exited {proc.returncode}:\n{proc.stderr}")
    marks = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("FIRST_READ ")]
    if not marks:
        raise SystemExit(f"the log file was never opened:\n{proc.stderr}")
    return float(marks[0]), wall


def interpreter() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log, cfg = config(Path(tmp))
        run(log, cfg)  # writes the bytecode caches
        results = [run(log, cfg) for _ in range(args.repeat)]
        bare = statistics.median(interpreter() for _ in range(args.repeat))
    first = [r[0] for r in results]
    walls = [r[1] for r in results]
    print(f"machine: {machine()}")
    print(f"command: python bench/bench_startup.py --repeat {args.repeat}")
    print()
    print("| measure | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    print(f"| interpreter start (`python -c pass`) | {bare:.3f} | | |")
    for label, values in (("first read, inside the interpreter", first), ("whole `run --once` from the fork", walls)):
        print(f"| {label} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    print(f"| first read from the fork (+ interpreter) | {statistics.median(first) + bare:.3f} | | |")


if __name__ == "__main__":
    main()
