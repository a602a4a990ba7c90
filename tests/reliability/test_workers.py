"""`workers: 2` as a daemon: a worker killed mid-stream loses nothing; reload and drain keep every line
(with worker processes, and on the batch path in the daemon itself with `workers: 1`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.reliability.file_daemon import (
    DaemonProcess,
    OutputCounter,
    cleanup,
    env_ok,
    read_numbers,
    start_writer,
    wait_until,
    write_config,
)


def worker_pids(daemon_pid: int) -> list[int]:
    """The daemon's worker processes (`python -m pipeline.workers`)."""
    try:
        children = Path(f"/proc/{daemon_pid}/task/{daemon_pid}/children").read_text().split()
    except OSError:
        return []
    pids = []
    for pid in map(int, children):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"pipeline.workers" in cmdline:
            pids.append(pid)
    return pids


def output_order(out: Path) -> list[int]:
    """The line numbers in the order they were written out."""
    order = []
    for line in out.read_bytes().splitlines():
        start = line.find(b'"message":"') + len(b'"message":"')
        order.append(int(line[start : start + 7]))
    return order


def test_a_worker_killed_mid_stream_loses_nothing_and_keeps_the_order(tmp_path: Path) -> None:
    env_ok()
    total = 60_000
    log = tmp_path / "app.log"
    log.touch()
    daemon = DaemonProcess(write_config(tmp_path, f"{log}*", workers=2), tmp_path)
    writer = None
    try:
        proc = daemon.start()
        writer = start_writer(tmp_path, log, total, 10**9, "rename", rate=20_000)
        counter = OutputCounter(tmp_path / "out.jsonl")
        assert wait_until(lambda: counter.update() >= 10_000, 60), daemon.log_tail()
        victims = worker_pids(proc.pid)
        assert victims, "no worker process found"
        os.kill(victims[0], signal.SIGKILL)
        assert wait_until(lambda: counter.update() >= total, 120), f"{counter.total} lines\n{daemon.log_tail()}"
        assert writer.wait(60) == 0
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.log_tail()
    finally:
        cleanup(writer, daemon)
    numbers = read_numbers(tmp_path / "out.jsonl")
    assert sorted(numbers) == list(range(total)), "every line arrived"
    assert max(numbers.values()) == 1, "nothing twice: the killed worker's chunks were processed again, once"
    assert output_order(tmp_path / "out.jsonl") == list(range(total)), "the file's order kept"
    assert "a worker process died" in daemon.log_path.read_text()


@pytest.mark.parametrize(("workers", "tagged"), [(2, False), (1, True)], ids=["2-workers", "batch-path-in-process"])
def test_reload_and_drain_with_workers_lose_nothing(tmp_path: Path, workers: int, tagged: bool) -> None:
    env_ok()
    total = 40_000
    log = tmp_path / "app.log"
    log.touch()
    daemon = DaemonProcess(write_config(tmp_path, f"{log}*", workers=workers, tagged=tagged), tmp_path)
    writer = None
    try:
        daemon.start()
        writer = start_writer(tmp_path, log, total, 15_000, "rename", rate=10_000)
        counter = OutputCounter(tmp_path / "out.jsonl")
        assert wait_until(lambda: counter.update() >= 8_000, 60), daemon.log_tail()
        daemon.signal(signal.SIGHUP)  # reload: drain, checkpoint, rebuild (new worker processes)
        assert wait_until(lambda: counter.update() >= 20_000, 60), daemon.log_tail()
        daemon.signal(signal.SIGTERM)  # drain and stop mid-stream
        assert daemon.wait(60) == 0, daemon.log_tail()
        assert writer.wait(60) == 0
        assert daemon.run_once(120) == 0, daemon.log_tail()  # the rest, from the checkpoint
    finally:
        cleanup(writer, daemon)
    numbers = read_numbers(tmp_path / "out.jsonl")
    assert sorted(numbers) == list(range(total))
    assert max(numbers.values()) == 1, "a drained reload and stop leave nothing to read twice"
    log_text = daemon.log_path.read_text()
    assert "reloaded" in log_text
    assert ("in batches, in this process" in log_text) is (workers == 1)
