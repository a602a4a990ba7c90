"""Exponential backoff with equal jitter.

Sinks retry transient failures until delivered or shut down: a log pipeline
that gives up after N tries drops data silently, so there is no attempt cap.
Equal jitter (a wait uniform in [cap/2, cap]) rather than full jitter
([0, cap]): retries spread out, but never come back at once after a failure.
"""

from __future__ import annotations

import random


class Backoff:
    __slots__ = ("_attempt", "initial", "maximum")

    def __init__(self, initial: float = 0.1, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._attempt = 0

    def next_delay(self) -> float:
        """The next wait: uniform in [cap/2, cap], cap doubling from `initial` up to `maximum`."""
        cap = min(self.maximum, self.initial * 2.0**self._attempt)
        self._attempt += 1
        return cap / 2 + random.random() * cap / 2

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
