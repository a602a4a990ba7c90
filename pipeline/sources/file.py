"""`file` source: tail files by identity, with rotation, truncation and durable checkpoints.

A composition of two parts, as Filebeat splits prospector and harvester:

- the tracker (`tracker.py`) knows the files: discovery, identity, rotation,
  truncation and deletion decisions, which files are open, and the checkpoint
  entries their released ranges advance;
- one reader per open file (`reader.py`) reads chunks, frames lines into
  events (`framing.py`) and emits batches whose receipts release byte ranges
  back to the tracker.

This module runs them: one task reads every open file round-robin, one chunk
per file per turn, so a busy file cannot starve the others; housekeeping
flushes idle multiline records and closes files after `close_inactive`
(emitting their unterminated last line); the globs are rescanned every
`scan_interval` and promptly on filesystem events (watchfiles). The checkpoint
store (`pipeline/checkpoint.py`) is written soon after batches settle, at most
once per `checkpoint_interval` (`pipeline/coalesce.py`): at start-up, what the
first scan found is written before any line is read, the first batch to settle
is saved at once, later ones coalesced; at `aclose()` the whole state is written.

On shutdown (not --once) lines held by a joiner or an unterminated last line
are not emitted: they lie past the checkpoint and are read again after the
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from pipeline.atomicfile import write_in_thread
from pipeline.checkpoint import CheckpointStore
from pipeline.coalesce import Coalescer
from pipeline.context import BuildContext
from pipeline.logs import component_log
from pipeline.metrics import Metrics
from pipeline.registry import register
from pipeline.sources.base import SourceContext
from pipeline.sources.file_config import FileSourceConfig
from pipeline.sources.framing import FramerFactory, Stamp, line_framers
from pipeline.sources.offload import AnyFramer, Remote, RemoteFramer
from pipeline.sources.reader import Emit
from pipeline.sources.tracker import Change, FileState, FileTracker

log = logging.getLogger(__name__)

_HOUSEKEEPING_EVERY = 0.2  # seconds between idle-flush / close checks while files are busy


class FileSource:
    can_acknowledge = True

    def __init__(
        self,
        name: str,
        config: FileSourceConfig,
        data_dir: Path,
        host: str,
        framers: FramerFactory | None = None,
    ) -> None:
        self.name = name
        self.log = component_log(log, name)
        self.config = config
        self.host = host
        self._framers = framers or line_framers(config)
        self.remote: Remote | None = None
        self.store = CheckpointStore(Path(data_dir) / "checkpoints" / f"{name}.json", name, config.checkpoint_retention)
        self.tracker = FileTracker(name, config, self.store, self._make_framer)
        self._emit: Emit | None = None
        self._wake = asyncio.Event()
        self._rescan = asyncio.Event()
        self._stop = asyncio.Event()
        self._ck_lock = asyncio.Lock()
        self._writer = Coalescer(self._write_checkpoint, config.checkpoint_interval, self.log, "writing the checkpoint")
        self._dirty_since: float | None = None  # epoch of the oldest change not yet on disk
        self._loaded = False
        self._next_housekeeping = 0.0

    def _make_framer(self, key: str, path: str) -> AnyFramer:
        if self.remote is not None:
            return RemoteFramer(Stamp(self.host, key, path, self.config.log_type), self.remote)
        return self._framers(self.host, key, path)

    def offload(self, remote: Remote) -> None:
        """Frame, transform and encode this source's lines in worker processes (the topology decides)."""
        self.remote = remote

    # -- lifecycle -----------------------------------------------------------
    @property
    def open_files(self) -> int:
        return len(self.tracker.open)

    async def run(self, ctx: SourceContext) -> None:
        self._emit = ctx.emit
        self.host = ctx.host
        self.store.load()
        self._loaded = True
        self._register_metrics(ctx.metrics)
        self.scan(initial=True)
        await self._save_start()
        self.store.on_change = self._changed
        if ctx.once:
            await self._run_once(ctx)
            return
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._writer.run(), name=f"{self.name}:checkpoint")
                tasks.create_task(self._scan_loop(), name=f"{self.name}:scan")
                tasks.create_task(self._forward_shutdown(ctx), name=f"{self.name}:shutdown")
                if self.config.watch:
                    tasks.create_task(self._watch_loop(), name=f"{self.name}:watch")
                try:
                    await self._read_loop(ctx)
                finally:
                    self._stop.set()
                    self._rescan.set()
                    self._writer.close()  # aclose() writes the final one, after the sinks drained
        finally:
            self._stop.set()

    async def aclose(self) -> None:
        """Close every file and write the final checkpoint (after all sinks drained)."""
        self._stop.set()
        self._writer.close()
        for st in list(self.tracker.open.values()):
            self.tracker.close(st)
        if not self._loaded:
            return
        async with self._ck_lock:
            self.tracker.touch_seen(time.time())
            data = self.store.snapshot()  # a whole snapshot: the journal is empty after a clean stop
            try:
                await write_in_thread(self.store.write, data)
            except BaseException:
                self.store.failed()
                raise
            self._dirty_since = None
            self.store.close()

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

    async def _run_once(self, ctx: SourceContext) -> None:
        """Read every file to its end, flush what is held, emit, return."""
        tracker = self.tracker
        emit = ctx.emit
        while not ctx.shutdown.is_set():
            await self._turn(ctx)
            for st in [s for s in tracker.open.values() if s.reader.at_eof]:
                await st.reader.flush(emit, final=True)
                tracker.close(st)
                if st.deleted:
                    tracker.forget(st, drop_entry=True)
            tracker.open_deferred()
            if not tracker.open and not tracker.deferred:
                return

    async def _turn(self, ctx: SourceContext) -> bool:
        """One chunk from every open file that has data; True if anything was read."""
        self._wake.clear()
        progressed = False
        for st in list(self.tracker.open.values()):
            if ctx.shutdown.is_set():
                break
            if st.fd is None:
                continue
            if await self._service(st, ctx):
                progressed = True
        return progressed

    async def _service(self, st: FileState, ctx: SourceContext) -> bool:
        """Read one chunk of an open file and emit its lines; True if anything happened."""
        reader = st.reader
        try:
            if reader.at_eof:
                # Cheap check before reading: has it grown, shrunk, or gone?
                change = self.tracker.recheck(st)
                if change is Change.NONE:
                    return False
                if change is not Change.GREW:
                    await self._truncated(st, change.value, ctx.emit)
                    return True
                reader.at_eof = False
            data, lines = reader.read()
        except OSError as exc:
            self.log.warning("read failed; closing the file", extra={"path": st.path, "error": str(exc)})
            self.tracker.close(st)
            return False
        if not data:
            return False
        ctx.stats.bytes_in += len(data)
        self.tracker.observed(st)
        if lines:
            await st.reader.emit_lines(lines, b"\r" in data, ctx.emit)
        return True

    async def _truncated(self, st: FileState, why: str, emit: Emit) -> None:
        """The file was rewritten in place: what we read is gone; start over as a new identity."""
        self.log.info("file truncated; reading it again from the start", extra={"path": st.path, "reason": why})
        await st.reader.flush(emit, final=True)
        self.tracker.restart(st)

    # -- housekeeping ----------------------------------------------------------
    async def _housekeeping(self, now: float) -> None:
        emit = self._emit
        assert emit is not None
        tracker = self.tracker
        close_inactive = self.config.close_inactive
        for st in list(tracker.open.values()):
            reader = st.reader
            await reader.flush_idle(now, emit)
            if not reader.at_eof:
                continue
            if st.deleted:
                await reader.flush(emit, final=True)
                tracker.forget(st, drop_entry=True)
            elif now - reader.last_data >= close_inactive:
                await reader.flush(emit, final=True)
                tracker.close(st)
        tracker.open_deferred()

    def _next_deadline(self) -> float | None:
        deadlines = [d for st in self.tracker.open.values() if (d := st.reader.idle_deadline) is not None]
        return min(deadlines) if deadlines else None

    # -- discovery -------------------------------------------------------------
    def scan(self, initial: bool = False) -> None:
        """Rescan the globs now (the scan loop does this every `scan_interval`)."""
        if self.tracker.scan(initial):
            self._wake.set()

    async def _scan_loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rescan.wait(), self.config.scan_interval)
            self._rescan.clear()
            if self._stop.is_set():
                return
            try:
                self.scan()
                now = time.time()
                self.tracker.touch_seen(now)
                self.tracker.prune(now)
            except Exception:
                self.log.exception("scan failed")

    async def _watch_loop(self) -> None:
        from watchfiles import Change as FsChange
        from watchfiles import awatch

        dirs, recursive = self.tracker.discovery.watch_targets()
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
                if any(change != FsChange.modified for change, _ in changes):
                    self._rescan.set()
                self._wake.set()
        except Exception as exc:  # the periodic scan still works without events
            self.log.warning("filesystem events unavailable; relying on rescans", extra={"error": str(exc)})

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
    def _changed(self) -> None:
        # The store changed (a batch settled, a file was found or forgotten): save it soon.
        if self._dirty_since is None:
            self._dirty_since = time.time()
        self._writer.poke()

    async def _save_start(self) -> None:
        # What the first scan found (new files, `start_at: end` positions) is on disk before any
        # line is read; and the writer's first run is then free for the first batch to settle.
        try:
            await self.checkpoint()
        except Exception:
            self.log.exception("writing the checkpoint failed; will retry")
            self._writer.poke()

    async def _write_checkpoint(self) -> bool:
        await self.checkpoint()
        return True

    async def checkpoint(self) -> None:
        """Persist what changed now (the writer does this soon after each change, coalesced)."""
        async with self._ck_lock:
            since, self._dirty_since = self._dirty_since, None
            pending = self.store.prepare()
            if pending is None:
                return
            try:
                await write_in_thread(self.store.commit, pending)
            except BaseException:
                self.store.failed()
                if since is not None and (self._dirty_since is None or since < self._dirty_since):
                    self._dirty_since = since
                raise

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
        """Bytes of each known file not yet released (size minus watermark)."""
        lags: dict[str, int] = {}
        for st in self.tracker.states.values():
            size = st.size
            if st.fd is not None:
                with contextlib.suppress(OSError):
                    size = os.fstat(st.fd).st_size
            lag = max(0, size - st.wm.position)
            lags[st.path] = lags.get(st.path, 0) + lag
        return lags

    def lag(self) -> tuple[str, dict[str, int]]:
        """For /status: bytes behind per file (not yet released to every sink)."""
        return "bytes", self.lag_by_path()

    def backlog_bytes(self) -> int:
        """For --once progress: bytes not read yet, in open files and in files waiting for a slot."""
        total = 0
        known = set()
        for st in self.tracker.states.values():
            known.add(st.path)
            size = st.size
            if st.fd is not None:
                with contextlib.suppress(OSError):
                    size = os.fstat(st.fd).st_size
            total += max(0, size - st.reader.offset)
        for path in self.tracker.deferred:
            if path in known:
                continue  # counted above, from its read offset
            with contextlib.suppress(OSError):
                total += os.stat(path).st_size
        return total

    def checkpoint_age(self) -> float:
        since = self._dirty_since
        return 0.0 if since is None else max(0.0, time.time() - since)


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


@register("source", "file", FileSourceConfig)
def build(name: str, config: FileSourceConfig, ctx: BuildContext) -> FileSource:
    return FileSource(name, config, ctx.data_dir, ctx.host)
