"""Run one sink under the real SinkDriver in-process: put batches, watch receipts settle."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Self

from pipeline.acks import Receipt, Status
from pipeline.dlq import DeadLetterQueue
from pipeline.driver import SinkDriver
from pipeline.event import Batch
from pipeline.metrics import ComponentStats, Metrics
from pipeline.queues import BatchQueue


class DriverHarness:
    """`async with` starts the sink and its driver; `finish()` ends the stream and drains."""

    def __init__(self, tmp_path: Path, sink: Any, metrics: Metrics, stats: ComponentStats) -> None:
        self.sink = sink
        self.config = sink.config
        self.metrics = metrics
        self.stats = stats
        self.dlq = DeadLetterQueue(tmp_path / "dlq")
        self.queue = BatchQueue(sink.name, 8)
        self.driver = SinkDriver(sink, self.config, self.queue, stats, metrics, self.dlq)
        self.released: list[Status] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.sink.start()
        self.task = asyncio.create_task(self.driver.run())
        return self

    async def put(self, events: list[dict[str, Any]]) -> Receipt:
        receipt = Receipt(self.released.append)
        await self.queue.put(Batch(events, receipt))
        return receipt

    async def finish(self) -> None:
        await self.queue.close()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)
        await self.sink.aclose()

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.sink.aclose()
