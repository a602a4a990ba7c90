"""Persistence of the webhook sink's state: atomic file writes, coalesced under load.

`StateStore` writes `data_dir/webhook/<name>.json` with `pipeline.atomicfile.write_atomic`
(tmp + fsync + rename + fsync of the folder), so a crash leaves either the old or the
new state, never a torn one. A file that cannot be read back (truncated by a broken disk, unknown version)
is moved aside and the sink starts empty: alerts are derived data, so losing them
is better than refusing to start.

`Persister` gives `send()` its guarantee: `await persister.flush(version)` returns
once a write that includes `version` of the state is durable. Writes are group
commits: callers arriving while a write is in flight wait for the next one, which
covers all of them, and writes start at most every `min_interval`. A large state
(windowed rules' buckets) spaces them further, by what a write costs the process
and the disk:
- its CPU time (serialising on the loop, writing in the thread) x `COST_FACTOR`,
  so persistence takes at most about a fifth of a core whatever the state's size;
- its bytes at `WRITE_BYTES_PER_S`, so it takes a bounded share of the disk.
The wait for fsync is not a cost: on a disk shared with busy writers (a database
flushing parts) fsync of a few hundred bytes can take tens of milliseconds, and
spacing writes by it (as once done) held every send 5x as long, which capped a
processor's throughput at the sink's batch size per few hundred milliseconds.
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
WRITE_BYTES_PER_S = 16 * 2**20


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
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.store = store
        self._snapshot = snapshot
        self.min_interval = min_interval
        self._clock = clock
        self._cpu_clock = cpu_clock
        self.version = 0  # bumped by every change to the state
        self.durable = 0  # the version the file on disk includes
        self.writes = 0
        self._lock = asyncio.Lock()
        self._last_start = float("-inf")
        self.last_cost = 0.0  # CPU-seconds of the last write: serialising on the loop + writing in the thread
        self.spacing = min_interval  # seconds from the start of one write to the start of the next, at least
        self._write_cpu = 0.0

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
                wait = self._last_start + self.spacing - self._clock()
                if wait > 0:
                    await asyncio.sleep(wait)  # more changes fold in meanwhile; one write covers them
                self._last_start = self._clock()
                covered = self.version
                began = self._cpu_clock()
                data = self._snapshot()  # on the loop: consistent with `covered`
                snapshot_cpu = self._cpu_clock() - began
                await write_in_thread(self._save, data)  # finishes even if cancelled (we hold the lock)
                self.last_cost = snapshot_cpu + self._write_cpu
                self.spacing = max(self.min_interval, COST_FACTOR * self.last_cost, len(data) / WRITE_BYTES_PER_S)
                self.durable = max(self.durable, covered)
                self.writes += 1

    def _save(self, data: bytes) -> None:
        """The store's save, in the writer thread, noting its CPU time (the fsync wait is not CPU)."""
        began = self._cpu_clock()
        try:
            self.store.save(data)
        finally:
            self._write_cpu = self._cpu_clock() - began
