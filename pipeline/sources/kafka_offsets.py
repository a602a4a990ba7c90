"""Offsets of the partitions a `kafka` source is assigned: released watermark, in-flight batches, commits.

A batch's receipt covers, per partition, a range [start, last + 1); its release
advances each partition's `Watermark`, and the contiguous released position is
what the source commits. A revoked partition's tracker ignores late releases
(each assignment gets a fresh tracker, so a tracker is its own generation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pipeline.acks import Status
from pipeline.watermark import Watermark


class PartitionTracker:
    """Offsets of one assigned partition: released watermark, in-flight batches, last commit."""

    __slots__ = ("committed", "idle", "inflight", "next_start", "on_release", "revoked", "watermark")

    def __init__(self, position: int, on_release: Callable[[], None] | None = None) -> None:
        self.watermark = Watermark(position)
        self.next_start = position  # where the next batch's range starts
        self.committed = position  # last position committed (or found) for the group
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.revoked = False
        self.on_release = on_release  # the watermark moved: commit soon

    def begin(self) -> None:
        self.inflight += 1
        self.idle.clear()

    def release(self, start: int, end: int) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()
        if not self.revoked:
            before = self.watermark.position
            if self.watermark.release(start, end) != before and self.on_release is not None:
                self.on_release()


Ranges = list[tuple[PartitionTracker, int, int]]


def releaser(ranges: Ranges) -> Callable[[Status], None]:
    def on_release(status: Status) -> None:
        for tracker, start, end in ranges:
            tracker.release(start, end)

    return on_release
