"""Starting worker processes: first thing in `pipeline run`, and whenever the pool needs one.

A worker imports for about a quarter of a second before it can take a task, and
the main process imports for about as long before it reads a line. Started one
after the other, the two waits add up on every `pipeline run`; so `run` starts
the workers a config will ask for before it imports anything heavy
(`start_early`), from a glance at the config file's text: a top-level
`workers:` other than 1, and a `file` source. The pool then takes those
(`take`) and starts any others itself (`start`). A glance that guessed wrong
costs processes that are ended unused (`discard`, called once the pool knows
what it needs, and at exit).

This module imports nothing heavy: it runs before the config model is loaded.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

# The worker imports this very package, from wherever this process found it.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])

# `workers: auto` or `workers: N` at the top level of a YAML file (a value in quotes too).
_WORKERS_LINE = re.compile(r"""^workers:[ \t]*(["']?)(auto|[0-9]+)\1[ \t]*(?:#.*)?$""", re.MULTILINE)
# A source of type file, in block or flow style (`type: file` / `type: "file"`).
_FILE_SOURCE = re.compile(r"""\btype:[ \t]*(["']?)file\1[ \t]*(?:[,}#]|$)""", re.MULTILINE)

# A worker's pipes hold a whole task and answer (256 KiB of access lines become ~650 KB of JSON),
# so neither side waits half-way through one; at least Linux's default.
PIPE_BYTES = 1 << 20
_MIN_PIPE_BYTES = 64 * 1024
_PIPE_SOFT_LIMIT = "/proc/sys/fs/pipe-user-pages-soft"

_early: list[subprocess.Popen[bytes]] = []


def available_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period) + 0.5)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def worker_count(setting: int | str) -> int:
    return available_cpus() if setting == "auto" else int(setting)


def expected_workers(text: str) -> int:
    """How many workers a config file's text will most likely ask for: 0 when it says no
    `workers` above 1 at the top level, or has no file source (the only kind offloaded)."""
    found = _WORKERS_LINE.search(text)
    if found is None or _FILE_SOURCE.search(text) is None:
        return 0
    count = worker_count(found.group(2))
    return count if count > 1 else 0


def pipe_bytes(workers: int, soft_pages: int | None = None) -> int:
    """The size of each worker pipe when there are `workers`: `PIPE_BYTES`, or less when that many
    would take more than half of what a user may hold in pipes before the kernel gives its new pipes
    two pages only (`soft_pages`, read from /proc/sys/fs/pipe-user-pages-soft: 64 MiB by default, so
    past 16 workers). A power of two, as the kernel rounds to one."""
    if soft_pages is None:
        try:
            with open(_PIPE_SOFT_LIMIT) as fh:
                soft_pages = int(fh.read())
        except (OSError, ValueError):
            return PIPE_BYTES
    if soft_pages <= 0:  # no limit
        return PIPE_BYTES
    share = soft_pages * os.sysconf("SC_PAGE_SIZE") // 2 // (2 * max(1, workers))
    if share < _MIN_PIPE_BYTES:
        return _MIN_PIPE_BYTES
    return min(PIPE_BYTES, 1 << (share.bit_length() - 1))


def start(workers: int) -> subprocess.Popen[bytes]:
    """A new worker process (`python -m pipeline.workers`) of `workers`, reading tasks on stdin,
    answering on stdout; its stderr is this process's (the daemon's log)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_IMPORT_ROOT, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.workers"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    assert process.stdin is not None and process.stdout is not None
    size = pipe_bytes(workers)
    for pipe in (process.stdin, process.stdout):
        with contextlib.suppress(OSError, AttributeError):  # (a lower pipe-max-size, or not Linux: the default)
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, size)
    return process


def start_early(config_path: str) -> int:
    """Start the workers the config at `config_path` will likely need; how many were started.
    Never fails: whatever goes wrong here, the pool starts its workers itself later."""
    try:
        with open(config_path, encoding="utf-8", errors="replace") as fh:
            count = expected_workers(fh.read(1 << 20))
        for _ in range(count - len(_early)):
            _early.append(start(count))
    except OSError:
        pass
    if _early:
        atexit.register(discard)
    return len(_early)


def take() -> subprocess.Popen[bytes] | None:
    """A worker started early and still running, or None."""
    while _early:
        process = _early.pop(0)
        if process.poll() is None:
            return process
        end(process)
    return None


def discard() -> None:
    """End the workers started early that no pool took (killed: they hold nothing yet)."""
    while _early:
        end(_early.pop())


def end(process: subprocess.Popen[bytes]) -> None:
    """Kill a worker that holds nothing yet (it may still be importing), close its pipes, reap it."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    process.wait()
