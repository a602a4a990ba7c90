"""The `throttle` and `dedupe` transforms: limits per key over time, bounded memory."""

from __future__ import annotations

from typing import Any

from pipeline.metrics import Metrics
from pipeline.transforms.throttle import ThrottleTransform, ThrottleTransformConfig

from .conftest import Build


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(clock: Clock, metrics: Metrics | None = None, **options: Any) -> ThrottleTransform:
    cfg = ThrottleTransformConfig.model_validate({"type": "throttle", "inputs": ["x"], **options})
    stats = (metrics or Metrics()).component("t", "transform", "throttle")
    return ThrottleTransform("t", cfg, stats, clock=clock)


class TestThrottle:
    def test_threshold_per_window_then_refilled(self) -> None:
        clock = Clock()
        t = throttle(clock, threshold=3, window=60)
        assert len(t.process([{"n": i} for i in range(10)])) == 3
        clock.now += 20  # a third of the window: one more event allowed
        assert len(t.process([{"n": i} for i in range(10)])) == 1
        clock.now += 600  # long idle: a full allowance again, never more
        assert len(t.process([{"n": i} for i in range(10)])) == 3

    def test_limits_are_per_key(self) -> None:
        t = throttle(Clock(), threshold=2, window=1, key="{service}")
        out = t.process([{"service": s} for s in "aaaabbbc"])
        assert "".join(e["service"] for e in out) == "aabbc"

    def test_tag_instead_of_drop_is_counted(self) -> None:
        metrics = Metrics()
        t = throttle(Clock(), metrics, threshold=1, window=1, action="tag")
        out = t.process([{}, {}, {}])
        assert [e.get("tags") for e in out] == [None, ["_throttled"], ["_throttled"]]
        assert metrics.stats["t"].tags == {"_throttled": 2}

    def test_always_keep_is_exempt_and_uses_no_allowance(self) -> None:
        t = throttle(Clock(), threshold=1, window=1, always_keep={"field": "level", "equals": "ERROR"})
        out = t.process([{"level": "ERROR"}] * 5 + [{"level": "INFO"}] * 3)
        assert [e["level"] for e in out] == ["ERROR"] * 5 + ["INFO"]

    def test_tracked_keys_are_bounded(self) -> None:
        clock = Clock()
        t = throttle(clock, threshold=1, window=60, key="{id}", max_keys=100)
        for batch in range(50):
            clock.now += 0.01
            t.process([{"id": f"{batch}-{i}"} for i in range(10)])
        assert len(t.buckets) <= 100

    def test_idle_keys_are_forgotten(self) -> None:
        clock = Clock()
        t = throttle(clock, threshold=1, window=10, key="{id}")
        t.process([{"id": i} for i in range(50)])
        clock.now += 11
        t.process([{"id": "new"}])
        assert list(t.buckets) == ["new"]


class TestDedupe:
    def test_drops_repeats_by_fields(self, build: Build) -> None:
        t = build("dedupe", fields=["event_id"])
        first = t.process([{"event_id": "a", "n": 1}, {"event_id": "b"}, {"event_id": "a", "n": 2}])
        again = t.process([{"event_id": "b"}, {"event_id": "c"}])
        assert first == [{"event_id": "a", "n": 1}, {"event_id": "b"}] and again == [{"event_id": "c"}]

    def test_default_fields_timestamp_host_message(self, build: Build) -> None:
        t = build("dedupe")
        e = {"@timestamp": "t", "host": "h", "message": "m"}
        assert t.process([dict(e), dict(e), {**e, "host": "other"}]) == [e, {**e, "host": "other"}]

    def test_events_without_any_key_field_are_never_duplicates(self, build: Build) -> None:
        t = build("dedupe", fields=["event_id"])
        assert len(t.process([{"message": "x"}, {"message": "x"}])) == 2

    def test_unhashable_values_are_compared_by_content(self, build: Build) -> None:
        t = build("dedupe", fields=["obj"])
        assert t.process([{"obj": {"a": [1]}}, {"obj": {"a": [1]}}, {"obj": {"a": [2]}}]) == [
            {"obj": {"a": [1]}}, {"obj": {"a": [2]}}]

    def test_the_cache_is_bounded_least_recent_forgotten(self, build: Build) -> None:
        t = build("dedupe", fields=["id"], cache_size=3)
        t.process([{"id": i} for i in range(5)])  # remembers 2, 3, 4
        assert len(t.seen) == 3
        assert t.process([{"id": 0}, {"id": 4}]) == [{"id": 0}]
