"""Persistence of the webhook sink's state: atomic file writes, coalesced under load.

`StateStore` writes `data_dir/webhook/<name>.json` with `pipeline.atomicfile.write_atomic`
(tmp + fsync + rename + fsync of the folder), so a crash leaves either the old or the
new state, never a torn one. A file that cannot be read back (truncated by a broken disk, unknown version)
is moved aside and the sink starts empty: alerts are derived data, so losing them
is better than refusing to start.

`Persister` gives `send()` its guarantee: `await persister.flush(version)` returns
once a write that includes `version` of the state is durable. Writes are group
commits: callers arriving while a write is in flight wait for the next one, which
covers all of them, and writes start at most every `min_interval`, or, for a large
state (windowed rules' buckets), at most every `COST_FACTOR` x the last write's own
cost (serialising on the loop + the fsynced write), so persistence never takes more
than about a fifth of the time whatever the state's size.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from pipeline.atomicfile import write_atomic, write_in_thread

log = logging.getLogger(__name__)
COST_FACTOR = 5.0


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, version: int) -> dict[str, Any] | None:
        """The saved state, or None (no file, or an unreadable one, which is moved aside)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("version") != version:
                raise ValueError(f"unknown version {data.get('version')!r} (expected {version})")
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            os.replace(self.path, aside)
            log.error(
                "webhook state unreadable: starting empty",
                extra={"path": str(self.path), "moved_to": str(aside), "error": str(exc)},
            )
            return None
        return data

    def save(self, data: bytes) -> None:
        """Atomically replace the state file (blocking: run it in a thread)."""
        write_atomic(self.path, data)


class Persister:
    """Group-commit writes of a snapshot; versions say which changes a write covers."""

    def __init__(
        self,
        store: StateStore,
        snapshot: Callable[[], bytes],
        min_interval: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._snapshot = snapshot
        self.min_interval = min_interval
        self._clock = clock
        self.version = 0  # bumped by every change to the state
        self.durable = 0  # the version the file on disk includes
        self.writes = 0
        self._lock = asyncio.Lock()
        self._last_start = float("-inf")
        self.last_cost = 0.0  # seconds the last write took, serialising included

    @property
    def dirty(self) -> bool:
        return self.durable < self.version

    def changed(self) -> int:
        """Record a change; returns the version to flush() for it to be durable."""
        self.version += 1
        return self.version

    async def flush(self, version: int | None = None) -> None:
        """Return once the state up to `version` (default: now) is on disk; raises OSError on failure."""
        target = self.version if version is None else version
        while self.durable < target:
            async with self._lock:
                if self.durable >= target:
                    return  # a write that waiters shared covered us
                spacing = max(self.min_interval, COST_FACTOR * self.last_cost)
                wait = self._last_start + spacing - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)  # more changes fold in meanwhile; one write covers them
                self._last_start = start = self._clock()
                covered = self.version
                data = self._snapshot()  # on the loop: consistent with `covered`
                await write_in_thread(self.store.save, data)  # finishes even if cancelled (we hold the lock)
                self.last_cost = self._clock() - start
                self.durable = max(self.durable, covered)
                self.writes += 1
