"""`file` sink: JSON lines, one file per rendered path (`{log_type}`, date codes).

Each send groups events by path, appends, and fsyncs (by default) before the
batch settles, so a settled batch is on disk.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from typing import Any, Literal

from pydantic import Field

from pipeline.config import SinkConfig
from pipeline.context import BuildContext
from pipeline.errors import ConfigError
from pipeline.registry import register
from pipeline.sink import Outcome
from sinks.encoding import ENCODE_ERRORS, json_line, unencodable
from sinks.template import Template


class FileSinkConfig(SinkConfig):
    type: Literal["file"]
    path: str = Field(
        description="Output path template: `{field}` from the event, `%Y %m %d %H` from its @timestamp.",
        examples=["out/{log_type}-%Y-%m-%d.jsonl"],
    )
    fsync: bool = Field(default=True, description="fsync each write before settling (durable delivery).")
    max_open_files: int = Field(default=64, gt=0, description="File handles kept open (LRU).")


class FileSink:
    def __init__(self, name: str, config: FileSinkConfig) -> None:
        self.name = name
        self.config = config
        try:
            self.template = Template(config.path)
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
        groups: dict[str, list[bytes]] = {}
        rejected: list[tuple[int, str]] = []
        render = self.template.render
        constant = self.template.source if self.template.is_constant else None
        for i, event in enumerate(events):
            try:
                line = json_line(event)
            except ENCODE_ERRORS as exc:  # the same every time: dead-letter it, never retry the send
                rejected.append((i, unencodable(exc)))
                continue
            groups.setdefault(constant if constant is not None else render(event), []).append(line)
        for path, lines in groups.items():
            fd = self._fd(path)
            data = b"".join(lines)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if self.config.fsync:
                os.fsync(fd)
        return Outcome(rejected=rejected)

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


@register("sink", "file", FileSinkConfig)
def build(name: str, config: FileSinkConfig, ctx: BuildContext) -> FileSink:
    return FileSink(name, config)
