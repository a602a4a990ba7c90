"""Rotation under load: a writer process rotates while `pipeline run` (file -> file sink) tails.

- rename: 200k lines, `app.log` renamed to `app.log.<gen>` every 20k lines (with late
  writes to the renamed file). Every number must arrive exactly once, and a restart with
  --once afterwards must add nothing (the checkpoint covers every file).
- copytruncate: 200k lines, copied to `app.log.<gen>` (not matched) and truncated every
  20k lines. copytruncate loses whatever is written between the copy and the truncate, so
  the writer pauses at each rotation until the daemon has shipped everything (the
  cooperative rotation a test can make deterministic); then exactly once is the promise.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.reliability.file_daemon import (
    DaemonProcess,
    OutputCounter,
    cleanup,
    read_numbers,
    start_writer,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.reliability

TOTAL = 200_000
EVERY = 20_000


def _exactly_once(out: Path, total: int) -> None:
    counts = read_numbers(out)
    missing = [n for n in range(total) if counts[n] == 0]
    dupes = {n: c for n, c in counts.items() if c > 1}
    assert not missing, f"{len(missing)} numbers missing, first {missing[:10]}"
    assert not dupes, f"{len(dupes)} numbers duplicated, e.g. {list(dupes.items())[:10]}"
    assert sum(counts.values()) == total


def test_rename_rotation_under_load_delivers_every_line_exactly_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    out = tmp_path / "out.jsonl"
    daemon = DaemonProcess(write_config(tmp_path, f"{logs}/app.log*"), tmp_path)
    counter = OutputCounter(out)
    writer = None
    try:
        daemon.start()
        writer = start_writer(tmp_path, logs / "app.log", TOTAL, EVERY, "rename", rate=60_000)
        assert writer.wait(60) == 0
        got_all = wait_until(lambda: counter.update() >= TOTAL, timeout=40)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.log_tail()
        assert got_all, f"only {counter.update()} of {TOTAL} lines arrived\n{daemon.log_tail()}"
        assert len(list(logs.glob("app.log.*"))) == TOTAL // EVERY - 1
        _exactly_once(out, TOTAL)
        # Restart: the checkpoint covers every generation, nothing is read again.
        assert daemon.run_once() == 0, daemon.log_tail()
        _exactly_once(out, TOTAL)
    finally:
        cleanup(writer, daemon)


def test_copytruncate_rotation_under_load_delivers_every_line_exactly_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    out = tmp_path / "out.jsonl"
    daemon = DaemonProcess(write_config(tmp_path, f"{logs}/app.log"), tmp_path)
    counter = OutputCounter(out)
    writer = None
    try:
        daemon.start()
        writer = start_writer(tmp_path, logs / "app.log", TOTAL, EVERY, "copytruncate", rate=60_000)
        assert writer.stdout is not None and writer.stdin is not None
        rotations = 0
        while True:
            line = writer.stdout.readline()
            if not line or line.startswith("DONE"):
                break
            written = int(line.split()[1])
            # Cooperate: rotate only once the daemon has shipped everything written so far.
            assert wait_until(lambda n=written: counter.update() >= n, timeout=30, interval=0.02), (
                f"daemon stuck before rotation {rotations + 1}\n{daemon.log_tail()}")
            writer.stdin.write("go\n")
            writer.stdin.flush()
            rotations += 1
        assert writer.wait(30) == 0
        assert rotations == TOTAL // EVERY - 1
        got_all = wait_until(lambda: counter.update() >= TOTAL, timeout=30)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.log_tail()
        assert got_all, f"only {counter.update()} of {TOTAL} lines arrived\n{daemon.log_tail()}"
        _exactly_once(out, TOTAL)
        assert daemon.run_once() == 0, daemon.log_tail()
        _exactly_once(out, TOTAL)
    finally:
        cleanup(writer, daemon)
