"""`file` sink: JSON lines, one file per rendered path (`{log_type}`, date codes).

Each send groups events by path, appends, and fsyncs (by default) before the
batch settles, so a settled batch is on disk. Files are created with `mode`
(0644 by default: output is meant for other readers; see docs/security.md).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from pipeline.atomicfile import make_dirs
from pipeline.config import SinkConfig
from pipeline.context import BuildContext
from pipeline.errors import ConfigError
from pipeline.registry import register
from pipeline.sink import Outcome
from pipeline.template import Template
from sinks.encoding import json_line


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
        description="Output path template: `{field}` from the event, `%Y %m %d %H` from its @timestamp.",
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
            self.template = Template(config.path, missing="unknown", strict_dates=True)
        except ValueError as exc:
            raise ConfigError([f"path: {exc}"]) from None
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._mode = mode = int(config.mode, 8)
        self._dir_mode = mode | ((mode & 0o444) >> 2)  # x where r: 0644 -> 0755, 0640 -> 0750

    async def start(self) -> None:
        return None

    async def healthcheck(self) -> None:
        return None

    async def send(self, events: list[dict[str, Any]]) -> Outcome:
        await asyncio.to_thread(self._write, events)
        return Outcome.delivered()

    def _write(self, events: list[dict[str, Any]]) -> None:
        groups: dict[str, list[bytes]] = {}
        render = self.template.render
        if self.template.constant is not None:
            groups[self.template.constant] = [json_line(e) for e in events]
        else:
            for event in events:
                groups.setdefault(render(event), []).append(json_line(event))
        for path, lines in groups.items():
            fd = self._fd(path)
            data = b"".join(lines)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.config.fsync:
                os.fsync(fd)

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


@register("sink", "file", FileSinkConfig)
def build(name: str, config: FileSinkConfig, ctx: BuildContext) -> FileSink:
    return FileSink(name, config)
