"""Harness for running file/container sources in-process against real files.

`Harness` plays the runtime: it hands the source a SourceContext whose emit
collects batches and (by default) settles each receipt at once, like a sink
that delivers instantly. Tests that need out-of-order or withheld settlement
turn `auto_settle` off and settle by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pipeline.checkpoint import CheckpointStore
from pipeline.event import Batch, Event
from pipeline.metrics import Metrics
from pipeline.sources.base import SourceContext
from pipeline.sources.container import ContainerSource, ContainerSourceConfig
from pipeline.sources.file import FileSource, FileSourceConfig

HOST = "testhost"


class Harness:
    def __init__(self, data_dir: Path, *, once: bool = True, auto_settle: bool = True, name: str = "src") -> None:
        self.data_dir = data_dir
        self.once = once
        self.auto_settle = auto_settle
        self.name = name
        self.batches: list[Batch] = []
        self.metrics = Metrics()
        self.shutdown = asyncio.Event()
        self.ctx = SourceContext(name=name, host=HOST, data_dir=data_dir, once=once, shutdown=self.shutdown,
                                 stats=self.metrics.component(name, "source", "file"), metrics=self.metrics,
                                 _emit=self._emit)

    async def _emit(self, batch: Batch) -> None:
        self.batches.append(batch)
        if self.auto_settle:
            batch.receipt.settle()

    @property
    def events(self) -> list[Event]:
        return [e for b in self.batches for e in b.events]

    def messages(self, path: str | None = None) -> list[str]:
        return [e["message"] for e in self.events if path is None or e["source"]["path"] == path]

    def settle_all(self) -> None:
        for b in self.batches:
            if not b.receipt.settled:
                b.receipt.settle()

    def checkpoint(self) -> dict[str, Any]:
        """The persisted state as the next start would load it (snapshot + journal), files untouched."""
        path = self.data_dir / "checkpoints" / f"{self.name}.json"
        assert path.exists() or path.with_name(f"{self.name}.journal").exists(), "no checkpoint written"
        store = CheckpointStore(path, self.name)
        store.read()
        return {"files": [e.to_json() for e in store.entries.values()]}

    def offsets(self) -> dict[str, int]:
        """Checkpointed offset by path."""
        return {f["path"]: f["offset"] for f in self.checkpoint()["files"]}


def file_config(**kw: Any) -> FileSourceConfig:
    kw.setdefault("watch", False)
    return FileSourceConfig.model_validate({"type": "file", **kw})


def container_config(**kw: Any) -> ContainerSourceConfig:
    kw.setdefault("watch", False)
    return ContainerSourceConfig.model_validate({"type": "container", **kw})


def make_source(config: FileSourceConfig, data_dir: Path, name: str = "src") -> FileSource:
    if isinstance(config, ContainerSourceConfig):
        return ContainerSource(name, config, data_dir, HOST, node="node-1")
    return FileSource(name, config, data_dir, HOST)


async def run_once(config: FileSourceConfig, data_dir: Path, name: str = "src", **kw: Any) -> Harness:
    """One --once run: read everything, settle, close (final checkpoint)."""
    h = Harness(data_dir, once=True, name=name, **kw)
    src = make_source(config, data_dir, name)
    await src.run(h.ctx)
    h.settle_all()
    await src.aclose()
    return h


class Live:
    """A source running in follow mode in a background task."""

    def __init__(self, source: FileSource, harness: Harness) -> None:
        self.source = source
        self.h = harness
        self.task: asyncio.Task[None] | None = None

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + within
        while not predicate():
            if self.task is not None and self.task.done():
                self.task.result()
                raise AssertionError(f"source ended before {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {len(self.h.events)} events")
            await asyncio.sleep(0.02)

    async def wait_events(self, n: int, within: float = 10.0) -> None:
        await self.wait_for(lambda: len(self.h.events) >= n, within, f"{n} events")


@asynccontextmanager
async def live_source(config: FileSourceConfig, data_dir: Path, *, name: str = "src",
                      auto_settle: bool = True) -> AsyncIterator[Live]:
    h = Harness(data_dir, once=False, auto_settle=auto_settle, name=name)
    src = make_source(config, data_dir, name)
    live = Live(src, h)
    live.task = asyncio.create_task(src.run(h.ctx))
    try:
        yield live
    finally:
        h.shutdown.set()
        await asyncio.wait_for(live.task, 10)
        h.settle_all()
        await src.aclose()


def append(path: Path, data: bytes) -> None:
    """Append like a logging application does."""
    with open(path, "ab") as fh:
        fh.write(data)


def rewrite_in_place(path: Path, data: bytes) -> None:
    """copytruncate's effect on the original: same inode, emptied, then `data` written."""
    with open(path, "r+b") as fh:
        fh.truncate(0)
        fh.write(data)
