"""Helpers for the file-source reliability tests: a writer process, the daemon as a subprocess.

The writer appends numbered lines (`%07d payload...`) at a given rate and rotates
the file every N lines, by rename (`app.log` -> `app.log.<gen>`, with one more
burst written to the old descriptor, as an application does until it reopens)
or by copytruncate (it stops, says `ROTATE <n>` on stdout, and waits for a line on
stdin before copying and truncating: the test lets it go once the daemon has read
everything, which is the only way copytruncate loses nothing).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO

import orjson

ROOT = Path(__file__).resolve().parents[2]

WRITER = r'''
import os, shutil, sys, time
path, total, every, mode, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
BURST = int(sys.argv[6])
PAD = b"x" * 40
fh = open(path, "ab", buffering=0)
n = 0
gen = 0
t0 = time.monotonic()

def burst(f, k):
    global n
    f.write(b"".join(b"%07d payload %s\n" % (i, PAD) for i in range(n, n + k)))
    n += k
    if rate:
        ahead = n / rate - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)

while n < total:
    burst(fh, min(BURST, total - n, every - n % every))
    if n % every == 0 and n < total:
        gen += 1
        if mode == "rename":
            os.rename(path, f"{path}.{gen}")
            burst(fh, min(BURST, total - n))  # late writes to the renamed file
            fh.close()
            fh = open(path, "ab", buffering=0)
        elif mode == "copytruncate":
            print(f"ROTATE {n}", flush=True)
            sys.stdin.readline()
            shutil.copyfile(path, f"{path}.{gen}")
            os.truncate(path, 0)  # O_APPEND: the next write lands at the new end
fh.close()
print(f"DONE {n}", flush=True)
'''


def start_writer(tmp: Path, path: Path, total: int, every: int, mode: str, rate: float,
                 burst: int = 500) -> subprocess.Popen[str]:
    """Append `total` lines in writes of `burst` lines, at `rate` lines/s, rotating every `every` lines."""
    script = tmp / "writer.py"
    script.write_text(WRITER)
    return subprocess.Popen([sys.executable, str(script), str(path), str(total), str(every), mode, str(rate),
                             str(burst)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def write_config(tmp: Path, include: str, *, queue_capacity: int = 4, batch_max_lines: int = 500,
                 checkpoint_interval: str | None = "200ms", extra: str = "", workers: int = 1,
                 tagged: bool = False) -> Path:
    """The daemon's config: file source -> file sink (`checkpoint_interval=None`: the source's default).

    `tagged`: through a mutate transform, which puts the source on the batch path (in worker processes,
    or in the daemon with `workers: 1`); its chunks are then cut to `batch_max_lines` lines of the
    writer's (57 bytes each), so a batch holds as many lines as on the per-event path."""
    cfg = tmp / "pipeline.yaml"
    checkpoint = f"checkpoint_interval: {checkpoint_interval}" if checkpoint_interval else ""
    if tagged:
        extra = ("transforms:\n  tagged: {type: mutate, inputs: [app], operations: [{add_tags: [seen]}]}\n"
                 + extra)
        chunk = f"read_chunk_bytes: {batch_max_lines * 57}"
    else:
        chunk = ""
    cfg.write_text(textwrap.dedent(f"""\
        data_dir: {tmp / "data"}
        api: {{enabled: false}}
        queue_capacity: {queue_capacity}
        workers: {workers}
        shutdown_timeout: 20s
        sources:
          app:
            type: file
            include: ["{include}"]
            scan_interval: 500ms
            poll_interval: 50ms
            batch_max_lines: {batch_max_lines}
            {checkpoint}
            {chunk}
            close_inactive: 3s
        {textwrap.indent(extra, "        ").strip() if extra else ""}
        sinks:
          out:
            type: file
            inputs: [{"tagged" if tagged else "app"}]
            path: {tmp / "out.jsonl"}
            batch: {{max_events: {batch_max_lines}, timeout: 50ms}}
        """))
    return cfg


class DaemonProcess:
    """`pipeline run` in a subprocess; its stderr goes to a log file for post-mortems."""

    def __init__(self, config: Path, tmp: Path) -> None:
        self.config = config
        self.log_path = tmp / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, once: bool = False) -> subprocess.Popen[bytes]:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()
        args = [sys.executable, "-m", "pipeline", "--log-format", "text", "run", "--config", str(self.config)]
        if once:
            args.append("--once")
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=self._log)
        return self.proc

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.wait()

    def run_once(self, timeout: float = 60) -> int:
        self.start(once=True)
        return self.wait(timeout)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class OutputCounter:
    """How often each line number arrived in the file sink's output, read incrementally.

    A SIGKILL can tear the last JSON line of the output; the restarted sink then appends
    after it, so a physical line may hold a torn record followed by whole ones. Torn
    records were never settled (they are replayed), so they are skipped here.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self.counts: collections.Counter[int] = collections.Counter()
        self.total = 0
        self._pos = 0
        self._rest = b""

    def update(self) -> int:
        try:
            with open(self.out, "rb") as fh:
                fh.seek(self._pos)
                data = fh.read()
        except FileNotFoundError:
            return self.total
        self._pos += len(data)
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        for line in data[:cut].split(b"\n"):
            if not line:
                continue
            for piece in line.split(b'{"@timestamp"')[1:]:
                try:
                    event = orjson.loads(b'{"@timestamp"' + piece)
                except orjson.JSONDecodeError:
                    continue
                self.counts[int(event["message"][:7])] += 1
                self.total += 1
        return self.total


def read_numbers(out: Path) -> collections.Counter[int]:
    counter = OutputCounter(out)
    counter.update()
    return counter.counts


def wait_until(predicate: object, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return bool(predicate())  # type: ignore[operator]


def cleanup(*procs: subprocess.Popen[str] | subprocess.Popen[bytes] | DaemonProcess | None) -> None:
    for p in procs:
        if p is None:
            continue
        if isinstance(p, DaemonProcess):
            p.kill()
        elif p.poll() is None:
            p.kill()
            p.wait()
        if not isinstance(p, DaemonProcess):
            for stream in (p.stdin, p.stdout):
                if stream is not None:
                    stream.close()


def env_ok() -> None:
    """Fail early (not skip) if the package is not importable from the repo root."""
    subprocess.run([sys.executable, "-c", "import pipeline.sources.file"], cwd=ROOT, check=True,
                   env={**os.environ})
