"""Group the batches arriving at a sink into sends: by event count, estimated bytes and age.

Sources and transforms hand over batches of whatever size a read produced; a
sink wants fewer, larger requests. `Batcher` merges consecutive batches (their
receipts travel together and settle together) until `max_events` or
`max_bytes` is reached, or the oldest waiting event is `timeout` old.
`grouped()` drives it from a queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from pipeline.acks import Receipt
from pipeline.event import Batch, EncodedEvents, Event, Events
from pipeline.queues import BatchQueue

# A rough per-event overhead (keys, timestamps, ids) on top of the message text.
EVENT_OVERHEAD_BYTES = 128


def estimate_bytes(events: Events) -> int:
    """A cheap size estimate for batching: the message plus a fixed overhead per event (encoded
    events: their exact size)."""
    if isinstance(events, EncodedEvents):
        return len(events.data)
    return sum(len(e.get("message") or "") for e in events) + EVENT_OVERHEAD_BYTES * len(events)


@dataclass(slots=True)
class Group:
    """Events of one or more batches sent together, with every receipt they carry.

    Batches that all arrived encoded stay encoded (their bytes joined); a mix is decoded."""

    events: Events
    receipts: list[Receipt]
    since: float = 0.0  # monotonic time its first batch reached the sink


class Batcher:
    """Accumulates batches; hands out a `Group` when one is full or old enough."""

    __slots__ = (
        "_clock",
        "_deadline",
        "_encoded",
        "_events",
        "_receipts",
        "_size",
        "max_bytes",
        "max_events",
        "since",
        "timeout",
    )

    def __init__(
        self, max_events: int, max_bytes: int, timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._clock = clock
        self._events: list[Event] = []
        self._encoded: list[EncodedEvents] = []  # while every batch so far came encoded
        self._receipts: list[Receipt] = []
        self._size = 0
        self._deadline: float | None = None
        self.since: float | None = None  # when the waiting events' first batch arrived

    def add(self, batch: Batch) -> Group | None:
        """Add a non-empty batch; return the group to send when it filled one."""
        events = batch.events
        if isinstance(events, EncodedEvents) and not self._events:
            self._encoded.append(events)
        else:
            if self._encoded:  # a plain batch joins encoded ones: the group is plain from now on
                for part in self._encoded:
                    self._events.extend(part.decoded())
                self._encoded = []
            self._events.extend(events)
        self._receipts.append(batch.receipt)
        self._size += estimate_bytes(events)
        if self._deadline is None:
            now = self._clock()
            self.since = now
            self._deadline = now + self.timeout
        if len(self._events) + sum(p.n for p in self._encoded) >= self.max_events or self._size >= self.max_bytes:
            return self.take()
        return None

    def take(self) -> Group | None:
        """Whatever is waiting, as one group (None when nothing is)."""
        if not self._receipts:
            return None
        events: Events = self._events
        if self._encoded:
            events = self._encoded[0] if len(self._encoded) == 1 else EncodedEvents.join(self._encoded)
        group = Group(events, self._receipts, self.since or self._clock())
        self._events, self._encoded, self._receipts, self._size, self._deadline, self.since = [], [], [], 0, None, None
        return group

    def wait_time(self) -> float | None:
        """Seconds until the waiting events are due (None when nothing waits)."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - self._clock())


async def grouped(
    queue: BatchQueue, batcher: Batcher, on_batch: Callable[[Batch], None] | None = None
) -> AsyncIterator[Group]:
    """Groups from `queue` until every producer closed it; the rest is flushed at the end.

    An empty batch (everything filtered upstream) settles at once: it holds no
    events for a sink to deliver, only positions to release.
    """
    while True:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        # that lands as the get completes, which would hang shutdown.
        try:
            async with asyncio.timeout(batcher.wait_time()):
                batch = await queue.get()
        except TimeoutError:
            group = batcher.take()
            if group is not None:
                yield group
            continue
        if batch is None:
            break
        if on_batch is not None:
            on_batch(batch)
        if not batch.events:
            batch.receipt.settle()
            continue
        full = batcher.add(batch)
        if full is not None:
            yield full
    rest = batcher.take()
    if rest is not None:
        yield rest
