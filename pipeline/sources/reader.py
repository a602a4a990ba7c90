"""Reading one open file: chunk reads, framing, and batches with receipts (the harvester).

`ChunkReader` reads an open file in chunks from an offset and splits them into
lines with `pipeline.sources.lines.LineSplitter` (bounded memory: a line
longer than `max_line_bytes` keeps only its head and is flagged truncated).

`FileReader` is the per-file harvester: it reads one chunk per turn, hands the
lines to the file's framer (`framing.py`), cuts the events into batches of at
most `batch_max_lines` / `batch_max_bytes`, and emits each batch with a receipt
covering [previous resume offset, this resume offset) of the file. Those ranges
are contiguous, so the tracker's watermark can turn their settlement into a
checkpoint. It knows nothing about identity, rotation or checkpoints: the
tracker (`tracker.py`) decides when a file is opened, restarted or closed, and
receives the released ranges through the `release` callback.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable
from functools import partial

from parsers.dates import rfc3339_ms
from pipeline.acks import Receipt, Status
from pipeline.event import Batch, Event, Events
from pipeline.sources.file_config import FileSourceConfig
from pipeline.sources.lines import Block, RawLine
from pipeline.sources.offload import AnyFramer, RemoteFramer
from pipeline.sources.transcode import line_splitter

Emit = Callable[[Batch], Awaitable[None]]
# release(start, end, status): the byte range [start, end) of this file was settled downstream.
Release = Callable[[int, int, Status], None]


class ChunkReader:
    """An open file read chunk by chunk from an offset, split into lines."""

    __slots__ = ("chunk_bytes", "fd", "splitter")

    def __init__(self, fd: int, offset: int, chunk_bytes: int, max_line_bytes: int, encoding: str = "utf-8") -> None:
        self.fd = fd
        self.chunk_bytes = chunk_bytes
        self.splitter = line_splitter(fd, offset, max_line_bytes, encoding)

    @property
    def offset(self) -> int:
        """The next byte to read (every byte before it was fed to the splitter)."""
        return self.splitter.offset

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unterminated line held back."""
        return self.splitter.pending_bytes

    def read(self, as_block: bool = False) -> tuple[bytes, list[RawLine] | Block]:
        """Read one chunk; return it (b"" at EOF) and the complete lines it finished (as one block
        of bytes when `as_block` and no line had to be cut)."""
        data = os.pread(self.fd, self.chunk_bytes, self.splitter.offset)
        if not data:
            return data, []
        return data, self.splitter.feed_block(data) if as_block else self.splitter.feed(data)

    def flush(self) -> RawLine | None:
        """The unterminated last line, if any (idle timeout, end of input)."""
        return self.splitter.flush()


