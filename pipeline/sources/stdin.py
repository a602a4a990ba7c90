"""`stdin` source: one event per line of standard input.

Standard input cannot be replayed, so at-least-once ends at this process
(`can_acknowledge = False`): receipts are settled but release nothing.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
import typing
from typing import Literal

from pydantic import Field

from parsers.dates import rfc3339_ms
from parsers.types import INVALID_UTF8, TRUNCATED
from pipeline.acks import Receipt
from pipeline.config import SourceConfig
from pipeline.context import BuildContext
from pipeline.event import Batch, Event
from pipeline.registry import register
from pipeline.sources.base import SourceContext
from pipeline.sources.lines import LineSplitter, RawLine
from pipeline.units import ByteSize


class StdinSourceConfig(SourceConfig):
    type: Literal["stdin"]
    batch_max_events: int = Field(default=1000, gt=0, description="Lines per emitted batch at most.")
    max_line_bytes: ByteSize = Field(
        default=1024 * 1024, gt=0, description="Longer lines are cut and tagged `_truncated`."
    )


class StdinSource:
    can_acknowledge = False

    def __init__(self, name: str, config: StdinSourceConfig, stream: io.BufferedReader | None = None) -> None:
        self.name = name
        self.config = config
        self._stream = stream

    async def run(self, ctx: SourceContext) -> None:
        stream = self._stream or typing.cast(io.BufferedReader, sys.stdin.buffer)
        cfg = self.config
        loop = asyncio.get_running_loop()
        splitter = LineSplitter(cfg.max_line_bytes)
        pending: list[RawLine] = []
        while not ctx.shutdown.is_set():
            # read1 returns what is available (one read at most), so a slow writer
            # still gets its lines shipped promptly; it runs in a worker thread
            # because stdin may be a file, a pipe or a tty.
            chunk = await loop.run_in_executor(None, stream.read1, 256 * 1024)
            if not chunk:
                break
            ctx.stats.bytes_in += len(chunk)
            pending.extend(splitter.feed(chunk))
            while len(pending) >= cfg.batch_max_events:
                await self._emit(ctx, pending[: cfg.batch_max_events])
                del pending[: cfg.batch_max_events]
            if pending:
                await self._emit(ctx, pending)
                pending = []
        last = splitter.flush()
        if last is not None:
            await self._emit(ctx, [last])

    async def _emit(self, ctx: SourceContext, lines: list[RawLine]) -> None:
        now = rfc3339_ms(time.time())
        log_type = self.config.log_type
        events = [_to_event(raw, truncated, now, ctx.host, log_type) for raw, _, _, truncated in lines]
        await ctx.emit(Batch(events, Receipt(None)))

    async def aclose(self) -> None:
        return None


def _to_event(raw: bytes, truncated: bool, now: str, host: str, log_type: str | None) -> Event:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
        tags = None
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        tags = [INVALID_UTF8]
    event: Event = {"@timestamp": now, "message": text, "host": host}
    if log_type:
        event["log_type"] = log_type
    if truncated:
        tags = [*(tags or []), TRUNCATED]
    if tags:
        event["tags"] = tags
    return event


@register("source", "stdin", StdinSourceConfig)
def build(name: str, config: StdinSourceConfig, ctx: BuildContext) -> StdinSource:
    return StdinSource(name, config)
