"""Crash safety: SIGKILL `pipeline run` (file -> file sink) at random moments while a writer appends.

After 5 kills and restarts, a final `--once` run must leave every line delivered at
least once. Duplicates are what was queued or in flight, or released after the last
checkpoint write, at each kill. Per kill that is at most

    (queue_capacity + max_in_flight + 2) * batch_max_lines
        + shipping_rate * (checkpoint_interval + write_slack)

where shipping_rate is the writer's rate for a kill during steady tailing, and the peak
rate the test measured for a kill while the daemon catches up after a restart. Kills
alternate between the two (each after a random delay), and the writer rotates by
rename, so kills also land around rotations.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from tests.reliability.file_daemon import DaemonProcess, OutputCounter, cleanup, start_writer, write_config

pytestmark = pytest.mark.reliability

TOTAL = 80_000
RATE = 4_000  # lines/s written
LINE = 57  # bytes per written line: "%07d payload " + 40 x + "\n"
KILLS = 5
QUEUE_CAPACITY = 2
IN_FLIGHT = 1
BATCH = 200
CHECKPOINT_INTERVAL = 0.05
WRITE_SLACK = 0.25  # a checkpoint write (two fsyncs) on a busy disk


class RateSampler:
    """Watches the output grow; remembers the peak rate over >= 100 ms windows."""

    def __init__(self, counter: OutputCounter) -> None:
        self.counter = counter
        self.peak = 0.0
        self._t = time.monotonic()
        self._n = counter.update()

    def poll(self) -> int:
        n = self.counter.update()
        now = time.monotonic()
        if now - self._t >= 0.1:
            self.peak = max(self.peak, (n - self._n) / (now - self._t))
            self._t, self._n = now, n
        return n

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.02)
            self.poll()

    def wait(self, predicate: object, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():  # type: ignore[operator]
                return True
            time.sleep(0.02)
            self.poll()
        return False


def written_lines(logs: Path) -> int:
    return sum(p.stat().st_size for p in logs.glob("app.log*")) // LINE


@pytest.mark.parametrize("batch_path", [False, True], ids=["per-event", "batch-path-in-process"])
def test_sigkill_at_random_moments_loses_nothing_and_bounds_duplicates(tmp_path: Path, batch_path: bool) -> None:
    # batch_path: a transform puts the source on the worker's batch path, run in the daemon (`workers: 1`).
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = write_config(tmp_path, f"{logs}/app.log*", queue_capacity=QUEUE_CAPACITY, batch_max_lines=BATCH,
                       checkpoint_interval=f"{int(CHECKPOINT_INTERVAL * 1000)}ms", tagged=batch_path)
    daemon = DaemonProcess(cfg, tmp_path)
    counter = OutputCounter(tmp_path / "out.jsonl")
    sampler = RateSampler(counter)
    writer = None
    kills: list[tuple[str, float, int]] = []
    try:
        writer = start_writer(tmp_path, logs / "app.log", TOTAL, 25_000, "rename", rate=RATE)
        for k in range(KILLS):
            before = counter.update()
            daemon.start()
            writing = writer.poll() is None
            # Startup (imports) takes seconds on a busy machine; wait until the daemon ships.
            shipping = sampler.wait(lambda b=before: counter.update() > b, timeout=45)
            assert shipping or not writing, f"the daemon does not ship\n{daemon.log_tail()}"
            kind = "catch-up"
            if k % 2 == 1:
                kind = "tailing"
                assert sampler.wait(lambda: counter.update() >= written_lines(logs), timeout=45), daemon.log_tail()
            delay = rng.uniform(0.0, 1.5)
            sampler.sleep(delay)
            daemon.kill()
            kills.append((kind, round(delay, 2), sampler.poll()))
        assert writer.wait(60) == 0
        assert daemon.run_once(timeout=60) == 0, daemon.log_tail()
    finally:
        cleanup(writer, daemon)
    counter.update()
    counts = counter.counts
    missing = [n for n in range(TOTAL) if counts[n] == 0]
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    queued = (QUEUE_CAPACITY + IN_FLIGHT + 2) * BATCH
    window = CHECKPOINT_INTERVAL + WRITE_SLACK
    bound = sum(queued + (RATE if kind == "tailing" else max(sampler.peak, RATE)) * window for kind, _, _ in kills)
    context = (f"seed={seed} kills (kind, delay, output lines)={kills} peak={sampler.peak:.0f} lines/s "
               f"duplicates={duplicates} bound={bound:.0f}")
    assert not missing, f"{len(missing)} lines lost, first {missing[:10]} ({context})"
    assert set(counts) == set(range(TOTAL)), context
    assert duplicates <= bound, context
    if batch_path:
        assert "in batches, in this process" in daemon.log_path.read_text()
    print(context)
