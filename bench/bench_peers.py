"""The peer comparison: our daemon against rsyslog (and a plain-Python ceiling) on the same job.

    python bench/bench_peers.py [--lines 1000000] [--repeat 3] [--workers auto] [--only pipeline,rsyslog]

The job, for every system: read one nginx access log (combined + $request_time, 11 fields)
from its start, parse each line into named fields, write one JSON object per line to a
file, and run until every line is written. Each case runs `--repeat` times, one after the
other on the same input (in the page cache), and the table shows the median run:

    case        seconds   events/s   CPU-s   events/CPU-s   peak RSS MiB   vs rsyslog

- pipeline: `pipeline run --once` as a subprocess (file source -> built-in access parse ->
  file sink, fsync off like the peers), with `workers` set by --workers. Wall time is spawn
  to exit (start-up included); CPU and peak RSS come from the children's rusage (every
  worker process included; RSS is the largest single process).
- rsyslog: imfile -> mmnormalize (a liblognorm rulebase for the same 11 fields) -> omfile,
  run in the foreground from Debian's package, unpacked into the bench cache (the machine's
  own syslog daemon, if any, is left alone). It never exits by itself: the harness counts
  the output's lines as they appear, and when all are there samples the daemon's CPU time
  and peak RSS from /proc, then stops it.
- python: the single-core ceiling of plain Python for the same job (one regex per line,
  groupdict, orjson, buffered write): the cost floor of any Python daemon's per-event work.

The ratio column is this case's events/s over rsyslog's, measured in the same run.
rsyslog is installed on first use with apt (`apt-get download rsyslog` plus the
libraries it needs); --only pipeline,python skips it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_file_source import child_env, generate, machine  # noqa: E402

CACHE = Path(os.environ.get("PIPELINE_BENCH_HOME") or Path.home() / ".cache" / "pipeline-bench")
RSYSLOG_ROOT = CACHE / "rsyslog"
RSYSLOGD = RSYSLOG_ROOT / "usr" / "sbin" / "rsyslogd"
RSYSLOG_MODULES = RSYSLOG_ROOT / "usr" / "lib" / "x86_64-linux-gnu" / "rsyslog"
RSYSLOG_LIBS = ["libestr0", "libfastjson4", "liblognorm5", "libzstd1"]

# liblognorm v2: the same 11 fields the pipeline's access format extracts.
RULEBASE = """version=2
rule=:%remote_addr:word% - %remote_user:word% [%time_local:char-to:]%] \
"%method:word% %path:word% %protocol:char-to:"%" %status:number% %bytes_sent:number% \
"%referer:char-to:"%" "%user_agent:char-to:"%" %request_time:float%
"""
RSYSLOG_CONF = """global(workDirectory="{work}")
module(load="imfile" mode="inotify")
module(load="mmnormalize")
template(name="jsonl" type="string" string="%$!%\\n")
input(type="imfile" file="{input}" tag="nginx:" addMetadata="off" ruleset="bench")
ruleset(name="bench") {{
  action(type="mmnormalize" rulebase="{rulebase}" useRawMsg="on")
  action(type="omfile" file="{output}" template="jsonl")
}}
"""
PIPELINE_CONF = """data_dir: {work}/data
api: {{enabled: false}}
workers: {workers}
sources:
  in: {{type: file, include: ["{input}"], start_at: beginning, log_type: access, watch: false}}
transforms:
  parsed: {{type: parse, inputs: [in], log_type: access}}
sinks:
  out: {{type: file, inputs: [parsed], path: "{output}", fsync: false}}
"""
PYTHON_CEILING = r"""
import re, sys, orjson
LINE = re.compile(r'(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] '
                  r'"(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]+)" (?P<status>\d+) (?P<bytes_sent>\d+) '
                  r'"(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)" (?P<request_time>[\d.]+)')
dumps, match = orjson.dumps, LINE.match
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb", buffering=1 << 20) as out:
    for raw in src:
        m = match(raw.decode())
        if m is not None:
            out.write(dumps(m.groupdict()) + b"\n")
