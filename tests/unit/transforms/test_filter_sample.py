"""The `filter` and `sample` transforms: what they keep, deterministically."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.transforms.filter import FilterTransformConfig
from pipeline.transforms.sample import SampleTransform

from .conftest import Build

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


class TestFilter:
    def test_keep(self, build: Build) -> None:
        t = build("filter", keep={"field": "level", "in": ["WARNING", "ERROR"]})
        out = t.process([{"level": lv} for lv in LEVELS])
        assert [e["level"] for e in out] == ["WARNING", "ERROR"]

    def test_drop(self, build: Build) -> None:
        t = build("filter", drop={"field": "path", "equals": "/healthz"})
        out = t.process([{"path": "/healthz"}, {"path": "/api"}, {}])
        assert out == [{"path": "/api"}, {}]

    def test_slow_queries_above_a_threshold(self, build: Build) -> None:
        t = build("filter", keep={"field": "duration_ms", "gt": 100})
        out = t.process([{"duration_ms": 50}, {"duration_ms": "150"}, {"duration_ms": "n/a"}, {}])
        assert out == [{"duration_ms": "150"}]

    @pytest.mark.parametrize("options", [{}, {"keep": {"field": "a", "exists": True},
                                              "drop": {"field": "a", "exists": True}}])
    def test_exactly_one_of_keep_or_drop(self, options: dict[str, object]) -> None:
        with pytest.raises(ValidationError, match="exactly one of `keep` or `drop`"):
            FilterTransformConfig.model_validate({"type": "filter", "inputs": ["x"], **options})


class TestSample:
    def test_counter_keeps_exactly_the_rate(self, build: Build) -> None:
        t = build("sample", rate=0.1)
        kept = t.process([{"n": i} for i in range(1000)])
        assert len(kept) == 100 and kept[0]["n"] == 0 and kept[1]["n"] == 10

    def test_counter_carries_over_batches(self, build: Build) -> None:
        t = build("sample", rate=0.3)
        kept = sum(len(t.process([{"n": i} for i in range(7)])) for _ in range(100))
        assert kept == 210

    def test_always_keep_warnings_and_above(self, build: Build) -> None:
        t = build("sample", rate=0.1, always_keep={"field": "level", "in": ["WARNING", "ERROR", "CRITICAL"]})
        events = [{"level": LEVELS[i % 4], "n": i} for i in range(400)]
        kept = t.process(events)
        by_level = {lv: sum(1 for e in kept if e["level"] == lv) for lv in LEVELS}
        assert by_level["WARNING"] == 100 and by_level["ERROR"] == 100
        assert by_level["DEBUG"] + by_level["INFO"] == 20  # 10% of the 200 others

    def test_a_key_keeps_or_drops_a_request_as_a_whole(self, build: Build) -> None:
        t = build("sample", rate=0.25, key_field="request_id")
        events = [{"request_id": f"req-{i % 400}", "line": i // 400} for i in range(4000)]
        kept = t.process(events)
        lines_per_request: dict[str, int] = {}
        for e in kept:
            lines_per_request[e["request_id"]] = lines_per_request.get(e["request_id"], 0) + 1
        assert set(lines_per_request.values()) == {10}  # all ten lines of a kept request
        assert 60 < len(lines_per_request) < 140  # about a quarter of 400 requests

    def test_the_key_decision_is_the_same_in_another_instance(self, build: Build) -> None:
        a, b = build("sample", rate=0.5, key_field="id"), build("sample", rate=0.5, key_field="id")
        events = [{"id": i} for i in range(200)]
        assert a.process([dict(e) for e in events]) == b.process([dict(e) for e in events])

    def test_known_hash_decisions_do_not_change_across_processes(self) -> None:
        # BLAKE2b, not Python's seeded hash(): these answers hold on every host and after restarts.
        t = SampleTransform.__new__(SampleTransform)
        t.threshold = 1 << 63  # rate 0.5
        assert [t.keeps_key(f"req-{i}") for i in range(8)] == [_expected(f"req-{i}") for i in range(8)]

    def test_events_without_the_key_fall_back_to_the_counter(self, build: Build) -> None:
        t = build("sample", rate=0.5, key_field="request_id")
        assert len(t.process([{"n": i} for i in range(10)])) == 5

    @pytest.mark.parametrize("rate", [0, 1.5, -0.1])
    def test_rate_must_be_a_fraction(self, build: Build, rate: float) -> None:
        with pytest.raises(ValidationError):
            build("sample", rate=rate)


def _expected(key: str) -> bool:
    from hashlib import blake2b

    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "big") < (1 << 63)
