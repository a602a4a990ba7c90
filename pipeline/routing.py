"""Fan a batch out to N downstream queues, deriving one child receipt per branch.

Sinks never mutate events, so they share the producer's dicts. A transform
branch does mutate, so when a batch goes to more than one consumer each
transform branch gets its own deep copy (orjson round trip: fast and exact for
our JSON-shaped events).
"""

from __future__ import annotations

from pipeline.event import Batch, deep_copy
from pipeline.queues import BatchQueue


class Router:
    __slots__ = ("_copy", "_queues")

    def __init__(self, queues: list[BatchQueue], mutating: list[bool]) -> None:
        self._queues = queues
        self._copy = mutating if len(queues) > 1 else [False] * len(queues)

    async def emit(self, batch: Batch) -> None:
        if len(self._queues) == 1:
            await self._queues[0].put(batch)
            return
        children = batch.receipt.derive(len(self._queues))
        for queue, child, copy in zip(self._queues, children, self._copy, strict=True):
            events = deep_copy(batch.events) if copy else batch.events
            await queue.put(Batch(events, child))

    async def close(self) -> None:
        for queue in self._queues:
            await queue.close()
