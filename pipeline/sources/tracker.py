"""File tracker: which files a file/container source knows, their identity, and their checkpoint state.

The prospector half of the file source (`reader.py` is the harvester half):
it decides, and never reads lines.

- discovery: include/exclude globs (`discovery.py`), rescanned by the source. A
  never-seen file found by the first scan starts at `start_at`; files that
  appear later are read from 0 (they are new: a rotation's fresh file must not
  lose its head).
- identity (`fileid.py`): device + inode + fingerprint of the first bytes. A
  known identity resumes from its checkpoint entry; a reused inode is a new file.
- rotation by rename: the open file is kept (by descriptor) and read to its
  end; the new file at the path is a new identity read from 0.
- copytruncate: a size below the read offset, or changed first bytes, means the
  file was rewritten: `recheck` says so and `restart` makes it a new identity
  read again from 0 (releases of the old content are ignored: `gen`).
- deletion: an open deleted file is read to its end, then forgotten.
- symlinks are followed; the identity is the target's.
- more matching files than `max_open_files`: the rest wait; idle files at
  their end (nothing held) are closed to make room.

Checkpoint state: the `CheckpointStore` entries of the known identities. A
released range advances the identity's `Watermark`; its contiguous position
becomes the entry's offset (in memory; the source persists the store).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import stat
import time
from collections.abc import Callable
from functools import partial

from pipeline.acks import Status
from pipeline.checkpoint import CheckpointStore, Entry
from pipeline.logs import component_log
from pipeline.sources.discovery import Discovery
from pipeline.sources.file_config import FileSourceConfig
from pipeline.sources.fileid import Fingerprint, fingerprint, identity_key, matches
from pipeline.sources.offload import AnyFramer
from pipeline.sources.reader import FileReader
from pipeline.watermark import Watermark

log = logging.getLogger(__name__)

# How long to look back for a line start when a new file starts at its end.
_TAIL_LOOKBACK = 64 * 1024

Ident = tuple[int, int]  # (st_dev, st_ino)
# make_framer(key, path): the framer of a newly identified file.
MakeFramer = Callable[[str, str], AnyFramer]


class Change(enum.Enum):
    """What `recheck` found at the end of an open file."""

    NONE = "none"  # nothing new
    GREW = "grew"  # new bytes to read
    SHRANK = "size below the read offset"
    REWRITTEN = "first bytes changed"
    SAME_SIZE = "rewritten to the same size"


class FileState:
    """One file identity known to the source (open, or closed and waiting to grow)."""

    __slots__ = ("_release", "deleted", "dev", "entry", "fd", "gen", "ino", "mtime_ns", "path", "reader", "size", "wm")

    def __init__(
        self,
        dev: int,
        ino: int,
        path: str,
        fd: int,
        entry: Entry | None,
        config: FileSourceConfig,
        release: Callable[[FileState, int, int, int, Status], None],
    ) -> None:
        self.dev = dev
        self.ino = ino
        self.path = path
        self.fd: int | None = fd
        self.entry = entry
        offset = entry.offset if entry is not None else 0
        self.gen = 0  # bumped on truncation: late releases of the old content are ignored
        self._release = release
        self.reader = FileReader(fd, offset, config, partial(release, self, self.gen))
        self.wm = Watermark(offset)  # released, contiguous
        self.deleted = False
        self.size = offset
        self.mtime_ns = 0  # at the last end-of-file check

    @property
    def ident(self) -> Ident:
        return (self.dev, self.ino)

    def restart(self, config: FileSourceConfig) -> None:
        """Start over at 0 as a new (not yet identified) generation of this inode."""
        fd = self.fd
        assert fd is not None
        self.gen += 1
        self.entry = None
        last_data = self.reader.last_data
        self.reader = FileReader(fd, 0, config, partial(self._release, self, self.gen))
        self.reader.last_data = last_data
        self.wm = Watermark(0)
        self.size = 0


class FileTracker:
    """The identities a source knows, which are open, and their checkpoint entries."""

    def __init__(self, name: str, config: FileSourceConfig, store: CheckpointStore, make_framer: MakeFramer) -> None:
        self.name = name
        self.log = component_log(log, name)
        self.config = config
        self.store = store
        self.discovery = Discovery(config.include, config.exclude)
        self._make_framer = make_framer
        self.states: dict[Ident, FileState] = {}
        self.open: dict[Ident, FileState] = {}
        self.deferred: dict[str, bool] = {}  # path -> found by the initial scan; waiting for a slot
        self._retired: set[str] = set()  # keys of identities ended by truncation (never reused)
        self._unreadable: set[str] = set()  # paths we could not open (warned once)

    # -- releases ----------------------------------------------------------------
    def release(self, st: FileState, gen: int, start: int, end: int, status: Status) -> None:
        # Rejected events went to the dead-letter queue: settled, so the range is released too.
        if st.gen != gen:
            return  # the file was truncated since: these offsets belong to the old content
        pos = st.wm.release(start, end)
        entry = st.entry
        if entry is not None and pos != entry.offset:
            entry.offset = pos
            entry.updated = time.time()
            self.store.touch(entry)

    # -- what an open file did -----------------------------------------------------
    def recheck(self, st: FileState) -> Change:
        """At the end of an open file: has it grown, shrunk, been rewritten or deleted? (raises OSError)"""
        fd = st.fd
        assert fd is not None
        offset = st.reader.offset
        info = os.fstat(fd)
        size = info.st_size
        touched = info.st_mtime_ns != st.mtime_ns
        st.mtime_ns = info.st_mtime_ns
        if size == offset:
            st.size = size
            if info.st_nlink == 0:
                st.deleted = True
            # Same size but modified: appended bytes we already read, or rewritten in
            # place to exactly our offset (copytruncate + the same amount written).
            if not touched or st.entry is None or matches(fd, st.entry.fingerprint):
                return Change.NONE
            return Change.SAME_SIZE
        if size < offset:
            return Change.SHRANK
        if st.entry is not None and not matches(fd, st.entry.fingerprint):
            return Change.REWRITTEN
        return Change.GREW

    def restart(self, st: FileState) -> None:
        """The file was rewritten in place: retire its identity and read it again from 0."""
        if st.entry is not None:
            self._retired.add(st.entry.key)
            self.store.remove(st.entry.key)
        st.restart(self.config)

    def observed(self, st: FileState) -> None:
        """New bytes were read: track the size, identify a restarted file, grow a short fingerprint."""
        reader = st.reader
        if reader.offset > st.size:
            st.size = reader.offset
        entry = st.entry
        fd = st.fd
        assert fd is not None
        limit = self.config.fingerprint_bytes
        if entry is None:
            self._identify(st, fingerprint(fd, limit))
        elif entry.fp_len < limit and reader.offset > entry.fp_len:
            self._grow_fingerprint(entry, fingerprint(fd, limit))

    def _grow_fingerprint(self, entry: Entry, fp: Fingerprint) -> None:
        if fp.length > entry.fp_len:
            entry.fp_len = fp.length
            entry.fp = fp.digest
            self.store.touch(entry)

    def _identify(self, st: FileState, fp: Fingerprint) -> None:
        key = self._unique_key(identity_key(st.dev, st.ino, fp))
        now = time.time()
        # From the released position, not the read one: what was just read is not delivered yet.
        entry = Entry(key, st.dev, st.ino, fp.length, fp.digest, st.wm.position, st.path, now, now)
        self.store.put(entry)
        st.entry = entry
        st.reader.framer = self._make_framer(key, st.path)

    def _unique_key(self, key: str) -> str:
        if key not in self._retired and key not in self.store.entries:
            return key
        n = 1
        while f"{key}~{n}" in self._retired or f"{key}~{n}" in self.store.entries:
            n += 1
        return f"{key}~{n}"

    # -- discovery -------------------------------------------------------------------
    def scan(self, initial: bool = False) -> bool:
        """Match the globs; queue new and grown files, forget vanished ones. True if files matched."""
        now = time.time()
        cutoff = now - self.config.ignore_older if self.config.ignore_older else None
        found: set[Ident] = set()
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
            st = self.states.get(ident)
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
        for ident, st in list(self.states.items()):
            if st.fd is None and ident not in found and st.wm.position >= st.reader.ack_start:
                self.forget(st, drop_entry=False)
        self.open_deferred()
        return bool(self.deferred or found)

    def _renamed(self, st: FileState, path: str) -> None:
        st.path = path
        if st.entry is not None:
            st.entry.path = path
            self.store.touch(st.entry)
        if st.reader.framer is not None:
            st.reader.framer.stamp.path = path

    def _want_open(self, path: str, initial: bool) -> None:
        if path not in self.deferred:
            self.deferred[path] = initial

    def open_deferred(self) -> None:
        """Open waiting files while there are slots (closing idle ones to make room)."""
        limit = self.config.max_open_files
        if self.deferred and len(self.open) >= limit:
            self._evict_idle(len(self.deferred))
        while self.deferred and len(self.open) < limit:
            path = next(iter(self.deferred))
            initial = self.deferred.pop(path)
            self._open_path(path, initial)

    def _evict_idle(self, wanted: int) -> None:
        """Close open files at their end with nothing held, least recently active first."""
        idle = [st for st in self.open.values() if st.reader.idle]
        idle.sort(key=lambda s: s.reader.last_data)
        for st in idle[:wanted]:
            self.close(st)

    def _open_path(self, path: str, initial: bool) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # gone between the scan and now
        except OSError as exc:
            if path not in self._unreadable:
                self._unreadable.add(path)
                self.log.warning("cannot open file", extra={"path": path, "error": str(exc)})
            return
        self._unreadable.discard(path)
        try:
            self._adopt(path, fd, initial)
        except OSError as exc:
            self.log.warning("cannot read file", extra={"path": path, "error": str(exc)})
            os.close(fd)
        except BaseException:
            os.close(fd)
            raise

    def _adopt(self, path: str, fd: int, initial: bool) -> None:
        info = os.fstat(fd)
        ident = (info.st_dev, info.st_ino)
        st = self.states.get(ident)
        if st is not None:
            if st.fd is not None:
                os.close(fd)  # already open (under another path)
                return
            entry = st.entry
            if entry is not None and info.st_size >= st.reader.offset and matches(fd, entry.fingerprint):
                # The same file, closed while idle: reopen where we were.
                st.fd = fd
                st.reader.fd = fd
                st.reader.at_eof = False
                st.reader.last_data = time.monotonic()
                st.deleted = False
                if st.path != path:
                    self._renamed(st, path)
                self.open[ident] = st
                return
            # Rewritten or its inode reused since we closed it: that identity is gone.
            self.forget(st, drop_entry=True)
        if info.st_size == 0:
            os.close(fd)
            return
        entry = self._entry_for(path, fd, ident, info.st_size, initial)
        st = FileState(ident[0], ident[1], path, fd, entry, self.config, self.release)
        st.size = info.st_size
        st.reader.framer = self._make_framer(entry.key, path)
        self.states[ident] = st
        self.open[ident] = st

    def _entry_for(self, path: str, fd: int, ident: Ident, size: int, initial: bool) -> Entry:
        """The checkpoint entry of an opened file: its own if the store has it, else a new one."""
        fp = fingerprint(fd, self.config.fingerprint_bytes)
        entry = None
        for cand in self.store.by_inode(*ident):
            if entry is None and matches(fd, cand.fingerprint):
                entry = cand
            else:
                self.store.remove(cand.key)  # inode reused (or file rewritten): the old file is gone
        if entry is not None and size < entry.offset:
            self.log.info(
                "file shorter than its checkpoint (truncated); reading it from the start", extra={"path": path}
            )
            self._retired.add(entry.key)
            self.store.remove(entry.key)
            entry = None
        now = time.time()
        if entry is None:
            offset = 0
            if initial and self.config.start_at == "end":
                offset = _line_start_before(fd, size)
            key = self._unique_key(identity_key(ident[0], ident[1], fp))
            entry = Entry(key, ident[0], ident[1], fp.length, fp.digest, offset, path, now, now)
            self.store.put(entry)
            return entry
        entry.path = path
        entry.seen = now
        self.store.touch(entry)
        self._grow_fingerprint(entry, fp)
        return entry

    def close(self, st: FileState) -> None:
        """Close the descriptor; the identity stays known (reopened when it grows)."""
        fd = st.fd
        if fd is None:
            return
        st.fd = None
        self.open.pop(st.ident, None)
        with contextlib.suppress(OSError):
            os.close(fd)

    def forget(self, st: FileState, drop_entry: bool) -> None:
        """Close and stop tracking; with `drop_entry`, its checkpoint entry goes too (deleted, rewritten)."""
        self.close(st)
        if self.states.get(st.ident) is st:
            del self.states[st.ident]
        if drop_entry and st.entry is not None:
            self._retired.add(st.entry.key)
            self.store.remove(st.entry.key)

    # -- checkpoint state --------------------------------------------------------------
    def touch_seen(self, now: float) -> None:
        """Open files are seen by definition (a rotated file may match no glob any more)."""
        for st in self.open.values():
            if st.entry is not None:
                st.entry.seen = now

    def prune(self, now: float) -> None:
        """Drop entries not seen for `checkpoint_retention`, except those of known identities."""
        keep = {st.entry.key for st in self.states.values() if st.entry is not None}
        self.store.prune(now, keep)


def _line_start_before(fd: int, size: int) -> int:
    """Offset just past the last newline before `size` (start_at: end starts on a line boundary)."""
    start = max(0, size - _TAIL_LOOKBACK)
    data = os.pread(fd, size - start, start)
    nl = data.rfind(b"\n")
    return start + nl + 1 if nl >= 0 else size


def _same_file(path: str, ident: Ident) -> bool:
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == ident
