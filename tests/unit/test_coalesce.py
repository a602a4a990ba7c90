"""Coalesced saves: the first change is saved at once, a burst costs one more save, failures are retried."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from pipeline.coalesce import Coalescer
from pipeline.logs import component_log


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


class Saves:
    """An action that records what it saw: the value of `state` at each run."""

    def __init__(self, fail: int = 0, refuse: int = 0) -> None:
        self.state = 0
        self.seen: list[int] = []
        self.calls = 0
        self._fail = fail
        self._refuse = refuse

    async def __call__(self) -> bool:
        self.calls += 1
        if self._fail:
            self._fail -= 1
            raise OSError("disk on fire")
        if self._refuse:
            self._refuse -= 1
            return False
        self.seen.append(self.state)
        return True


def coalescer(saves: Saves, interval: float) -> Coalescer:
    return Coalescer(saves, interval, component_log(logging.getLogger(__name__), "test"), "saving")


class TestCoalescer:
    async def test_the_first_change_is_saved_at_once_and_a_burst_waits_for_the_interval(self) -> None:
        saves = Saves()
        c = coalescer(saves, interval=3600)
        task = asyncio.create_task(c.run())
        saves.state = 1
        c.poke()
        await until(lambda: saves.seen == [1])  # no timer to wait for: an hour-long interval
        for n in range(2, 50):
            saves.state = n
            c.poke()
        await asyncio.sleep(0.05)
        assert saves.seen == [1]  # the burst waits for the interval
        c.close()
        await task
        assert saves.seen == [1] and c.runs == 1  # close() does not save: the owner does, after draining

    async def test_one_trailing_save_covers_every_change_of_a_burst(self) -> None:
        saves = Saves()
        c = coalescer(saves, interval=0.2)
        task = asyncio.create_task(c.run())
        c.poke()
        await until(lambda: len(saves.seen) == 1)
        for n in range(1, 30):
            saves.state = n
            c.poke()
        await until(lambda: len(saves.seen) == 2)
        await asyncio.sleep(0.5)  # nothing changed since: no more saves
        c.close()
        await task
        assert saves.seen == [0, 29]

    @pytest.mark.parametrize("outcome", [pytest.param({"fail": 2}, id="raises"),
                                         pytest.param({"refuse": 2}, id="returns-false")])
    async def test_a_failed_save_is_retried_without_a_new_change(
            self, outcome: dict[str, int], caplog: pytest.LogCaptureFixture) -> None:
        saves = Saves(**outcome)
        c = coalescer(saves, interval=0.01)
        task = asyncio.create_task(c.run())
        saves.state = 7
        c.poke()
        await until(lambda: saves.seen == [7])
        c.close()
        await task
        assert saves.calls == 3 and c.runs == 1
        failures = [r for r in caplog.records if "saving failed; will retry" in r.getMessage()]
        assert len(failures) == (2 if "fail" in outcome else 0)
        assert all(r.component == "test" for r in failures)  # type: ignore[attr-defined]

    async def test_close_ends_a_wait_for_the_interval(self) -> None:
        saves = Saves()
        c = coalescer(saves, interval=3600)
        task = asyncio.create_task(c.run())
        c.poke()
        await until(lambda: c.runs == 1)
        c.poke()  # due in an hour
        await asyncio.sleep(0.02)
        c.close()
        await asyncio.wait_for(task, 5)
        assert c.runs == 1
