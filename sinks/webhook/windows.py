"""Event time and windows of the windowed alert rules: `@timestamp` to epoch, and a mergeable sketch.

Windows are buckets of `step` seconds keyed by `int(ts // step)` (the rules keep them
in plain dicts: the hot loop adds to one bucket per event). A window over `n` buckets
ending with bucket `b` covers the event time `[(b-n+1)*step, (b+1)*step)`.

Percentiles come from `Sketch`, a log-bucketed histogram with a relative error of 1%
(the scheme of DDSketch): values fall into bins `ceil(log(v) / log(gamma))`, bins of
buckets merge by adding counts, and it persists as plain JSON. Exact values would cost
memory per event; a p95 within 1% is what a latency rule needs.
"""

from __future__ import annotations

import calendar
import math
from datetime import datetime
from typing import Any

from pipeline.event import Event

RELATIVE_ACCURACY = 0.01
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_INV_LOG_GAMMA = 1 / _LOG_GAMMA
_log, _ceil = math.log, math.ceil  # module globals: cheaper than attribute lookups per value
_MIN_POSITIVE = 1e-9  # values below are counted as zero
_minutes: dict[str, float] = {}  # "YYYY-MM-DDTHH:MM" -> epoch (a bounded cache: one entry per minute seen)


def event_time(event: Event, default: float) -> float:
    """The event's `@timestamp` (RFC 3339) as epoch seconds, or `default` when it has none or it is invalid.

    The parse transform writes `2024-05-14T09:12:06.417Z`; that shape is split at fixed
    positions with a per-minute cache, anything else goes through datetime.
    """
    ts = event.get("@timestamp")
    if ts.__class__ is not str:
        return default
    if len(ts) >= 20 and ts[-1] == "Z" and ts[10] == "T" and ts[16] == ":":
        base = _minutes.get(ts[:16])
        if base is None:
            try:
                base = calendar.timegm(datetime.strptime(ts[:16], "%Y-%m-%dT%H:%M").timetuple())
            except ValueError:
                return default
            if len(_minutes) > 10_000:
                _minutes.clear()
            _minutes[ts[:16]] = base
        try:
            return base + float(ts[17:-1])
        except ValueError:
            return default
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return default


def format_duration(seconds: float) -> str:
    """`300.0` -> `5m`, `90` -> `90s`, `3600` -> `1h`: how windows read in notifications."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class Sketch:
    """Counts of values in log-spaced bins (relative error 1%), plus count, sum, min and max."""

    __slots__ = ("bins", "count", "high", "low", "negatives", "total", "zeros")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.negatives: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value
        if value > _MIN_POSITIVE:
            i = _ceil(_log(value) * _INV_LOG_GAMMA)
            bins = self.bins
            bins[i] = bins.get(i, 0) + 1
        elif value < -_MIN_POSITIVE:
            i = math.ceil(math.log(-value) / _LOG_GAMMA)
            self.negatives[i] = self.negatives.get(i, 0) + 1
        else:
            self.zeros += 1

    def merge(self, other: Sketch) -> None:
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        self.zeros += other.zeros
        for i, n in other.bins.items():
            self.bins[i] = self.bins.get(i, 0) + n
        for i, n in other.negatives.items():
            self.negatives[i] = self.negatives.get(i, 0) + n

    def quantile(self, q: float) -> float | None:
        """The value at rank q (0..1), within 1% (exact at the extremes: min and max are kept)."""
        if not self.count:
            return None
        rank = q * (self.count - 1)
        if rank <= 0:
            return self.low
        if rank >= self.count - 1:
            return self.high
        seen = 0
        for i in sorted(self.negatives, reverse=True):  # most negative first
            seen += self.negatives[i]
            if seen > rank:
                return max(self.low, -2 * _GAMMA**i / (_GAMMA + 1))
        seen += self.zeros
        if seen > rank:
            return 0.0
        for i in sorted(self.bins):
            seen += self.bins[i]
            if seen > rank:
                return min(self.high, max(self.low, 2 * _GAMMA**i / (_GAMMA + 1)))
        return self.high

    def aggregate(self, name: str) -> float | None:
        if not self.count:
            return None
        if name == "count":
            return float(self.count)
        if name == "sum":
            return self.total
        if name == "avg":
            return self.total / self.count
        if name == "min":
            return self.low
        if name == "max":
            return self.high
        return self.quantile(int(name[1:]) / 100)  # p50, p90, p95, p99

    def to_json(self) -> list[Any]:
        return [
            self.count,
            self.total,
            self.low,
            self.high,
            self.zeros,
            list(self.bins.items()),
            list(self.negatives.items()),
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Sketch:
        sketch = cls()
        sketch.count, sketch.total, sketch.low, sketch.high, sketch.zeros = (
            int(data[0]),
            float(data[1]),
            float(data[2]),
            float(data[3]),
            int(data[4]),
        )
        sketch.bins = {int(i): int(n) for i, n in data[5]}
        sketch.negatives = {int(i): int(n) for i, n in data[6]}
        return sketch