class FileReader:
    """One file's harvest from an offset: chunks -> lines -> framer -> batches with receipts.

    `framer` is None until the tracker knows the file's identity (a file that was
    truncated has none until its first new bytes are read).
    """

    __slots__ = ("_max_bytes", "_max_lines", "_release", "ack_start", "at_eof", "chunks", "framer", "last_data")

    def __init__(self, fd: int, offset: int, config: FileSourceConfig, release: Release) -> None:
        self.chunks = ChunkReader(fd, offset, config.read_chunk_bytes, config.max_line_bytes, config.encoding)
        self.framer: AnyFramer | None = None
        self._release = release
        self._max_lines = config.batch_max_lines
        self._max_bytes = config.batch_max_bytes
        self.ack_start = offset  # start of the next receipt's range
        self.at_eof = False
        self.last_data = time.monotonic()

    @property
    def offset(self) -> int:
        """The next byte to read."""
        return self.chunks.splitter.offset

    @property
    def fd(self) -> int:
        return self.chunks.fd

    @fd.setter
    def fd(self, fd: int) -> None:
        self.chunks.fd = fd

    @property
    def idle(self) -> bool:
        """At the end of the file with nothing held: closing it loses nothing."""
        framer = self.framer
        return (
            self.at_eof
            and self.chunks.pending_bytes == 0
            and not (framer is not None and framer.pending)
            and self.ack_start == self.offset
        )

    @property
    def idle_deadline(self) -> float | None:
        """Monotonic time at which `flush_idle` has something to emit."""
        framer = self.framer
        return framer.idle_deadline if framer is not None else None

    def read(self) -> tuple[bytes, list[RawLine] | Block]:
        """One chunk and the lines it completed (b"" at the end); raises OSError. An offloaded file
        gets them as one block of bytes: its lines are split again in the worker process."""
        data, lines = self.chunks.read(as_block=isinstance(self.framer, RemoteFramer))
        if not data:
            self.at_eof = True
            return data, lines
        if len(data) < self.chunks.chunk_bytes:
            self.at_eof = True
        self.last_data = time.monotonic()
        return data, lines

    async def emit_lines(self, lines: list[RawLine] | Block, crlf: bool, emit: Emit) -> None:
        """Frame `lines` and emit them as batches within the size limits."""
        framer = self.framer
        assert framer is not None
        if isinstance(lines, tuple):  # a block (offloaded files only)
            assert isinstance(framer, RemoteFramer)
            if lines[0]:
                framer.submit_block(lines[0], lines[1], crlf, rfc3339_ms())
                await self._emit_remote(framer, emit, wait=framer.must_wait())
            return
        max_lines = self._max_lines
        max_bytes = self._max_bytes
        now = time.monotonic()
        ts = rfc3339_ms()
        n = len(lines)
        if isinstance(framer, RemoteFramer):
            await self._submit(framer, lines, crlf, ts, emit)
            return
        if n <= max_lines and lines[-1][2] - lines[0][1] <= max_bytes:
            events, resume = framer.feed(lines, now, ts, crlf)
            await self.emit(events, resume, emit)
            return
        i = 0
        while i < n:
            j = min(i + max_lines, n)
            if lines[j - 1][2] - lines[i][1] > max_bytes:
                j = cut_by_bytes(lines, i, j, max_bytes)
            events, resume = framer.feed(lines[i:j], now, ts, crlf)
            await self.emit(events, resume, emit)
            i = j

    async def _submit(self, framer: RemoteFramer, lines: list[RawLine], crlf: bool, ts: str, emit: Emit) -> None:
        """Offloaded: the lines go to a worker as one task (per chunk, not per batch: fewer, larger
        tasks); what has come back is emitted in order, waiting when too much is in flight."""
        framer.submit(lines, crlf, ts)
        await self._emit_remote(framer, emit, wait=framer.must_wait())

    async def _emit_remote(self, framer: RemoteFramer, emit: Emit, wait: bool) -> None:
        for events, resume in await framer.ready(wait):
            # force: a task whose events were all filtered out still releases its range (an empty batch).
            await self.emit(events, resume, emit, force=True)

    async def _drain_remote(self, emit: Emit) -> None:
        framer = self.framer
        if isinstance(framer, RemoteFramer):
            while framer.pending:
                await self._emit_remote(framer, emit, wait=True)

    async def emit(self, events: Events, resume: int | None, emit: Emit, force: bool = False) -> None:
        """Emit events with a receipt for [ack_start, resume) of this file.

        With no events the range is kept open (it merges into the next batch), unless
        `force` (the file is being closed): then an empty batch carries it.
        """
        start = self.ack_start
        end = start if resume is None else resume
        if not events and (end <= start or not force):
            return
        self.ack_start = end
        await emit(Batch(events, Receipt(partial(self._release, start, end))))

    async def flush_idle(self, now: float, emit: Emit) -> None:
        """Emit records held past their idle timeout (multiline, container partials)."""
        framer = self.framer
        if framer is None:
            return
        if isinstance(framer, RemoteFramer):
            await self._drain_remote(emit)
            return
        deadline = framer.idle_deadline
        if deadline is not None and deadline <= now:
            events, resume = framer.flush_idle(now, rfc3339_ms())
            await self.emit(events, resume, emit)

    async def flush(self, emit: Emit, final: bool) -> None:
        """Emit the unterminated last line and every held record of the file."""
        framer = self.framer
        if framer is None:
            return
        ts = rfc3339_ms()
        if isinstance(framer, RemoteFramer):
            line = self.chunks.flush()
            if line is not None:
                framer.submit([line], True, ts)
            await self._drain_remote(emit)
            await self.emit([], None, emit, force=final)
            return
        events: list[Event] = []
        resume: int | None = None
        line = self.chunks.flush()
        if line is not None:
            events, resume = framer.feed([line], time.monotonic(), ts, True)
        more, end = framer.flush(ts)
        if more:
            events = events + more if events else more
        if end is not None:
            resume = end
        await self.emit(events, resume, emit, force=final)


def cut_by_bytes(lines: list[RawLine], i: int, j: int, max_bytes: int) -> int:
    """The largest k in (i, j] with lines[i:k] spanning at most max_bytes (at least one line)."""
    base = lines[i][1]
    lo, hi = i + 1, j
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if lines[mid - 1][2] - base <= max_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo
