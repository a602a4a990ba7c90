"""Bounded batch queues between stages, with end-of-stream counting.

A stage may have several upstreams; it ends when every upstream has closed.
`put` blocks when the queue is full: that is the backpressure that stops a
source from reading past what the slowest sink can take.
"""

from __future__ import annotations

import asyncio

from pipeline.event import Batch


class BatchQueue:
    __slots__ = ("_closed", "_producers", "_queue", "name")

    def __init__(self, name: str, capacity: int, producers: int = 1) -> None:
        self.name = name
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(capacity)
        self._producers = producers
        self._closed = 0

    async def put(self, batch: Batch) -> None:
        await self._queue.put(batch)

    async def close(self) -> None:
        """One producer is done; the consumer sees the end once all are."""
        await self._queue.put(None)

    async def get(self) -> Batch | None:
        """The next batch, or None once every producer has closed."""
        while True:
            item = await self._queue.get()
            if item is not None:
                return item
            self._closed += 1
            if self._closed >= self._producers:
                return None

    def qsize(self) -> int:
        return self._queue.qsize()

    @property
    def capacity(self) -> int:
        return self._queue.maxsize
