"""The Source protocol and the context the runtime gives each source."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.event import Batch
from pipeline.metrics import ComponentStats, Metrics


@dataclass
class SourceContext:
    name: str
    host: str
    data_dir: Path
    once: bool  # read every input to its end, then return
    shutdown: asyncio.Event  # set when the source must stop reading and return
    stats: ComponentStats
    metrics: Metrics
    _emit: Callable[[Batch], Awaitable[None]]

    async def emit(self, batch: Batch) -> None:
        """Hand a batch downstream; blocks while the next stage's queue is full (backpressure)."""
        self.stats.events_out += len(batch.events)
        await self._emit(batch)


class Source(Protocol):
    name: str
    # False for a source that cannot replay (stdin): at-least-once ends at our process.
    can_acknowledge: bool

    async def run(self, ctx: SourceContext) -> None:
        """Read and emit batches until the input ends (once) or ctx.shutdown is set."""

    async def aclose(self) -> None:
        """Called after every sink drained: persist checkpoints / commit offsets."""
