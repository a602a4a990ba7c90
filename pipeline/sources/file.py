"""`file` source: tail files by identity, with rotation, truncation and durable checkpoints.

One task reads every open file round-robin, one chunk per file per turn, so a
busy file cannot starve the others. Each chunk is split into lines and framed
into events in one loop (see `reader.py`); each batch covers a contiguous byte
range of ONE file identity, and its receipt releases that range into the
identity's `Watermark`. The checkpoint store (`pipeline/checkpoint.py`) keeps
the watermark per identity and is written atomically on a timer and at
`aclose()`.

File lifecycle:

- discovery: include/exclude globs, rescanned every `scan_interval` and
  promptly on filesystem events (watchfiles). A never-seen file found by the
  first scan starts at `start_at`; files that appear later are read from 0 (they
  are new: a rotation's fresh file must not lose its head).
- identity (`fileid.py`): device + inode + fingerprint of the first bytes. A
  known identity resumes from its checkpoint; a reused inode is a new file.
- rotation by rename: the open file is kept (by descriptor) and read to its
  end; the new file at the path is a new identity read from 0. The old one is
  closed after `close_inactive` without new data (or at its end with --once).
- copytruncate: a size below the read offset, or changed first bytes, means the
  file was rewritten: it becomes a new identity read again from 0 (the old
  identity's pending releases are ignored).
- deletion: an open deleted file is read to its end, then closed and forgotten.
- symlinks are followed; the identity is the target's.
- `close_inactive`: a file without new data for that long has its unterminated
  last line emitted and is closed (it is reopened when it grows).
- more matching files than `max_open_files`: the rest wait; idle files at
  their end (nothing held) are closed to make room.

On shutdown (not --once) lines held by a joiner or an unterminated last line
are not emitted: they lie past the checkpoint and are read again after the
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from parsers.dates import rfc3339_ms
from pipeline.acks import Receipt, Status
from pipeline.checkpoint import CheckpointStore, Entry
from pipeline.context import BuildContext
from pipeline.event import Batch, Event
from pipeline.metrics import Metrics
from pipeline.registry import register
from pipeline.sources.base import SourceContext
from pipeline.sources.discovery import Discovery
from pipeline.sources.file_config import FileSourceConfig
from pipeline.sources.fileid import Fingerprint, fingerprint, identity_key, matches
from pipeline.sources.lines import RawLine
from pipeline.sources.reader import ChunkReader, Framer, MultilineFramer, PlainFramer, Stamp
from pipeline.watermark import Watermark

log = logging.getLogger(__name__)

# How long to look back for a line start when a new file starts at its end.
_TAIL_LOOKBACK = 64 * 1024
_HOUSEKEEPING_EVERY = 0.2  # seconds between idle-flush / close checks while files are busy


class FileState:
    """One file identity known to the source (open, or closed and waiting to grow)."""

    __slots__ = (
        "ack_start",
        "at_eof",
        "deleted",
        "dev",
        "entry",
        "fd",
        "framer",
        "gen",
        "ino",
        "last_data",
        "mtime_ns",
        "path",
        "reader",
        "size",
        "wm",
    )

    def __init__(
        self, dev: int, ino: int, path: str, fd: int, entry: Entry | None, reader: ChunkReader, framer: Framer | None
    ) -> None:
        self.dev = dev
        self.ino = ino
        self.path = path
        self.fd: int | None = fd
        self.entry = entry
        self.reader = reader
        self.framer = framer
        offset = reader.offset
        self.wm = Watermark(offset)  # released, contiguous
        self.ack_start = offset  # start of the next receipt's range
        self.gen = 0  # bumped on truncation: late releases of the old content are ignored
        self.at_eof = False
        self.deleted = False
        self.last_data = time.monotonic()
        self.size = offset
        self.mtime_ns = 0  # at the last end-of-file check

    @property
    def ident(self) -> tuple[int, int]:
        return (self.dev, self.ino)


class FileSource:
    can_acknowledge = True
    type_name = "file"

    def __init__(self, name: str, config: FileSourceConfig, data_dir: Path, host: str) -> None:
        self.name = name
        self.config = config
        self.host = host
        self.discovery = Discovery(config.include, config.exclude)
        self.store = CheckpointStore(Path(data_dir) / "checkpoints" / f"{name}.json", name, config.checkpoint_retention)
        self._states: dict[tuple[int, int], FileState] = {}
        self._open: dict[tuple[int, int], FileState] = {}
        self._deferred: dict[str, bool] = {}  # path -> found by the initial scan; waiting for a slot
        self._retired: set[str] = set()  # keys of identities ended by truncation (never reused)
        self._unreadable: set[str] = set()  # paths we could not open (warned once)
        self._ctx: SourceContext | None = None
        self._wake = asyncio.Event()
        self._rescan = asyncio.Event()
        self._stop = asyncio.Event()
        self._ck_lock = asyncio.Lock()
        self._loaded = False
        self._synced_at = time.time()
        self._next_housekeeping = 0.0

    # -- lifecycle -----------------------------------------------------------
    @property
    def open_files(self) -> int:
        return len(self._open)

    async def run(self, ctx: SourceContext) -> None:
        self._ctx = ctx
        self.host = ctx.host
        self.store.load()
        self._loaded = True
        self._register_metrics(ctx.metrics)
        self._scan(initial=True)
        if ctx.once:
            await self._run_once()
            return
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._checkpoint_loop(), name=f"{self.name}:checkpoint")
                tasks.create_task(self._scan_loop(), name=f"{self.name}:scan")
                tasks.create_task(self._forward_shutdown(ctx), name=f"{self.name}:shutdown")
                if self.config.watch:
                    tasks.create_task(self._watch_loop(), name=f"{self.name}:watch")
                try:
                    await self._read_loop(ctx)
                finally:
                    self._stop.set()
                    self._rescan.set()
        finally:
            self._stop.set()

    async def aclose(self) -> None:
        """Close every file and write the final checkpoint (after all sinks drained)."""
        self._stop.set()
        for st in list(self._open.values()):
            self._close(st)
        if not self._loaded:
            return
        async with self._ck_lock:
            self._touch_seen(time.time())
            data = self.store.snapshot()
            await asyncio.to_thread(self.store.write, data)
            self._synced_at = time.time()

    # -- the read loop -----------------------------------------------------------
    async def _read_loop(self, ctx: SourceContext) -> None:
        poll = self.config.poll_interval
        while not ctx.shutdown.is_set():
            progressed = await self._turn(ctx)
            now = time.monotonic()
            if not progressed or now >= self._next_housekeeping:
                await self._housekeeping(now)
                self._next_housekeeping = now + _HOUSEKEEPING_EVERY
            if not progressed and not ctx.shutdown.is_set():
                timeout = poll
                deadline = self._next_deadline()
                if deadline is not None:
                    timeout = max(0.0, min(timeout, deadline - now))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)

    async def _run_once(self) -> None:
        """Read every file to its end, flush what is held, emit, return."""
        ctx = self._ctx
        assert ctx is not None
        while not ctx.shutdown.is_set():
            await self._turn(ctx)
            for st in [s for s in self._open.values() if s.at_eof]:
                await self._flush(st, final=True)
                self._close(st)
                if st.deleted:
                    self._forget(st, drop_entry=True)
            self._open_deferred()
            if not self._open and not self._deferred:
                return

    async def _turn(self, ctx: SourceContext) -> bool:
        """One chunk from every open file that has data; True if anything was read."""
        self._wake.clear()
        progressed = False
        for st in list(self._open.values()):
            if ctx.shutdown.is_set():
                break
            if st.fd is None:
                continue
            if await self._service(st, ctx):
                progressed = True
        return progressed

    async def _service(self, st: FileState, ctx: SourceContext) -> bool:
        fd = st.fd
        assert fd is not None
        reader = st.reader
        try:
            if st.at_eof:
                # Cheap check before reading: has it grown, shrunk, or gone?
                info = os.fstat(fd)
                size = info.st_size
                touched = info.st_mtime_ns != st.mtime_ns
                st.mtime_ns = info.st_mtime_ns
                if size == reader.offset:
                    st.size = size
                    if info.st_nlink == 0:
                        st.deleted = True
                    # Same size but modified: appended bytes we already read, or rewritten in
                    # place to exactly our offset (copytruncate + the same amount written).
                    if not touched or st.entry is None or matches(fd, st.entry.fingerprint):
                        return False
                    await self._truncated(st, "rewritten to the same size")
                    return True
                if size < reader.offset:
                    await self._truncated(st, "size below the read offset")
                    return True
                if st.entry is not None and not matches(fd, st.entry.fingerprint):
                    await self._truncated(st, "first bytes changed")
                    return True
                st.at_eof = False
            data, lines = reader.read()
        except OSError as exc:
            log.warning(
                "read failed; closing the file", extra={"component": self.name, "path": st.path, "error": str(exc)}
            )
            self._close(st)
            return False
        if not data:
            st.at_eof = True
            return False
        n = len(data)
        if n < reader.chunk_bytes:
            st.at_eof = True
        st.last_data = time.monotonic()
        if reader.offset > st.size:
            st.size = reader.offset
        ctx.stats.bytes_in += n
        entry = st.entry
        if entry is None:
            self._new_entry(st, fingerprint(fd, self.config.fingerprint_bytes))
        elif entry.fp_len < self.config.fingerprint_bytes and reader.offset > entry.fp_len:
            self._grow_fingerprint(entry, fd)
        if lines:
            await self._emit_lines(st, lines, b"\r" in data)
        return True

    async def _emit_lines(self, st: FileState, lines: list[RawLine], crlf: bool) -> None:
        framer = st.framer
        assert framer is not None
        max_lines = self.config.batch_max_lines
        max_bytes = self.config.batch_max_bytes
        now = time.monotonic()
        ts = rfc3339_ms()
        n = len(lines)
        if n <= max_lines and lines[-1][2] - lines[0][1] <= max_bytes:
            events, resume = framer.feed(lines, now, ts, crlf)
            await self._emit(st, events, resume)
            return
        i = 0
        while i < n:
            j = min(i + max_lines, n)
            if lines[j - 1][2] - lines[i][1] > max_bytes:
                j = _cut_by_bytes(lines, i, j, max_bytes)
            events, resume = framer.feed(lines[i:j], now, ts, crlf)
            await self._emit(st, events, resume)
            i = j

    async def _emit(self, st: FileState, events: list[Event], resume: int | None, force: bool = False) -> None:
        """Emit events with a receipt for [ack_start, resume) of this file identity.

        With no events the range is kept open (it merges into the next batch), unless
        `force` (the file is being closed): then an empty batch carries it.
        """
        start = st.ack_start
        end = start if resume is None else resume
        if not events and (end <= start or not force):
            return
        st.ack_start = end
        ctx = self._ctx
        assert ctx is not None
        await ctx.emit(Batch(events, Receipt(partial(self._release, st, st.gen, start, end))))

    def _release(self, st: FileState, gen: int, start: int, end: int, status: Status) -> None:
        # Rejected events went to the dead-letter queue: settled, so the range is released too.
        if st.gen != gen:
            return  # the file was truncated since: these offsets belong to the old content
        pos = st.wm.release(start, end)
        entry = st.entry
        if entry is not None and pos != entry.offset:
            entry.offset = pos
            entry.updated = time.time()
            self.store.dirty = True

    async def _flush(self, st: FileState, final: bool) -> None:
        """Emit the unterminated last line and every held record of a file."""
        framer = st.framer
        if framer is None:
            return
        ts = rfc3339_ms()
        events: list[Event] = []
        resume: int | None = None
        line = st.reader.flush()
        if line is not None:
            events, resume = framer.feed([line], time.monotonic(), ts, True)
        more, end = framer.flush(ts)
        if more:
            events = events + more if events else more
        if end is not None:
            resume = end
        await self._emit(st, events, resume, force=final)

    # -- identity changes ------------------------------------------------------
    async def _truncated(self, st: FileState, why: str) -> None:
        """The file was rewritten in place: what we read is gone; start over as a new identity."""
        log.info(
            "file truncated; reading it again from the start",
            extra={"component": self.name, "path": st.path, "reason": why},
        )
        await self._flush(st, final=True)
        if st.entry is not None:
            self._retired.add(st.entry.key)
            self.store.remove(st.entry.key)
        fd = st.fd
        assert fd is not None
        st.gen += 1
        st.entry = None
        st.framer = None
        st.reader = ChunkReader(fd, 0, self.config.read_chunk_bytes, self.config.max_line_bytes)
        st.wm = Watermark(0)
        st.ack_start = 0
        st.size = 0
        st.at_eof = False

    def _new_entry(self, st: FileState, fp: Fingerprint) -> Entry:
        key = self._unique_key(identity_key(st.dev, st.ino, fp))
        now = time.time()
        entry = Entry(key, st.dev, st.ino, fp.length, fp.digest, st.reader.offset, st.path, now, now)
        self.store.put(entry)
        st.entry = entry
        st.framer = self._make_framer(st, entry)
        return entry

    def _unique_key(self, key: str) -> str:
        if key not in self._retired and key not in self.store.entries:
            return key
        n = 1
        while f"{key}~{n}" in self._retired or f"{key}~{n}" in self.store.entries:
            n += 1
        return f"{key}~{n}"

    def _grow_fingerprint(self, entry: Entry, fd: int) -> None:
        fp = fingerprint(fd, self.config.fingerprint_bytes)
        if fp.length > entry.fp_len:
            entry.fp_len = fp.length
            entry.fp = fp.digest
            self.store.dirty = True

    def _make_framer(self, st: FileState, entry: Entry) -> Framer:
        stamp = Stamp(self.host, entry.key, st.path, self.config.log_type)
        if self.config.multiline is not None:
            return MultilineFramer(stamp, self.config.multiline.build())
        return PlainFramer(stamp)

    # -- discovery -------------------------------------------------------------
    def _scan(self, initial: bool = False) -> None:
        now = time.time()
        cutoff = now - self.config.ignore_older if self.config.ignore_older else None
        found: set[tuple[int, int]] = set()
        for path in self.discovery.scan():
            try:
                info = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            ident = (info.st_dev, info.st_ino)
            if ident in found:
                continue  # a symlink and its target, or hard links: read once
            found.add(ident)
            st = self._states.get(ident)
            if st is not None:
                if st.path != path and not _same_file(st.path, ident):
                    self._renamed(st, path)  # its old path no longer leads to it
                if st.entry is not None:
                    st.entry.seen = now
                if st.fd is None and info.st_size != st.reader.offset and (cutoff is None or info.st_mtime >= cutoff):
                    self._want_open(path, False)
                continue
            if cutoff is not None and info.st_mtime < cutoff:
                continue
            if info.st_size == 0:
                continue  # nothing to identify or read yet
            self._want_open(path, initial)
        # Closed files no longer found anywhere, with nothing in flight: forget them.
        for ident, st in list(self._states.items()):
            if st.fd is None and ident not in found and st.wm.position >= st.ack_start:
                self._forget(st, drop_entry=False)
        self._open_deferred()
        if self._deferred or found:
            self._wake.set()

    def _renamed(self, st: FileState, path: str) -> None:
        st.path = path
        if st.entry is not None:
            st.entry.path = path
            self.store.dirty = True
        if st.framer is not None:
            st.framer.stamp.path = path

    def _want_open(self, path: str, initial: bool) -> None:
        if path in self._deferred:
            return
        self._deferred[path] = initial

    def _open_deferred(self) -> None:
        limit = self.config.max_open_files
        if self._deferred and len(self._open) >= limit:
            self._evict_idle(len(self._deferred))
        while self._deferred and len(self._open) < limit:
            path = next(iter(self._deferred))
            initial = self._deferred.pop(path)
            self._open_path(path, initial)

    def _evict_idle(self, wanted: int) -> None:
        """Close open files at their end with nothing held, least recently active first."""
        idle = [
            st
            for st in self._open.values()
            if st.at_eof
            and st.reader.pending_bytes == 0
            and not (st.framer and st.framer.pending)
            and st.ack_start == st.reader.offset
        ]
        idle.sort(key=lambda s: s.last_data)
        for st in idle[:wanted]:
            self._close(st)

    def _open_path(self, path: str, initial: bool) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # gone between the scan and now
        except OSError as exc:
            if path not in self._unreadable:
                self._unreadable.add(path)
                log.warning("cannot open file", extra={"component": self.name, "path": path, "error": str(exc)})
            return
        self._unreadable.discard(path)
        try:
            self._adopt(path, fd, initial)
        except OSError as exc:
            log.warning("cannot read file", extra={"component": self.name, "path": path, "error": str(exc)})
            os.close(fd)
        except BaseException:
            os.close(fd)
            raise

    def _adopt(self, path: str, fd: int, initial: bool) -> None:
        info = os.fstat(fd)
        ident = (info.st_dev, info.st_ino)
        cfg = self.config
        st = self._states.get(ident)
        if st is not None:
            if st.fd is not None:
                os.close(fd)  # already open (under another path)
                return
            entry = st.entry
            if entry is not None and info.st_size >= st.reader.offset and matches(fd, entry.fingerprint):
                # The same file, closed while idle: reopen where we were.
                st.fd = fd
                st.reader.fd = fd
                st.at_eof = False
                st.deleted = False
                st.last_data = time.monotonic()
                if st.path != path:
                    self._renamed(st, path)
                self._open[ident] = st
                return
            # Rewritten or its inode reused since we closed it: that identity is gone.
            self._forget(st, drop_entry=True)
        if info.st_size == 0:
            os.close(fd)
            return
        fp = fingerprint(fd, cfg.fingerprint_bytes)
        entry = None
        for cand in self.store.by_inode(*ident):
            if entry is None and matches(fd, cand.fingerprint):
                entry = cand
            else:
                self.store.remove(cand.key)  # inode reused (or file rewritten): the old file is gone
        if entry is not None and info.st_size < entry.offset:
            log.info(
                "file shorter than its checkpoint (truncated); reading it from the start",
                extra={"component": self.name, "path": path},
            )
            self._retired.add(entry.key)
            self.store.remove(entry.key)
            entry = None
        now = time.time()
        if entry is None:
            offset = 0
            if initial and cfg.start_at == "end":
                offset = _line_start_before(fd, info.st_size)
            key = self._unique_key(identity_key(ident[0], ident[1], fp))
            entry = Entry(key, ident[0], ident[1], fp.length, fp.digest, offset, path, now, now)
            self.store.put(entry)
        else:
            entry.path = path
            entry.seen = now
            if fp.length > entry.fp_len:
                entry.fp_len = fp.length
                entry.fp = fp.digest
            self.store.dirty = True
        reader = ChunkReader(fd, entry.offset, cfg.read_chunk_bytes, cfg.max_line_bytes)
        st = FileState(ident[0], ident[1], path, fd, entry, reader, None)
        st.size = info.st_size
        st.framer = self._make_framer(st, entry)
        self._states[ident] = st
        self._open[ident] = st

    def _close(self, st: FileState) -> None:
        fd = st.fd
        if fd is None:
            return
        st.fd = None
        self._open.pop(st.ident, None)
        with contextlib.suppress(OSError):
            os.close(fd)

    def _forget(self, st: FileState, drop_entry: bool) -> None:
        self._close(st)
        if self._states.get(st.ident) is st:
            del self._states[st.ident]
        if drop_entry and st.entry is not None:
            self._retired.add(st.entry.key)
            self.store.remove(st.entry.key)

    # -- housekeeping ----------------------------------------------------------
    async def _housekeeping(self, now: float) -> None:
        cfg = self.config
        for st in list(self._open.values()):
            framer = st.framer
            if framer is not None:
                deadline = framer.idle_deadline
                if deadline is not None and deadline <= now:
                    events, resume = framer.flush_idle(now, rfc3339_ms())
                    await self._emit(st, events, resume)
            if not st.at_eof:
                continue
            if st.deleted:
                await self._flush(st, final=True)
                self._forget(st, drop_entry=True)
            elif now - st.last_data >= cfg.close_inactive:
                await self._flush(st, final=True)
                self._close(st)
        self._open_deferred()

    def _next_deadline(self) -> float | None:
        deadlines = [
            d for st in self._open.values() if st.framer is not None and (d := st.framer.idle_deadline) is not None
        ]
        return min(deadlines) if deadlines else None

    async def _scan_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rescan.wait(), self.config.scan_interval)
            self._rescan.clear()
            if self._stop.is_set():
                return
            try:
                self._scan()
            except Exception:
                log.exception("scan failed", extra={"component": self.name})

    async def _watch_loop(self) -> None:
        from watchfiles import Change, awatch

        dirs, recursive = self.discovery.watch_targets()
        if not dirs:
            return
        # watchfiles logs every batch of changes at INFO: per-event noise for a log shipper.
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        try:
            async for changes in awatch(
                *dirs,
                watch_filter=None,
                debounce=200,
                step=50,
                recursive=recursive,
                stop_event=self._stop,
                ignore_permission_denied=True,
            ):
                if any(change != Change.modified for change, _ in changes):
                    self._rescan.set()
                self._wake.set()
        except Exception as exc:  # the periodic scan still works without events
            log.warning(
                "filesystem events unavailable; relying on rescans", extra={"component": self.name, "error": str(exc)}
            )

    async def _forward_shutdown(self, ctx: SourceContext) -> None:
        stop = asyncio.ensure_future(self._stop.wait())
        shutdown = asyncio.ensure_future(ctx.shutdown.wait())
        try:
            await asyncio.wait({stop, shutdown}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            shutdown.cancel()
        self._wake.set()

    # -- checkpoints -----------------------------------------------------------
    async def _checkpoint_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.config.checkpoint_interval)
            if self._stop.is_set():
                return  # aclose() writes the final one, after the sinks drained
            try:
                await self._checkpoint()
            except Exception:
                log.exception("writing the checkpoint failed; will retry", extra={"component": self.name})

    async def _checkpoint(self) -> None:
        async with self._ck_lock:
            now = time.time()
            self._touch_seen(now)
            keep = {st.entry.key for st in self._states.values() if st.entry is not None}
            self.store.prune(now, keep)
            if not self.store.dirty:
                self._synced_at = now
                return
            data = self.store.snapshot()
            await asyncio.to_thread(self.store.write, data)
            self._synced_at = now

    def _touch_seen(self, now: float) -> None:
        for st in self._open.values():
            if st.entry is not None:
                st.entry.seen = now

    # -- metrics ---------------------------------------------------------------
    def _register_metrics(self, metrics: Metrics) -> None:
        # Registered on behalf of this source; the topology drops them when it closes.
        mine = [self]
        metrics.gauge(
            "pipeline_file_lag_bytes",
            "Bytes of a file not yet released (size minus checkpoint).",
            ["component", "path"],
            partial(_lag_samples, mine),
            owner=self,
        )
        metrics.gauge(
            "pipeline_checkpoint_age_seconds",
            "Seconds the on-disk checkpoint lags the released state (0 when in sync).",
            ["component"],
            partial(_age_samples, mine),
            owner=self,
        )
        metrics.gauge(
            "pipeline_open_files",
            "Files a file/container source holds open.",
            ["component"],
            partial(_open_samples, mine),
            owner=self,
        )

    def lag_by_path(self) -> dict[str, int]:
        lags: dict[str, int] = {}
        for st in self._states.values():
            size = st.size
            if st.fd is not None:
                with contextlib.suppress(OSError):
                    size = os.fstat(st.fd).st_size
            lag = max(0, size - st.wm.position)
            lags[st.path] = lags.get(st.path, 0) + lag
        return lags

    def checkpoint_age(self) -> float:
        return 0.0 if not self.store.dirty else max(0.0, time.time() - self._synced_at)


def _lag_samples(sources: list[FileSource]) -> Iterator[tuple[dict[str, str], float]]:
    for src in sources:
        for path, lag in src.lag_by_path().items():
            yield {"component": src.name, "path": path}, float(lag)


def _age_samples(sources: list[FileSource]) -> Iterator[tuple[dict[str, str], float]]:
    for src in sources:
        yield {"component": src.name}, src.checkpoint_age()


def _open_samples(sources: list[FileSource]) -> Iterator[tuple[dict[str, str], float]]:
    for src in sources:
        yield {"component": src.name}, float(src.open_files)


def _cut_by_bytes(lines: list[RawLine], i: int, j: int, max_bytes: int) -> int:
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


def _line_start_before(fd: int, size: int) -> int:
    """Offset just past the last newline before `size` (start_at: end starts on a line boundary)."""
    start = max(0, size - _TAIL_LOOKBACK)
    data = os.pread(fd, size - start, start)
    nl = data.rfind(b"\n")
    return start + nl + 1 if nl >= 0 else size


def _same_file(path: str, ident: tuple[int, int]) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == ident


@register("source", "file", FileSourceConfig)
def build(name: str, config: FileSourceConfig, ctx: BuildContext) -> FileSource:
    return FileSource(name, config, ctx.data_dir, ctx.host)
