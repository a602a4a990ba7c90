"""Per-stream contiguous-range tracker.

Batches cover consecutive position ranges [start, end) of one stream (a file
identity, a Kafka partition). They settle out of order; the checkpoint may only
advance to the end of the longest released prefix. A released range whose
start is ahead of the watermark waits in `_ahead` until the gap closes.
"""

from __future__ import annotations


class Watermark:
    __slots__ = ("_ahead", "position")

    def __init__(self, position: int = 0) -> None:
        self.position = position
        self._ahead: dict[int, int] = {}

    def release(self, start: int, end: int) -> int:
        """Mark [start, end) released; return the new contiguous position."""
        if end <= self.position:
            return self.position  # a replay of something already covered
        if start > self.position:
            prev = self._ahead.get(start)
            if prev is None or end > prev:
                self._ahead[start] = end
            return self.position
        self.position = end
        ahead = self._ahead
        while ahead:
            nxt = ahead.pop(self.position, None)
            if nxt is None:
                # Ranges that started inside what is now covered.
                covered = [s for s in ahead if s <= self.position]
                if not covered:
                    break
                for s in covered:
                    e = ahead.pop(s)
                    if e > self.position:
                        self.position = e
                continue
            if nxt > self.position:
                self.position = nxt
        return self.position

    @property
    def gaps(self) -> int:
        """How many released ranges wait behind an unreleased one."""
        return len(self._ahead)

    def reset(self, position: int) -> None:
        """Start over at `position` (truncation: the file was rewritten)."""
        self.position = position
        self._ahead.clear()
