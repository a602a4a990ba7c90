"""Grouping and timing (sinks/webhook/aggregate.py) with an injected clock: no sleeping, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.webhook.aggregate import Aggregator, RateLimiter, Timing
from sinks.webhook.config import RuleConfig
from sinks.webhook.rules import CompiledRule

T0 = 1_700_000_000.0
TIMING = Timing(group_wait=1.0, update_interval=10.0, repeat_interval=300.0, resolve_after=120.0)
APP_RULE = {
    "name": "AppError",
    "when": {"all": [{"field": "log_type", "equals": "application"}, {"field": "level", "in": ["ERROR", "CRITICAL"]}]},
    "labels": {"service": "{service|unknown}", "error_type": "{error.type}"},
    "annotations": {"summary": "{error.type}: {message:20}"},
}


def make(rules: list[dict[str, Any]] | None = None, timing: Timing = TIMING, **kw: Any) -> Aggregator:
    compiled = [CompiledRule(RuleConfig.model_validate(r)) for r in (rules or [APP_RULE])]
    return Aggregator(compiled, timing, component="alerts", **kw)


def error(error_type: str = "KeyError", service: str = "api", message: str = "boom") -> dict[str, Any]:
    return {"log_type": "application", "level": "ERROR", "service": service, "error": {"type": error_type},
            "message": message}


class TestFold:
    def test_identical_events_are_one_alert(self) -> None:
        agg = make()
        assert agg.fold([error()] * 100_000, T0) == 100_000
        assert agg.active == 1
        (group,) = agg.groups.values()
        assert group.count == 100_000
        assert group.labels == {"alertname": "AppError", "severity": "warning", "service": "api",
                                "error_type": "KeyError"}

    def test_distinct_labels_are_distinct_alerts(self) -> None:
        agg = make()
        agg.fold([error("A"), error("B"), error("C"), error("A", service="web"), error("A")], T0)
        assert sorted(g.count for g in agg.groups.values()) == [1, 1, 1, 2]

    def test_non_matching_events_are_ignored(self) -> None:
        agg = make()
        assert agg.fold([{"log_type": "application", "level": "INFO"}, {"log_type": "access", "status": 500}], T0) == 0
        assert agg.active == 0

    def test_annotations_come_from_the_latest_event(self) -> None:
        agg = make()
        agg.fold([error(message="first"), error(message="second " + "x" * 50)], T0)
        (group,) = agg.groups.values()
        assert group.annotations == {"summary": "KeyError: second " + "x" * 12 + "…"}  # 20 chars

    def test_same_labels_from_two_rules_share_one_alert(self) -> None:
        rules = [
            {"name": "A", "when": {"field": "level", "equals": "ERROR"}, "labels": {"alertname": "Err"}},
            {"name": "B", "when": {"field": "status", "gte": 500}, "labels": {"alertname": "Err"}},
        ]
        agg = make(rules)
        agg.fold([{"level": "ERROR"}, {"status": 502}, {"level": "ERROR", "status": 500}], T0)
        assert [g.count for g in agg.groups.values()] == [4]

    def test_fingerprint_identifies_labels(self) -> None:
        a, b = make(), make()
        a.fold([error()], T0)
        b.fold([error(message="other message")], T0 + 50)
        assert list(a.groups) == list(b.groups)


class TestTiming:
    def test_fires_once_after_group_wait_with_the_count(self) -> None:
        agg = make()
        agg.fold([error()] * 10, T0)
        assert agg.due(T0 + 0.5) == []
        agg.fold([error()] * 5, T0 + 0.7)
        (note,) = agg.due(T0 + 1.0)
        assert (note["kind"], note["status"], note["annotations"]["count"]) == ("firing", "firing", "15")
        assert note["startsAt"] == "2023-11-14T22:13:20.000Z"
        assert note["annotations"]["first_seen"] == "2023-11-14T22:13:20.000Z"
        assert note["annotations"]["last_seen"] == "2023-11-14T22:13:20.700Z"
        assert note["generatorURL"] == "http://pipeline/alerts"
        assert note["labels"]["alertname"] == "AppError"
        assert agg.due(T0 + 1.5) == []

    def test_updates_the_count_at_most_every_update_interval(self) -> None:
        agg = make()
        agg.fold([error()], T0)
        agg.due(T0 + 1)
        agg.fold([error()] * 9, T0 + 2)
        assert agg.due(T0 + 5) == []  # changed, but within update_interval of the last notification
        (note,) = agg.due(T0 + 11)
        assert (note["kind"], note["annotations"]["count"]) == ("update", "10")
        assert agg.due(T0 + 30) == []  # unchanged: no update

    def test_repeats_every_repeat_interval_while_firing(self) -> None:
        timing = Timing(group_wait=1, update_interval=10, repeat_interval=60, resolve_after=120)
        agg = make(timing=timing)
        agg.fold([error()], T0)
        agg.due(T0 + 1)
        agg.fold([error()], T0 + 50)  # keeps it firing
        (update,) = agg.due(T0 + 51)
        assert update["kind"] == "update"
        assert agg.due(T0 + 100) == []
        (repeat,) = agg.due(T0 + 111)
        assert (repeat["kind"], repeat["annotations"]["count"]) == ("repeat", "2")

    def test_resolves_after_resolve_after_without_a_match(self) -> None:
        agg = make()
        agg.fold([error()] * 3, T0)
        agg.due(T0 + 1)
        agg.fold([error()], T0 + 100)
        agg.due(T0 + 110)  # the update
        assert agg.due(T0 + 219) == []  # 119 s since the last match
        (note,) = agg.due(T0 + 220)
        assert (note["kind"], note["status"], note["annotations"]["count"]) == ("resolved", "resolved", "4")
        assert note["endsAt"] == "2023-11-14T22:17:00.000Z"  # = now
        assert agg.active == 0

    def test_a_match_after_resolution_opens_a_new_alert(self) -> None:
        agg = make()
        agg.fold([error()], T0)
        agg.due(T0 + 1)
        agg.due(T0 + 200)
        agg.fold([error()], T0 + 300)
        (note,) = agg.due(T0 + 301)
        assert (note["kind"], note["annotations"]["count"]) == ("firing", "1")
        assert note["startsAt"] == "2023-11-14T22:18:20.000Z"

    def test_firing_ends_at_is_when_it_would_resolve(self) -> None:
        agg = make()
        agg.fold([error()], T0)
        (note,) = agg.due(T0 + 1)
        assert note["endsAt"] == "2023-11-14T22:15:20.000Z"  # last_seen + resolve_after

    def test_flush_notifies_new_alerts_and_changed_counts_now(self) -> None:
        agg = make()
        agg.fold([error("A")], T0)
        agg.due(T0 + 1)
        agg.fold([error("A")] * 4 + [error("B")], T0 + 2)
        notes = {n["labels"]["error_type"]: n for n in agg.due(T0 + 2, flush=True)}
        assert notes["A"]["kind"] == "update" and notes["A"]["annotations"]["count"] == "5"
        assert notes["B"]["kind"] == "firing" and notes["B"]["annotations"]["count"] == "1"
        assert agg.due(T0 + 2, flush=True) == []

    def test_exact_count_after_a_stream(self) -> None:
        """10k identical errors over 5 s: the alert ends up with count=10000 within update_interval."""
        agg = make(timing=Timing(group_wait=1, update_interval=0.5, repeat_interval=300, resolve_after=120))
        last: dict[str, Any] = {}
        now = T0
        for _ in range(100):
            agg.fold([error()] * 100, now)
            for note in agg.due(now):
                last = note
            now += 0.05
        for note in agg.due(now + 0.5):
            last = note
        assert last["annotations"]["count"] == "10000"


class TestRateLimit:
    def test_limiter_is_a_rolling_window(self) -> None:
        limiter = RateLimiter(2, window=60)
        assert [limiter.allow(t) for t in (0, 1, 2, 59.9, 60, 61, 62)] == [True, True, False, False, True, True,
                                                                           False]

    def test_caps_new_alerts_and_counts_what_is_held_back(self) -> None:
        agg = make(max_alerts_per_minute=5, overflow_alert=False)
        events = [error(f"E{i}") for i in range(8)] + [error("E7")] * 4 + [error("E0")] * 2
        agg.fold(events, T0)
        assert agg.active == 5
        assert agg.suppressed == 3 + 4  # E5, E6, E7 once each, then E7 four more times
        assert sum(g.count for g in agg.groups.values()) == 5 + 2

    def test_overflow_alert_keeps_the_storm_visible(self) -> None:
        agg = make(max_alerts_per_minute=2)
        agg.fold([error(f"E{i}") for i in range(10)], T0)
        overflow = [g for g in agg.groups.values() if g.overflow]
        assert len(overflow) == 1 and overflow[0].count == 8
        assert overflow[0].labels == {"alertname": "AppError", "severity": "warning", "overflow": "true"}
        notes = agg.due(T0 + 1)
        assert len(notes) == 3
        (o_note,) = [n for n in notes if n["labels"].get("overflow")]
        assert o_note["annotations"]["count"] == "8" and "max_alerts_per_minute=2" in o_note["annotations"]["summary"]

    def test_new_alerts_allowed_again_after_a_minute(self) -> None:
        agg = make(max_alerts_per_minute=2, overflow_alert=False)
        agg.fold([error("A"), error("B"), error("C")], T0)
        assert agg.active == 2
        agg.fold([error("C")], T0 + 30)
        assert agg.active == 2
        agg.fold([error("C")], T0 + 61)
        assert agg.active == 3 and agg.suppressed == 2

    def test_existing_alerts_keep_counting_when_capped(self) -> None:
        agg = make(max_alerts_per_minute=1, overflow_alert=False)
        agg.fold([error("A"), error("B"), error("A")], T0)
        (group,) = agg.groups.values()
        assert group.count == 2 and agg.suppressed == 1


class TestRestore:
    def test_snapshot_restore_continues_the_same_alert(self) -> None:
        agg = make()
        agg.fold([error()] * 7, T0)
        agg.due(T0 + 1)
        restored = make()
        restored.restore(agg.snapshot())
        restored.fold([error()] * 3, T0 + 5)
        assert restored.active == 1
        (note,) = restored.due(T0 + 11)
        assert (note["kind"], note["annotations"]["count"]) == ("update", "10")
        assert note["startsAt"] == "2023-11-14T22:13:20.000Z"

    def test_alert_of_a_changed_rule_still_resolves(self) -> None:
        agg = make()
        agg.fold([error()], T0)
        agg.due(T0 + 1)
        changed = dict(APP_RULE, labels={"service": "{service}"})
        restored = make([changed])
        restored.restore(agg.snapshot())
        restored.fold([error()], T0 + 2)  # a different label set now: a second alert
        assert restored.active == 2
        resolved = [n for n in restored.due(T0 + 121) if n["status"] == "resolved"]
        assert [n["labels"].get("error_type") for n in resolved] == ["KeyError"]

    @pytest.mark.parametrize("overflow", [True, False])
    def test_limiter_survives(self, overflow: bool) -> None:
        agg = make(max_alerts_per_minute=2, overflow_alert=overflow)
        agg.fold([error("A"), error("B")], T0)
        restored = make(max_alerts_per_minute=2, overflow_alert=overflow)
        restored.restore(agg.snapshot())
        restored.fold([error("C")], T0 + 10)
        assert restored.suppressed == 1
