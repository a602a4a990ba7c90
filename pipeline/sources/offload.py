"""The framer of an offloaded file: its lines go to a worker process, its events come back encoded.

`RemoteFramer` takes the place of `PlainFramer` for a file source that the
worker plan offloads (pipeline/workers/plan.py). The reader (`reader.py`) still
reads chunks and splits lines in the main process, so offsets, truncation and
receipts stay its own; `submit` sends each batch's lines as one block of bytes
to the pool, and `ready` hands back, strictly in submission order, the encoded
events of every task that finished, with the resume offset its receipt covers.
Several tasks of one file are in flight at once (that is what uses the other
cores), but a file's batches are emitted in the order of its lines.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pipeline.encoded import EncodedEvents
from pipeline.sources.framing import Framer, Stamp
from pipeline.sources.lines import RawLine
from pipeline.workers.tasks import Counts, Result, Task


class Pool(Protocol):
    """Where tasks run: worker processes (workers/pool.py), or this process (workers/inline.py)."""

    workers: int
    inflight: int  # tasks submitted and not yet taken back, over every reader (the readers count)

    def submit(self, task: Task) -> asyncio.Future[Result]: ...


# What the main process does with a task's transform counts (adds them to the transforms' stats).
OnCounts = Callable[[dict[str, Counts]], None]
# A task in flight per worker, plus one queued, keeps every worker busy.
GLOBAL_INFLIGHT_PER_WORKER = 3


@dataclass(slots=True)
class Remote:
    """What the topology gives an offloaded source: the pool, its chain's name, the counts' destination."""

    pool: Pool
    chain: str
    on_counts: OnCounts


@dataclass(slots=True)
class _Inflight:
    resume: int
    future: asyncio.Future[Result]


class RemoteFramer:
    """Submits a file's lines to the worker pool; yields the encoded results in order."""

    __slots__ = ("_inflight", "remote", "stamp")

    def __init__(self, stamp: Stamp, remote: Remote) -> None:
        self.stamp = stamp
        self.remote = remote
        self._inflight: deque[_Inflight] = deque()

    @property
    def pending(self) -> bool:
        """True while tasks are in flight (the file is not idle: closing it now would lose them)."""
        return bool(self._inflight)

    @property
    def idle_deadline(self) -> float | None:
        # While tasks are in flight, the source loop should come back soon to emit their results.
        return time.monotonic() if self._inflight else None

    def submit(self, lines: list[RawLine], crlf: bool, ts: str) -> None:
        """Lines as the splitter gave them (when one was cut, the worker takes them as they are)."""
        if any(truncated for _, _, _, truncated in lines):
            self._submit(b"", lines[0][1], lines[-1][2], list(lines), crlf, ts)
        else:
            # Joined into a block; the range ends where the last line does (an unterminated
            # last line, flushed at the end of the input, has no newline in the file).
            block = b"\n".join([raw for raw, _, _, _ in lines]) + b"\n"
            self._submit(block, lines[0][1], lines[-1][2], None, crlf, ts)

    def submit_block(self, block: bytes, start: int, crlf: bool, ts: str) -> None:
        """Complete lines as one block of bytes from offset `start` (the common case: no step per line)."""
        self._submit(block, start, start + len(block), None, crlf, ts)

    def _submit(self, block: bytes, start: int, end: int, lines: list[RawLine] | None, crlf: bool, ts: str) -> None:
        stamp = self.stamp
        task = Task(self.remote.chain, stamp.host, stamp.key, stamp.path, stamp.log_type, ts, start, block, lines, crlf)
        pool = self.remote.pool
        future = pool.submit(task)
        pool.inflight += 1
        self._inflight.append(_Inflight(end, future))

    def must_wait(self) -> bool:
        """Too much in flight (this file's share, or the pool's): wait for this file's oldest task."""
        pool = self.remote.pool
        return len(self._inflight) > pool.workers or pool.inflight > pool.workers * GLOBAL_INFLIGHT_PER_WORKER

    async def ready(self, wait: bool) -> list[tuple[EncodedEvents, int]]:
        """(events, resume offset) of the finished head tasks, in order; with `wait`, at least the oldest."""
        out: list[tuple[EncodedEvents, int]] = []
        inflight = self._inflight
        while inflight and (wait or inflight[0].future.done()):
            head = inflight[0]
            result = await head.future  # a dead worker's tasks go to its replacement: only PoolFailed comes here
            inflight.popleft()
            self.remote.pool.inflight -= 1
            self.remote.on_counts(result.counts)
            out.append((EncodedEvents(result.data, result.n), head.resume))
            wait = False  # the rest only if already done
        return out

    def cancel(self) -> None:
        """Forget what is in flight (shutdown without draining: it is read again after the restart)."""
        for item in self._inflight:
            item.future.cancel()
        self.remote.pool.inflight -= len(self._inflight)
        self._inflight.clear()


# What a reader may hold: a local framer, or the remote one of an offloaded file.
AnyFramer = Framer | RemoteFramer
