"""A crash loop must not multiply the data: SIGKILL `pipeline run` soon after each start, again and again.

A writer appends 60k numbered lines, rotating by rename every 7k lines. The daemon
(file source -> file sink, the source's default checkpoint settings) is started and
killed with SIGKILL 0.5-2.5 s after it started (logged "pipeline running": on a busy
machine the imports alone can take longer than 2.5 s), five times, then drained with
`--once`.

A daemon killed this early still has to have saved its progress: the checkpoint is
written soon after batches settle (coalesced, `checkpoint_interval`, 200 ms by default),
and the first one as soon as the first batch settles. So every line arrives, and the
duplicates are only what was in flight at each kill (written by the sink but not yet in
the checkpoint): at most 2% of the lines. Before, the checkpoint was written every 5 s,
nothing was saved by a daemon that lived less than that, and each line arrived 2-4 times.

The writer's pattern matters. It writes BURST lines every BURST / RATE seconds (250 ms),
further apart than the checkpoint interval, so each settled burst is checkpointed at once
and what can be in flight at a kill is about one burst (written out, its checkpoint not yet
on disk): at most 5 x 250 lines, and only if every kill lands in that window of a few ms.
With 500-line bursts at 2k lines/s three unlucky kills of five already made 2.5% (seen once
in CI on a loaded machine): the bound then measured luck, not the checkpoint. Faster
(4k lines/s, or a restart's catch-up at full speed) one interval's worth of settled batches
can be held back at a kill: `crash_loop(rate=..., burst=...)` measures that by hand.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.reliability.file_daemon import (
    DaemonProcess,
    OutputCounter,
    cleanup,
    start_writer,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.reliability

TOTAL = 60_000
ROTATE_EVERY = 7_000
RATE = 1_000  # lines/s written: the writer runs about 60 s, through all the kills
BURST = 250  # lines per write: one every 250 ms
KILLS = 5
MAX_DUPLICATE_RATIO = 0.02


@dataclass
class CrashLoop:
    seed: int
    delays: list[float] = field(default_factory=list)
    shipped_at_kill: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    duplicates: int = 0


def crash_loop(tmp_path: Path, *, total: int = TOTAL, rate: float = RATE, burst: int = BURST, kills: int = KILLS,
               seed: int | None = None, checkpoint_interval: str | None = None) -> CrashLoop:
    """Run the crash loop; return what arrived (also used by hand to measure other rates)."""
    rng = random.Random(seed)
    run = CrashLoop(seed if seed is not None else rng.randrange(1 << 30))
    rng.seed(run.seed)
    logs = tmp_path / "logs"
    logs.mkdir()
    cfg = write_config(tmp_path, f"{logs}/app.log*", checkpoint_interval=checkpoint_interval)
    daemon = DaemonProcess(cfg, tmp_path)
    counter = OutputCounter(tmp_path / "out.jsonl")
    writer = None
    try:
        writer = start_writer(tmp_path, logs / "app.log", total, ROTATE_EVERY, "rename", rate=rate,
                              burst=burst)
        for k in range(kills):
            daemon.start()
            assert wait_until(lambda k=k: daemon_starts(daemon) > k, timeout=60), daemon.log_tail()
            delay = rng.uniform(0.5, 2.5)
            run.delays.append(round(delay, 2))
            time.sleep(delay)
            daemon.kill()
            run.shipped_at_kill.append(counter.update())
        assert writer.wait(120) == 0
        assert daemon.run_once(timeout=120) == 0, daemon.log_tail()
    finally:
        cleanup(writer, daemon)
    counter.update()
    counts = counter.counts
    run.missing = [n for n in range(total) if counts[n] == 0]
    assert set(counts) <= set(range(total))
    run.duplicates = sum(c - 1 for c in counts.values() if c > 1)
    return run


def daemon_starts(daemon: DaemonProcess) -> int:
    """How many times the daemon logged that its pipeline runs."""
    try:
        return daemon.log_path.read_text(errors="replace").count("pipeline running")
    except OSError:
        return 0


def test_sigkill_soon_after_each_start_loses_nothing_and_duplicates_little(tmp_path: Path) -> None:
    run = crash_loop(tmp_path)
    context = (f"seed={run.seed} kill delays={run.delays} output lines at each kill={run.shipped_at_kill} "
               f"duplicates={run.duplicates} ({run.duplicates / TOTAL:.2%})")
    assert run.shipped_at_kill[-1] > 0, f"the daemon never shipped before a kill: nothing was tested ({context})"
    assert not run.missing, f"{len(run.missing)} lines lost, first {run.missing[:10]} ({context})"
    assert run.duplicates <= MAX_DUPLICATE_RATIO * TOTAL, context
    print(context)
