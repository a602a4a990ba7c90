"""Coalesced saves: run an action soon after something changed, at most once per interval.

Replayable sources save their progress this way: the file sources write their
checkpoint, the Kafka source commits its offsets. A receipt's release calls
`poke()` (it only sets an event). `run()` then runs the action at once if the
previous run started at least `interval` ago (so the first batch to settle
after a quiet spell, or after start-up, is saved without waiting for a timer),
else when that interval is up: a burst of releases costs one run per interval,
and each run covers every poke made before it started. After a SIGKILL, what is
replayed is what was in flight plus at most one interval of released batches.

The action returns False (or raises: it is logged with its traceback) when it
could not save; it is then tried again with backoff, never sooner than
`interval`. `close()` ends `run()`; the owner makes its final save itself,
after the sinks drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from pipeline.retry import Backoff

Action = Callable[[], Awaitable[bool]]


class Coalescer:
    """Runs `action` after `poke()`, at most once per `interval` seconds, never two at once."""

    def __init__(self, action: Action, interval: float, log: logging.LoggerAdapter[logging.Logger], what: str) -> None:
        self._action = action
        self.interval = interval
        self._log = log
        self._what = what
        self._poked = asyncio.Event()
        self._closed = asyncio.Event()
        self._next = 0.0  # monotonic time before which the action must not start again
        self._backoff = Backoff(max(interval, 0.5), 30.0)
        self.runs = 0  # successful runs

    def poke(self) -> None:
        """Something changed: run the action soon."""
        self._poked.set()

    def close(self) -> None:
        self._closed.set()
        self._poked.set()

    async def run(self) -> None:
        closed = self._closed
        while not closed.is_set():
            await self._poked.wait()
            delay = self._next - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closed.wait(), delay)
            if closed.is_set():
                return
            self._poked.clear()
            self._next = time.monotonic() + self.interval
            try:
                done = await self._action()
            except Exception:
                self._log.exception(f"{self._what} failed; will retry")
                done = False
            if done:
                self._backoff.reset()
                self.runs += 1
            else:
                self._next = time.monotonic() + max(self.interval, self._backoff.next_delay())
                self._poked.set()
