"""File checkpoint store: per file identity, the released offset; atomic JSON on disk.

One JSON file per source: `data_dir/checkpoints/<source>.json`:

    {"version": 1, "source": "app", "written": 1700000000.123,
     "files": [{"key": "2049:1234:9f..", "dev": 2049, "ino": 1234, "fp_len": 1024,
                "fp": "9f..", "offset": 52011, "path": "/var/log/app.log",
                "updated": 1700000000.1, "seen": 1700000000.1}]}

`offset` is the watermark: every byte before it belongs to a released batch.
Updates land in memory (the receipt callbacks set `entry.offset`); `write()`
persists a snapshot atomically:

    write <file>.tmp, fsync it; rename <file> -> <file>.bak; rename <file>.tmp -> <file>;
    fsync the directory.

So `<file>.bak` is always the previous good state. Loading tolerates what a
crash (SIGKILL, power loss) can leave behind:

- a leftover `<file>.tmp`: ignored and removed (it may be partial; the state it
  would add is at most one interval newer, and replaying that is a duplicate,
  never a loss);
- `<file>` missing (crash between the two renames), truncated or not JSON:
  fall back to `<file>.bak`;
- an unknown `version` (a newer build wrote it): fall back to `<file>.bak`; if
  there is no valid `.bak` either, refuse with `CheckpointError` rather than
  silently re-reading every file (move the file away to start over);
- nothing valid and nothing unknown: start empty (files are read per `start_at`).

Entries not seen at any scanned path for `retention` seconds are pruned.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.atomicfile import tmp_path, write_atomic
from pipeline.sources.fileid import Fingerprint

log = logging.getLogger(__name__)

VERSION = 1


class CheckpointError(Exception):
    """The checkpoint cannot be used and must not be silently ignored."""


@dataclass(slots=True)
class Entry:
    """The persisted state of one file identity."""

    key: str
    dev: int
    ino: int
    fp_len: int
    fp: str
    offset: int
    path: str
    updated: float  # epoch of the last offset change
    seen: float  # epoch the identity was last seen at a scanned path (or open)

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self.fp_len, self.fp)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "dev": self.dev,
            "ino": self.ino,
            "fp_len": self.fp_len,
            "fp": self.fp,
            "offset": self.offset,
            "path": self.path,
            "updated": self.updated,
            "seen": self.seen,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Entry:
        if not isinstance(obj, dict):
            raise ValueError("entry is not an object")
        try:
            entry = cls(
                str(obj["key"]),
                int(obj["dev"]),
                int(obj["ino"]),
                int(obj["fp_len"]),
                str(obj["fp"]),
                int(obj["offset"]),
                str(obj.get("path", "")),
                float(obj.get("updated", 0.0)),
                float(obj.get("seen", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid entry: {exc}") from None
        if entry.offset < 0 or entry.fp_len < 0:
            raise ValueError("invalid entry: negative offset or fingerprint length")
        return entry


class CheckpointStore:
    """In-memory entries by key, with an inode index and atomic persistence."""

    def __init__(self, path: Path, source: str, retention: float = 86400.0) -> None:
        self.path = Path(path)
        self.source = source
        self.retention = retention
        self.entries: dict[str, Entry] = {}
        self._by_inode: dict[tuple[int, int], list[Entry]] = {}
        self.dirty = False
        self.last_write: float | None = None  # epoch of the last successful write
        self.loaded_from: str | None = None  # "main", "bak" or None (started empty)

    @property
    def tmp_path(self) -> Path:
        return tmp_path(self.path)

    @property
    def bak_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    # -- entries -----------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def by_inode(self, dev: int, ino: int) -> list[Entry]:
        return list(self._by_inode.get((dev, ino), ()))

    def put(self, entry: Entry) -> None:
        old = self.entries.get(entry.key)
        if old is not None:
            self._unindex(old)
        self.entries[entry.key] = entry
        self._by_inode.setdefault((entry.dev, entry.ino), []).append(entry)
        self.dirty = True

    def remove(self, key: str) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self._unindex(entry)
            self.dirty = True

    def _unindex(self, entry: Entry) -> None:
        bucket = self._by_inode.get((entry.dev, entry.ino))
        if bucket is None:
            return
        with contextlib.suppress(ValueError):
            bucket.remove(entry)
        if not bucket:
            del self._by_inode[(entry.dev, entry.ino)]

    def prune(self, now: float, keep: set[str] | None = None) -> int:
        """Drop entries not seen for `retention` seconds (except keys in `keep`)."""
        cutoff = now - self.retention
        stale = [k for k, e in self.entries.items() if e.seen < cutoff and (keep is None or k not in keep)]
        for key in stale:
            self.remove(key)
        return len(stale)

    # -- persistence -------------------------------------------------------
    def load(self) -> None:
        """Load the last valid state (see the module docstring for the crash cases)."""
        tmp = self.tmp_path
        if tmp.exists():
            log.info("removing leftover checkpoint temp file", extra={"path": str(tmp)})
            with contextlib.suppress(OSError):
                tmp.unlink()
        unknown: list[str] = []
        for label, path in (("main", self.path), ("bak", self.bak_path)):
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot read checkpoint", extra={"path": str(path), "error": str(exc)})
                continue
            try:
                entries = self._parse(raw)
            except _UnknownVersion as exc:
                unknown.append(f"{path}: {exc}")
                log.error(
                    "checkpoint has an unknown version; trying the backup", extra={"path": str(path), "error": str(exc)}
                )
                continue
            except ValueError as exc:
                log.warning("checkpoint is corrupt; trying the backup", extra={"path": str(path), "error": str(exc)})
                continue
            self.entries.clear()
            self._by_inode.clear()
            for entry in entries:
                self.put(entry)
            self.dirty = False
            self.loaded_from = label
            if label == "bak":
                log.warning("checkpoint restored from backup", extra={"path": str(path), "files": len(entries)})
            return
        if unknown:
            raise CheckpointError(
                f"{unknown[0]}; this build reads checkpoint version {VERSION} and found no valid backup. "
                f"Move {self.path} away to start over (files are then read per start_at)."
            )
        self.loaded_from = None

    @staticmethod
    def _parse(raw: bytes) -> list[Entry]:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValueError("top level is not an object")
        version = doc.get("version")
        if version != VERSION:
            raise _UnknownVersion(f"version {version!r}")
        files = doc.get("files")
        if not isinstance(files, list):
            raise ValueError("`files` is not a list")
        return [Entry.from_json(obj) for obj in files]

    def snapshot(self) -> bytes:
        """Serialise the current state (on the event loop; cheap) and clear `dirty`."""
        self.dirty = False
        doc = {
            "version": VERSION,
            "source": self.source,
            "written": time.time(),
            "files": [e.to_json() for e in self.entries.values()],
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    def write(self, data: bytes) -> None:
        """Persist a snapshot atomically, keeping the previous one as `.bak` (blocking: run it in a thread)."""
        write_atomic(self.path, data, backup=self.bak_path)
        self.last_write = time.time()

    def flush(self) -> None:
        """Snapshot and write now (blocking)."""
        self.write(self.snapshot())


class _UnknownVersion(ValueError):
    pass
