"""How far apart the webhook state's writes are (sinks/webhook/state.py `Persister`).

Every send that changed the alert state waits until a write covering it is durable, so the
spacing of writes bounds the sink's throughput. Clocks are injected: a fake wall clock that a
"slow fsync" advances, and a fake CPU clock that a costly snapshot advances.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sinks.webhook import state
from sinks.webhook.state import COST_FACTOR, Persister, StateStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowDisk(StateStore):
    """A store whose every save takes `seconds` of wall time and no CPU (an fsync behind busy writers)."""

    def __init__(self, path: Path, wall: Clock, seconds: float) -> None:
        super().__init__(path)
        self.wall = wall
        self.seconds = seconds
        self.saved: list[bytes] = []

    def save(self, data: bytes) -> None:
        self.wall.now += self.seconds
        super().save(data)
        self.saved.append(data)


async def test_a_slow_fsync_does_not_space_the_next_write(tmp_path: Path) -> None:
    wall, cpu = Clock(), Clock()
    store = SlowDisk(tmp_path / "state.json", wall, seconds=1.0)
    persister = Persister(store, lambda: b"{}", min_interval=0.01, clock=wall, cpu_clock=cpu)
    await persister.flush(persister.changed())
    # The wait for the disk costs the process nothing: the next write may start at once.
    assert persister.last_cost == 0.0
    assert persister.spacing == 0.01
    started = wall.now
    await persister.flush(persister.changed())
    assert wall.now == started + 1.0  # no sleep before the second write: only its own save's second
    assert len(store.saved) == 2


async def test_cpu_cost_of_a_large_state_spaces_writes(tmp_path: Path) -> None:
    wall, cpu = Clock(), Clock()

    def snapshot() -> bytes:
        cpu.now += 0.1  # serialising a large windowed state on the loop
        return b"{}"

    persister = Persister(StateStore(tmp_path / "state.json"), snapshot, min_interval=0.01, clock=wall, cpu_clock=cpu)
    await persister.flush(persister.changed())
    assert persister.last_cost == pytest.approx(0.1)
    assert persister.spacing == pytest.approx(COST_FACTOR * 0.1)


async def test_bytes_written_space_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state, "WRITE_BYTES_PER_S", 1000)
    wall, cpu = Clock(), Clock()
    data = b"x" * 500
    persister = Persister(
        StateStore(tmp_path / "state.json"), lambda: data, min_interval=0.01, clock=wall, cpu_clock=cpu
    )
    await persister.flush(persister.changed())
    assert persister.spacing == pytest.approx(0.5)  # 500 bytes at 1000 bytes/s
    assert (tmp_path / "state.json").read_bytes() == data
