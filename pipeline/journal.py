"""Append-only journal: one JSON record per line, each append durable before it returns.

The checkpoint store (`pipeline/checkpoint.py`) appends what changed since its
last write here instead of rewriting its whole state, and folds the journal
into a full snapshot now and then (compaction), after which the journal is
emptied.

A record is one line `{"seq": N, ...}\\n`, written with `O_APPEND` and made
durable with fdatasync before `append` returns. A crash (SIGKILL, power loss)
can leave the last record torn: cut short, or followed by zeros where the file
grew but the data never reached the disk. `replay` returns the records up to
the first line that is not a whole JSON object with an integer `seq`. The owner
writes a snapshot and empties the journal (`truncate`) before it appends again,
so a record never follows a torn one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import orjson

from pipeline.atomicfile import FILE_MODE, ensure_dir


class Journal:
    """The journal file of one store; blocking calls (run them in a thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0  # bytes of whole records in the file
        self._fd: int | None = None

    def replay(self) -> tuple[list[dict[str, Any]], int]:
        """The whole records in file order, and the file's size (more than `self.size` if torn); reads only."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            self.size = 0
            return [], 0
        records: list[dict[str, Any]] = []
        pos = 0
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            try:
                record = orjson.loads(data[pos:nl])
            except orjson.JSONDecodeError:
                break
            if type(record) is not dict or type(record.get("seq")) is not int:
                break
            records.append(record)
            pos = nl + 1
        self.size = pos
        return records, len(data)

    def append(self, data: bytes) -> None:
        """Append whole records (ending in a newline) and wait until they are on disk."""
        fd = self._open()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fdatasync(fd)
        self.size += len(data)

    def truncate(self, size: int = 0) -> None:
        """Cut the file to `size` bytes (0: emptied after a compaction), durably."""
        if size == 0 and self._fd is None and not self.path.exists():
            self.size = 0
            return
        fd = self._open()
        os.ftruncate(fd, size)
        os.fsync(fd)
        self.size = size

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _open(self) -> int:
        if self._fd is None:
            created = not self.path.exists()
            ensure_dir(self.path.parent)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            if created:  # the new name itself must survive a power cut
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        return self._fd
