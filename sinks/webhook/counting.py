"""The counting rule types over event-time windows: `frequency`, `ratio`, `metric` and `spike`.

Each only says what an event adds to its bucket (`observe`) and what the window shows
(`measure`); clocks, lateness, evaluation, `for:` and alerts are the engine's (windowed.py).
"""

from __future__ import annotations

import math
from typing import Any

from parsers.fieldpath import compile_getter
from pipeline.conditions import as_number, compile_condition
from pipeline.event import Event
from sinks.webhook.aggregate import Aggregator
from sinks.webhook.config_rules import RuleConfig
from sinks.webhook.windowed import KeyState, WindowedRule
from sinks.webhook.windows import Sketch


class FrequencyRule(WindowedRule):
    """At least `threshold` matches within `window`, per label set."""

    boundary_evaluation = False  # checked at each event (firing) and as the clock moves (resolving)

    def observe(self, st: KeyState, event: Event, ts: float, b: int) -> None:
        if b <= st.cur - self.n:
            return  # late, and already outside the window
        st.buckets[b] = st.buckets.get(b, 0) + 1
        st.total += 1
        st.last.append(event)
        if st.group is not None:
            st.group.count = st.total  # firing: the rest of the description is refreshed per step
        elif st.total >= (self.config.threshold or 1):
            self.transition(st, True, st.total, {"count": st.total}, max(ts, st.since or ts))

    def advance(self, st: KeyState, b: int) -> None:
        st.cur = b
        self.prune(st, b)
        st.total = sum(st.buckets.values())
        holds = st.total >= (self.config.threshold or 1)
        if holds and st.group is not None:
            self.describe(st, st.group, st.total, {"count": st.total})
        elif not holds:
            self.transition(st, False, st.total, {}, (b - self.n + 1) * self.step)

    def measure(self, st: KeyState, end: int) -> tuple[bool, float | None, dict[str, float]]:
        return st.total >= (self.config.threshold or 1), st.total, {"count": st.total}


class RatioRule(WindowedRule):
    """Matches (`when`) among `base` events within `window`, above or below `threshold`."""

    def __init__(self, config: RuleConfig, aggregator: Aggregator, lateness: float) -> None:
        super().__init__(config, aggregator, lateness)
        assert config.base is not None
        self.matching = self.predicate
        self.predicate = compile_condition(config.base)  # labels and clocks come from base events

    def observe(self, st: KeyState, event: Event, ts: float, b: int) -> None:
        bucket = st.buckets.get(b)
        if bucket is None:
            bucket = st.buckets[b] = [0, 0]
        bucket[1] += 1
        if self.matching(event):
            bucket[0] += 1
            st.last.append(event)

    def measure(self, st: KeyState, end: int) -> tuple[bool, float | None, dict[str, float]]:
        low = end - self.n
        matched = base = 0
        for b, (m, n) in st.buckets.items():
            if low < b <= end:
                matched += m
                base += n
        if not base:
            return False, None, {"count": 0.0, "base": 0.0}
        ratio = matched / base
        c = self.config
        threshold = c.threshold or 0.0
        holds = base >= c.min_count and (ratio > threshold if c.op == "above" else ratio < threshold)
        return holds, ratio, {"count": float(matched), "base": float(base)}

    def dump_bucket(self, value: Any) -> Any:
        return list(value)

    def load_bucket(self, value: Any) -> Any:
        return [int(value[0]), int(value[1])]


class MetricRule(WindowedRule):
    """An aggregate (p95, avg, max, ...) of a numeric field within `window`, above or below `threshold`."""

    def __init__(self, config: RuleConfig, aggregator: Aggregator, lateness: float) -> None:
        super().__init__(config, aggregator, lateness)
        assert config.field is not None
        self.get = compile_getter(config.field)

    def observe(self, st: KeyState, event: Event, ts: float, b: int) -> None:
        number = as_number(self.get(event))
        if number is None or not math.isfinite(number):
            return  # no value (or not a number): nothing to aggregate
        sketch = st.buckets.get(b)
        if sketch is None:
            sketch = st.buckets[b] = Sketch()
        sketch.add(number)
        st.last.append(event)

    def measure(self, st: KeyState, end: int) -> tuple[bool, float | None, dict[str, float]]:
        low = end - self.n
        merged = Sketch()
        for b, sketch in st.buckets.items():
            if low < b <= end:
                merged.merge(sketch)
        c = self.config
        value = merged.aggregate(c.aggregate or "avg")
        if value is None:
            return False, None, {"count": 0.0}
        threshold = c.threshold or 0.0
        holds = merged.count >= c.min_count and (value > threshold if c.op == "above" else value < threshold)
        return holds, value, {"count": float(merged.count)}

    def dump_bucket(self, value: Any) -> Any:
        return value.to_json()

    def load_bucket(self, value: Any) -> Any:
        return Sketch.from_json(value)


class SpikeRule(WindowedRule):
    """Matches in this `window` against the previous one: up by `factor` (or down by it)."""

    def __init__(self, config: RuleConfig, aggregator: Aggregator, lateness: float) -> None:
        super().__init__(config, aggregator, lateness)
        self.span = 2 * self.n

    def observe(self, st: KeyState, event: Event, ts: float, b: int) -> None:
        st.buckets[b] = st.buckets.get(b, 0) + 1
        st.last.append(event)

    def measure(self, st: KeyState, end: int) -> tuple[bool, float | None, dict[str, float]]:
        n = self.n
        current = previous = 0
        for b, count in st.buckets.items():
            if end - n < b <= end:
                current += count
            elif end - 2 * n < b <= end - n:
                previous += count
        details: dict[str, float] = {"count": current, "previous": previous}
        # Only once the rule has watched both windows whole: a partial previous window is no reference.
        if self.started is None or self.started > (end - 2 * n + 1) * self.step:
            return False, None, details
        c = self.config
        factor = c.factor or 2.0
        value = current / previous if previous else (float("inf") if current else None)
        if c.direction == "up":
            holds = current >= c.min_count and previous >= c.min_previous and current >= factor * previous
        else:
            holds = previous >= max(c.min_count, 1) and current * factor <= previous
        if value == float("inf"):
            value = None
        return holds, value, details
