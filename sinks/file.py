"""`file` sink: JSON lines, one file per rendered path (`{log_type}`, date codes).

Each send groups events by path, appends, and fsyncs (by default) before the
batch settles, so a settled batch is on disk. Each path has its own outcome:
one that cannot be written now (a missing permission, a full disk, a folder
that is a file) holds back only its events, which are retried; a name the
file system can never take (too long, a NUL byte) dead-letters its events.
Only when no path at all could be written does the send raise. Files are created with `mode`
(0644 by default: output is meant for other readers; see docs/security.md).
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from pipeline.atomicfile import make_dirs
from pipeline.config import SinkConfig
from pipeline.context import BuildContext
from pipeline.errors import ConfigError, TransientError
from pipeline.event import EncodedEvents, Events, as_list
from pipeline.registry import register
from pipeline.sink import Outcome
from pipeline.template import Template
from sinks.encoding import ENCODE_ERRORS, json_line, unencodable


def _octal_mode(value: Any) -> Any:
    """ "0640" (or YAML's unquoted 0640, read as the octal number 416) -> "0640"."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= 0o777:
            raise ValueError("a mode between 0000 and 0777")
        value = f"{value:04o}"
    if isinstance(value, str):
        if not re.fullmatch(r"0?[0-7]{3}", value.strip()):
            raise ValueError('an octal mode such as "0640"')
        value = f"{int(value.strip(), 8):04o}"
        if int(value, 8) & 0o002:
            raise ValueError("world-writable output files are refused (drop the o+w bit)")
    return value


FileMode = Annotated[str, BeforeValidator(_octal_mode)]


class FileSinkConfig(SinkConfig):
    type: Literal["file"]
    path: str = Field(
        description="Output path template: `{field}` from the event, `%Y %m %d %H` from its @timestamp. "
        "A field value never adds a folder: `/` and NUL in it become `_`, and so does a value `.` or `..`.",
        examples=["out/{log_type}-%Y-%m-%d.jsonl"],
    )
    fsync: bool = Field(default=True, description="fsync each write before settling (durable delivery).")
    max_open_files: int = Field(default=64, gt=0, description="File handles kept open (LRU).")
    mode: FileMode = Field(
        default="0644",
        description="Permissions of the files created (octal). Output is user data "
        "meant for other readers, hence 0644 by default; the umask can only remove bits. Folders created for it "
        "get the same bits plus x where r is set (0644 -> 0755, 0640 -> 0750). World-writable modes are refused.",
        examples=["0644", "0640", "0600"],
    )


class FileSink:
    def __init__(self, name: str, config: FileSinkConfig) -> None:
        self.name = name
        self.config = config
        try:
            self.template = Template(config.path, missing="unknown", strict_dates=True, clean=path_segment)
        except ValueError as exc:
            raise ConfigError([f"path: {exc}"]) from None
        # Encoded JSON lines (from the batch path) are written as they came to one path; a path per
        # event needs each event's fields, so those are given decoded.
        self.accepts_encoded = self.template.constant is not None
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._mode = mode = int(config.mode, 8)
        self._dir_mode = mode | ((mode & 0o444) >> 2)  # x where r: 0644 -> 0755, 0640 -> 0750

    async def start(self) -> None:
        return None

    async def healthcheck(self) -> None:
        return None

    async def send(self, events: Events) -> Outcome:
        constant = self.template.constant
        if isinstance(events, EncodedEvents) and constant is not None:
            # Encoded by a worker: write the bytes as they are (no per-event work here at all).
            try:
                await asyncio.to_thread(self._append, constant, events.data)
            except (OSError, ValueError) as exc:
                self._forget(constant)
                if _permanent(exc):
                    return Outcome.reject_all(len(events), f"cannot write {constant!r}: {_describe(exc)}")
                raise TransientError(f"cannot write {constant}: {_describe(exc)}") from None
            return Outcome.delivered()
        return await asyncio.to_thread(self._write, as_list(events))

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
            make_dirs(Path(parent), self._dir_mode)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self._mode)
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
