"""`file` sink: JSON lines, one file per rendered path (`{log_type}`, date codes).

Each send groups events by path, appends, and fsyncs (by default) before the
batch settles, so a settled batch is on disk. Each path has its own outcome:
one that cannot be written now (a missing permission, a full disk, a folder
that is a file) holds back only its events, which are retried; a name the
file system can never take (too long, a NUL byte) dead-letters its events.
Only when no path at all could be written does the send raise.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections import OrderedDict
from typing import Any, Literal

from pydantic import Field

from pipeline.config import SinkConfig
from pipeline.context import BuildContext
from pipeline.errors import ConfigError, TransientError
from pipeline.registry import register
from pipeline.sink import Outcome
from pipeline.template import Template
from sinks.encoding import ENCODE_ERRORS, json_line, unencodable


class FileSinkConfig(SinkConfig):
    type: Literal["file"]
    path: str = Field(
        description="Output path template: `{field}` from the event, `%Y %m %d %H` from its @timestamp. "
        "A field value never adds a folder: `/` and NUL in it become `_`, and so does a value `.` or `..`.",
        examples=["out/{log_type}-%Y-%m-%d.jsonl"],
    )
    fsync: bool = Field(default=True, description="fsync each write before settling (durable delivery).")
    max_open_files: int = Field(default=64, gt=0, description="File handles kept open (LRU).")


class FileSink:
    def __init__(self, name: str, config: FileSinkConfig) -> None:
        self.name = name
        self.config = config
        try:
            self.template = Template(config.path, missing="unknown", strict_dates=True, clean=path_segment)
        except ValueError as exc:
            raise ConfigError([f"path: {exc}"]) from None
        self._fds: OrderedDict[str, int] = OrderedDict()

    async def start(self) -> None:
        return None

    async def healthcheck(self) -> None:
        return None

    async def send(self, events: list[dict[str, Any]]) -> Outcome:
        return await asyncio.to_thread(self._write, events)

    def _write(self, events: list[dict[str, Any]]) -> Outcome:
        groups: dict[str, tuple[list[int], list[bytes]]] = {}
        rejected: list[tuple[int, str]] = []
        render = self.template.render
        constant = self.template.constant
        for i, event in enumerate(events):
            try:
                line = json_line(event)
            except ENCODE_ERRORS as exc:  # the same every time: dead-letter it, never retry the send
                rejected.append((i, unencodable(exc)))
                continue
            group = groups.setdefault(constant if constant is not None else render(event), ([], []))
            group[0].append(i)
            group[1].append(line)
        retry: list[int] = []
        failures: list[tuple[str, OSError | ValueError]] = []
        written = 0
        for path, (indices, lines) in groups.items():
            try:
                self._append(path, b"".join(lines))
            except (OSError, ValueError) as exc:
                self._forget(path)
                if _permanent(exc):
                    reason = f"cannot write {path!r}: {_describe(exc)}"
                    rejected.extend((i, reason) for i in indices)
                else:
                    retry.extend(indices)
                    failures.append((path, exc))
                continue
            written += len(indices)
        if failures and not written and not rejected:
            first_path, first = failures[0]
            raise TransientError(f"cannot write {first_path}: {_describe(first)}")
        reason = _retry_reason(failures[0][1]) if failures else "item"
        return Outcome(retry=sorted(retry), rejected=rejected, retry_reason=reason)

    def _append(self, path: str, data: bytes) -> None:
        fd = self._fd(path)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if self.config.fsync:
            os.fsync(fd)

    def _forget(self, path: str) -> None:
        """Close a path's handle after a failure: the retry opens it again (the folder may be new)."""
        fd = self._fds.pop(path, None)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._fds[path] = fd
        if len(self._fds) > self.config.max_open_files:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    async def aclose(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def path_segment(value: str) -> str:
    """An event's field value inside a path: never a separator, a NUL, or a walk up the tree.

    Field values come from log lines: `{log_type}` = "../../etc/cron.d/x" must not
    choose where the sink writes."""
    value = value.replace("/", "_").replace("\x00", "_")
    return "_" if value in (".", "..") else value


def _permanent(exc: OSError | ValueError) -> bool:
    """A path no retry can write: its name is refused as such (a ValueError: a NUL byte, a lone surrogate)."""
    return isinstance(exc, ValueError) or exc.errno == errno.ENAMETOOLONG


def _describe(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({errno.errorcode.get(exc.errno or 0, exc.errno)})"
    return str(exc)


def _retry_reason(exc: OSError | ValueError) -> str:
    """The retry metric's label: the errno name (ENOSPC, EACCES, ...)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, "write")
    return "write"


@register("sink", "file", FileSinkConfig)
def build(name: str, config: FileSinkConfig, ctx: BuildContext) -> FileSink:
    return FileSink(name, config)