"""


@dataclass
class Run:
    seconds: float
    cpu: float
    rss_mib: float
    events: int


def count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of a command and every process it waited for.

    From wait4's rusage of this one child (getrusage(RUSAGE_CHILDREN) keeps the largest RSS of
    every child ever reaped, so it would show an earlier case's peak)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")  # until it exits (closes stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def run_pipeline(input_path: Path, work: Path, lines: int, workers: str) -> Run:
    output = work / "out.jsonl"
    config = work / "pipeline.yaml"
    config.write_text(PIPELINE_CONF.format(work=work, input=input_path, output=output, workers=workers))
    wall, cpu, rss = run_child(
        [sys.executable, "-m", "pipeline", "--log-level", "warning", "run", "--once", "--config", str(config)],
        child_env(),
    )
    return Run(wall, cpu, rss, count_lines(output))


def run_python(input_path: Path, work: Path, lines: int, workers: str) -> Run:
    output = work / "out.jsonl"
    script = work / "ceiling.py"
    script.write_text(PYTHON_CEILING)
    wall, cpu, rss = run_child([sys.executable, str(script), str(input_path), str(output)])
    return Run(wall, cpu, rss, count_lines(output))


def ensure_rsyslog() -> None:
    if RSYSLOGD.exists():
        return
    print("rsyslog: installing its libraries with apt and unpacking its package into the bench cache", file=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *RSYSLOG_LIBS],
        check=True,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        stdout=subprocess.DEVNULL,
    )
    download = Path(tempfile.mkdtemp(prefix="rsyslog-deb-"))
    subprocess.run(["apt-get", "download", "rsyslog"], cwd=download, check=True, stdout=subprocess.DEVNULL)
    (deb,) = download.glob("rsyslog_*.deb")
    RSYSLOG_ROOT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg", "-x", str(deb), str(RSYSLOG_ROOT)], check=True)
    shutil.rmtree(download)


def proc_cpu_and_rss(pid: int) -> tuple[float, float]:
    """CPU seconds (all threads) and peak RSS in MiB of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) / 1024
    return cpu, rss


def run_rsyslog(input_path: Path, work: Path, lines: int, workers: str) -> Run:
    ensure_rsyslog()
    output = work / "out.jsonl"
    state = work / "state"
    state.mkdir()
    rulebase = work / "nginx.rulebase"
    rulebase.write_text(RULEBASE)
    conf = work / "rsyslog.conf"
    conf.write_text(RSYSLOG_CONF.format(work=state, input=input_path, rulebase=rulebase, output=output))
    argv = [str(RSYSLOGD), "-n", "-f", str(conf), "-i", str(work / "rsyslog.pid"), "-M", str(RSYSLOG_MODULES)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = 0
    offset = 0
    deadline = time.monotonic() + 600
    try:
        while seen < lines:
            if proc.poll() is not None:
                raise SystemExit(f"rsyslogd exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            if time.monotonic() > deadline:
                raise SystemExit(f"rsyslog wrote {seen} of {lines} lines in 600 s")
            if output.exists():
                with open(output, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                offset += len(data)
                seen += data.count(b"\n")
            if seen < lines:
                time.sleep(0.02)
        wall = time.perf_counter() - t0
        cpu, rss = proc_cpu_and_rss(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return Run(wall, cpu, rss, seen)


CASES = {"pipeline": run_pipeline, "rsyslog": run_rsyslog, "python": run_python}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="auto", help="the pipeline's `workers` setting (auto or N)")
    ap.add_argument("--only", default="pipeline,rsyslog,python", help="comma-separated cases")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "bench-peers"))
    args = ap.parse_args()
    cases = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; known: {', '.join(CASES)}")
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    input_path = base / f"access-{args.lines}.log"
    if not input_path.exists():
        generate(input_path, args.lines, request_time=True)
    size_mib = input_path.stat().st_size / 2**20
    count_lines(input_path)  # into the page cache
    results: dict[str, list[Run]] = {c: [] for c in cases}
    for n in range(args.repeat):
        for case in cases:
            work = base / f"run-{case}-{n}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            run = CASES[case](input_path, work, args.lines, args.workers)
            if run.events != args.lines:
                raise SystemExit(f"{case}: wrote {run.events} events, expected {args.lines}")
            results[case].append(run)
            print(f"  {case} #{n + 1}: {run.seconds:.2f}s, {run.cpu:.2f} CPU-s, {run.rss_mib:.0f} MiB", file=sys.stderr)
            shutil.rmtree(work, ignore_errors=True)

    def median(case: str) -> Run:
        runs = sorted(results[case], key=lambda r: r.seconds)
        return runs[len(runs) // 2]

    print(f"machine: {machine()}")
    print(
        f"input: {args.lines:,} nginx lines (combined + request_time), {size_mib:.1f} MiB, in the page cache; "
        f"median of {args.repeat}; pipeline workers: {args.workers}"
    )
    print()
    print("| case | seconds | events/s | MiB/s | CPU-s | events/CPU-s | peak RSS MiB | vs rsyslog |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    reference = median("rsyslog") if "rsyslog" in results else None
    for case in cases:
        run = median(case)
        rate = args.lines / run.seconds
        ratio = f"{rate / (args.lines / reference.seconds):.2f}x" if reference is not None else "-"
        print(
            f"| {case} | {run.seconds:.2f} | {rate:,.0f} | {size_mib / run.seconds:.1f} | {run.cpu:.2f} | "
            f"{args.lines / run.cpu:,.0f} | {run.rss_mib:.0f} | {ratio} |"
        )
    spread = {c: statistics.pstdev([r.seconds for r in results[c]]) for c in cases}
    print()
    print("spread (stdev of seconds): " + ", ".join(f"{c} {s:.2f}" for c, s in spread.items()))


if __name__ == "__main__":
    main()
