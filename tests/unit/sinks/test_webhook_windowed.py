"""Windowed rules (sinks/webhook/windowed.py, presence.py) on crafted event-time streams.

Pure: an Aggregator, the rule, events with their own `@timestamp`, and a wall clock
passed in. Each test says when the alert must fire (at which event, not before), when
it resolves, what `for:` holds back, and what late events do.
"""

from __future__ import annotations

from typing import Any

import pytest

from parsers.dates import rfc3339_ms
from sinks.webhook.aggregate import Aggregator, Group, Timing
from sinks.webhook.config_rules import RuleConfig
from sinks.webhook.counting import FrequencyRule, MetricRule, RatioRule, SpikeRule
from sinks.webhook.presence import AbsenceRule, NewValueRule
from sinks.webhook.windowed import WindowedRule

T0 = 1_715_677_200.0  # 2024-05-14T09:00:00Z, on a whole hour (bucket boundaries are round)
WALL = 1_800_000_000.0  # the processing time: far later (old files read with --once)
KINDS: dict[str, type[WindowedRule]] = {
    "frequency": FrequencyRule, "ratio": RatioRule, "metric": MetricRule, "spike": SpikeRule,
    "absence": AbsenceRule, "new_value": NewValueRule,
}


def build(rule: dict[str, Any], lateness: float = 60.0) -> tuple[WindowedRule, Aggregator]:
    config = RuleConfig.model_validate(rule)
    agg = Aggregator([], Timing(group_wait=0.0, update_interval=10, repeat_interval=300, resolve_after=300),
                     component="alerts")
    return KINDS[config.type](config, agg, lateness), agg


def ev(t: float, **fields: Any) -> dict[str, Any]:
    return {"@timestamp": rfc3339_ms(T0 + t), **fields}


def firing(agg: Aggregator) -> list[Group]:
    return [g for g in agg.groups.values() if g.ends_at is None]


def notes(agg: Aggregator, wall: float = WALL, flush: bool = False) -> list[tuple[str, str, str]]:
    return [(n["kind"], n["labels"]["alertname"], n["startsAt"]) for n in agg.due(wall, flush=flush)]


ERRORS = {"name": "ErrorBurst", "type": "frequency", "when": {"field": "level", "equals": "ERROR"},
          "labels": {"logger": "{logger}"}, "window": "10m", "threshold": 10}


class TestFrequency:
    def test_fires_at_the_tenth_error_within_the_window_not_before(self) -> None:
        rule, agg = build(ERRORS)
        for i in range(9):
            rule.fold([ev(i * 60, level="ERROR", logger="a"), ev(i * 60, level="INFO", logger="a")], WALL)
        assert firing(agg) == []
        rule.fold([ev(9 * 60, level="ERROR", logger="a")], WALL)
        (group,) = firing(agg)
        assert group.labels == {"alertname": "ErrorBurst", "severity": "warning", "logger": "a"}
        assert group.starts_at == T0 + 540
        assert notes(agg) == [("firing", "ErrorBurst", rfc3339_ms(T0 + 540))]
        assert group.extra["value"] == "10" and group.extra["threshold"] == ">= 10" and group.extra["window"] == "10m"

    def test_errors_spread_wider_than_the_window_do_not_fire(self) -> None:
        rule, agg = build(ERRORS)
        for i in range(30):
            rule.fold([ev(i * 70, level="ERROR", logger="a")], WALL)  # 70 s apart: at most 9 in 10 minutes
        assert firing(agg) == []

    def test_each_label_set_has_its_own_window(self) -> None:
        rule, agg = build(ERRORS)
        rule.fold([ev(i, level="ERROR", logger="a" if i % 2 else "b") for i in range(19)], WALL)
        assert [g.labels["logger"] for g in firing(agg)] == ["b"]  # b: 10 (even i), a: 9

    def test_resolves_when_the_window_no_longer_holds_enough(self) -> None:
        rule, agg = build(ERRORS)
        rule.fold([ev(i, level="ERROR", logger="a") for i in range(10)], WALL)
        assert len(firing(agg)) == 1
        assert notes(agg)[0][0] == "firing"
        rule.fold([ev(700, level="INFO", logger="a")], WALL)  # the clock moves past the window; INFO does not match
        rule.fold([ev(700, level="ERROR", logger="a")], WALL)
        assert firing(agg) == []
        assert [n[0] for n in notes(agg)] == ["resolved"]

    def test_resolves_on_the_wall_clock_when_the_stream_stops(self) -> None:
        rule, agg = build(ERRORS)
        rule.fold([ev(i, level="ERROR", logger="a") for i in range(10)], WALL)
        rule.tick(WALL + 300)
        assert len(firing(agg)) == 1  # 5 minutes of silence: still 10 in the last 10 minutes
        rule.tick(WALL + 620)
        assert firing(agg) == [] and rule.states == {}

    def test_a_late_event_within_the_lateness_counts(self) -> None:
        rule, agg = build(ERRORS, lateness=60)
        rule.fold([ev(100 + i, level="ERROR", logger="a") for i in range(9)], WALL)
        rule.fold([ev(60, level="ERROR", logger="a")], WALL)  # 48 s behind the newest
        assert len(firing(agg)) == 1 and rule.late == 0

    def test_an_event_later_than_the_lateness_is_counted_as_late_and_ignored(self) -> None:
        rule, agg = build(ERRORS, lateness=60)
        rule.fold([ev(200 + i, level="ERROR", logger="a") for i in range(9)], WALL)
        rule.fold([ev(100, level="ERROR", logger="a")], WALL)  # 108 s behind
        assert firing(agg) == [] and rule.late == 1

    def test_for_holds_the_alert_pending(self) -> None:
        rule, agg = build({**ERRORS, "for": "2m"})
        rule.fold([ev(i, level="ERROR", logger="a") for i in range(10)], WALL)
        assert firing(agg) == []  # holds since t=9, pending
        rule.fold([ev(100, level="ERROR", logger="a")], WALL)
        assert firing(agg) == []
        rule.fold([ev(130, level="ERROR", logger="a")], WALL)  # 121 s after it started to hold
        (group,) = firing(agg)
        assert group.starts_at == T0 + 130

    def test_for_restarts_when_the_condition_stops_holding(self) -> None:
        rule, agg = build({**ERRORS, "for": "2m", "step": "10s"})
        rule.fold([ev(i, level="ERROR", logger="a") for i in range(10)], WALL)
        rule.fold([ev(650, level="ERROR", logger="a")], WALL)  # the first ten left the window: pending ends
        rule.fold([ev(660 + i, level="ERROR", logger="a") for i in range(9)], WALL)  # ten again since t=668
        rule.fold([ev(700, level="ERROR", logger="a")], WALL)
        assert firing(agg) == []  # pending since 668, not since 9
        rule.fold([ev(790, level="ERROR", logger="a")], WALL)
        assert len(firing(agg)) == 1

    def test_batching_does_not_change_the_outcome(self) -> None:
        stream = [ev(i * 50, level="ERROR", logger="a") for i in range(40)]
        one, agg_one = build(ERRORS)
        one.fold(stream, WALL)
        many, agg_many = build(ERRORS)
        for e in stream:
            many.fold([e], WALL)
        assert [(g.labels, g.starts_at) for g in agg_one.groups.values()] == [
            (g.labels, g.starts_at) for g in agg_many.groups.values()]


ACCESS = {"name": "HighErrorRate", "type": "ratio", "base": {"field": "log_type", "equals": "access"},
          "when": {"field": "status", "gte": 500}, "window": "5m", "step": "10s", "threshold": 0.01,
          "min_count": 100}


def requests(start: float, n: int, errors: int = 0, spacing: float = 1.0) -> list[dict[str, Any]]:
    return [ev(start + i * spacing, log_type="access", status=502 if i < errors else 200) for i in range(n)]


class TestRatio:
    def test_fires_at_the_step_after_the_share_passes_the_threshold(self) -> None:
        rule, agg = build(ACCESS)
        rule.fold(requests(0, 150, errors=1), WALL)  # 0.7 %
        rule.fold(requests(150, 10), WALL)
        assert firing(agg) == []
        rule.fold(requests(160, 9, errors=2), WALL)  # 3 of 169 = 1.8 %, within the step 160..170
        assert firing(agg) == []  # evaluated when the step ends
        rule.fold(requests(170, 1), WALL)
        (group,) = firing(agg)
        assert group.starts_at == T0 + 170
        assert group.extra["value"] == f"{3 / 169:.6g}" and group.extra["threshold"] == "> 0.01"
        assert group.count == 3

    def test_too_few_requests_never_fire(self) -> None:
        rule, agg = build(ACCESS)
        rule.fold(requests(0, 50, errors=25), WALL)
        rule.fold(requests(60, 1), WALL)
        assert firing(agg) == []

    def test_resolves_when_the_share_falls(self) -> None:
        rule, agg = build(ACCESS)
        rule.fold(requests(0, 100, errors=10), WALL)
        rule.fold(requests(100, 1), WALL)
        assert len(firing(agg)) == 1
        rule.fold(requests(101, 2000, spacing=0.1), WALL)  # 10 of 2100 < 1 % by t=260
        assert firing(agg) == []
        assert [n[0] for n in notes(agg)] == ["firing", "resolved"]  # fired and resolved before due(): both sent

    def test_below(self) -> None:
        rule, agg = build({**ACCESS, "name": "LowSuccess", "when": {"field": "status", "lt": 400},
                           "op": "below", "threshold": 0.9})
        rule.fold(requests(0, 100, errors=20), WALL)
        rule.fold(requests(100, 1), WALL)
        assert len(firing(agg)) == 1

    def test_for(self) -> None:
        rule, agg = build({**ACCESS, "for": "1m"})
        rule.fold(requests(0, 100, errors=10), WALL)
        rule.fold(requests(100, 20, errors=2, spacing=2), WALL)  # up to t=138: holding since 100
        assert firing(agg) == []
        rule.fold(requests(160, 5, errors=1, spacing=1), WALL)
        assert len(firing(agg)) == 1


LATENCY = {"name": "HighLatencyP95", "type": "metric", "when": {"field": "log_type", "equals": "access"},
           "field": "request_time", "aggregate": "p95", "op": "above", "threshold": 0.5, "window": "5m",
           "step": "10s"}


class TestMetric:
    def test_p95_above_the_threshold_fires(self) -> None:
        rule, agg = build(LATENCY)
        fast = [ev(i, log_type="access", request_time=0.1) for i in range(100)]
        rule.fold(fast, WALL)
        rule.fold([ev(100, log_type="access", request_time=0.1)], WALL)
        assert firing(agg) == []
        rule.fold([ev(101 + i, log_type="access", request_time="2.0") for i in range(8)], WALL)  # numeric text counts
        rule.fold([ev(110, log_type="access", request_time=0.1)], WALL)
        (group,) = firing(agg)
        assert float(group.extra["value"]) == pytest.approx(2.0, rel=0.01)

    def test_values_that_are_not_numbers_are_skipped(self) -> None:
        rule, agg = build({**LATENCY, "aggregate": "max", "threshold": 1})
        rule.fold([ev(0, log_type="access", request_time="-"), ev(1, log_type="access"),
                   ev(2, log_type="access", request_time=0.2)], WALL)
        rule.fold([ev(20, log_type="access", request_time=0.2)], WALL)
        assert firing(agg) == []

    @pytest.mark.parametrize(("aggregate", "threshold", "fires"), [
        pytest.param("avg", 0.24, True, id="avg"), pytest.param("avg", 0.25, False, id="avg-below"),
        pytest.param("sum", 2.8, True, id="sum"), pytest.param("max", 0.9, True, id="max"),
        pytest.param("min", 0.05, True, id="min"), pytest.param("count", 12, False, id="count"),
        pytest.param("p50", 0.15, False, id="p50"), pytest.param("p90", 0.45, True, id="p90"),
        # The rank's own value, as DDSketch does (no interpolation): the 11th of 12 is 0.5.
        pytest.param("p99", 0.45, True, id="p99"), pytest.param("p99", 0.55, False, id="p99-below"),
    ])
    def test_aggregates(self, aggregate: str, threshold: float, fires: bool) -> None:
        rule, agg = build({**LATENCY, "aggregate": aggregate, "threshold": threshold})
        values = [0.1] * 9 + [1.0]  # and two 0.5: 12 values, sum 2.9, avg 0.2417, sorted ... 0.5 0.5 1.0
        rule.fold([ev(i, log_type="access", request_time=v) for i, v in enumerate([*values, 0.5, 0.5])], WALL)
        rule.fold([ev(20, log_type="access", request_time=0.1)], WALL)
        assert bool(firing(agg)) is fires


SILENT = {"name": "ServiceSilent", "type": "absence", "when": {"field": "log_type", "equals": "application"},
          "labels": {"logger": "{logger}"}, "window": "5m"}


def app(t: float, logger: str) -> dict[str, Any]:
    return ev(t, log_type="application", logger=logger, level="INFO")


class TestAbsence:
    def test_a_logger_that_stops_fires_when_the_others_are_five_minutes_further(self) -> None:
        rule, agg = build(SILENT, lateness=60)
        for t in range(0, 460, 10):
            rule.fold([app(t, "a")] + ([app(t, "b")] if t <= 100 else []), WALL)
        assert firing(agg) == []  # a is at 450: 450 - 60 - 100 < 300
        rule.fold([app(460, "a")], WALL)
        (group,) = firing(agg)
        assert group.labels["logger"] == "b"
        assert group.starts_at == T0 + 400  # silent since its last event + 5 minutes

    def test_resolves_when_the_logger_logs_again(self) -> None:
        rule, agg = build(SILENT, lateness=0)
        rule.fold([app(0, "a"), app(0, "b")], WALL)
        rule.fold([app(400, "a")], WALL)
        assert [g.labels["logger"] for g in firing(agg)] == ["b"]
        rule.fold([app(410, "b")], WALL)
        assert firing(agg) == []
        assert [n[0] for n in notes(agg)] == ["firing", "resolved"]

    def test_the_wall_clock_fires_it_when_everything_stops(self) -> None:
        rule, agg = build(SILENT, lateness=0)
        rule.fold([app(0, "a")], WALL)
        rule.tick(WALL + 299)
        assert firing(agg) == []
        rule.tick(WALL + 301)
        assert len(firing(agg)) == 1

    def test_a_new_logger_is_not_silent_before_it_was_seen(self) -> None:
        rule, agg = build(SILENT, lateness=0)
        rule.fold([app(1000, "a")], WALL)
        assert firing(agg) == [] and list(rule.states) == [("a",)]

    def test_forgotten_after_forget_after(self) -> None:
        rule, agg = build({**SILENT, "forget_after": "1h"}, lateness=0)
        rule.fold([app(0, "a"), app(0, "b")], WALL)
        rule.fold([app(400, "a")], WALL)
        assert len(firing(agg)) == 1
        rule.fold([app(3700, "a")], WALL)
        assert firing(agg) == [] and ("b",) not in rule.states


SPIKE = {"name": "ErrorsDoubled", "type": "spike", "when": {"field": "level", "equals": "ERROR"},
         "window": "1m", "step": "10s", "factor": 2, "min_count": 5}


class TestSpike:
    def test_twice_the_previous_window_fires(self) -> None:
        rule, agg = build(SPIKE)
        rule.fold([ev(i * 6, level="ERROR") for i in range(10)], WALL)  # 10 in the first minute
        rule.fold([ev(60 + i * 3, level="ERROR") for i in range(19)], WALL)  # 19 in the second
        rule.fold([ev(120, level="ERROR")], WALL)
        assert firing(agg) == []  # 19 < 2 x 10
        rule.fold([ev(121 + i, level="ERROR") for i in range(8)], WALL)
        rule.fold([ev(130, level="ERROR")], WALL)
        (group,) = firing(agg)  # window 70..130: 16+9 = 25 >= 2 x 12 (previous 10..70)
        assert group.starts_at == T0 + 130

    def test_no_reference_before_two_whole_windows(self) -> None:
        rule, agg = build({**SPIKE, "min_previous": 0})
        rule.fold([ev(i, level="ERROR") for i in range(50)], WALL)
        rule.fold([ev(70, level="ERROR")], WALL)
        assert firing(agg) == []


NEW = {"name": "NewErrorType", "type": "new_value", "when": {"field": "level", "equals": "ERROR"},
       "field": "error.type", "labels": {"error_type": "{error.type}"}, "learn_for": "1m", "window": "10m"}


class TestNewValue:
    def test_a_value_first_seen_after_learning_fires_at_that_event(self) -> None:
        rule, agg = build(NEW)
        rule.fold([ev(0, level="ERROR", error={"type": "KeyError"}),
                   ev(30, level="ERROR", error={"type": "ValueError"})], WALL)
        rule.fold([ev(120, level="ERROR", error={"type": "KeyError"})], WALL)
        assert firing(agg) == []
        rule.fold([ev(130, level="ERROR", error={"type": "TimeoutError"})], WALL)
        (group,) = firing(agg)
        assert group.labels["error_type"] == "TimeoutError" and group.starts_at == T0 + 130
        assert group.extra["value"] == "TimeoutError"
        rule.fold([ev(140, level="ERROR", error={"type": "TimeoutError"})], WALL)
        assert group.count == 1  # seen now: not new again
        rule.fold([ev(740, level="ERROR", error={"type": "KeyError"}, **{"x": 1})], WALL)
        rule.tick(WALL)
        assert firing(agg) == []

    def test_a_value_not_seen_within_the_history_is_new_again(self) -> None:
        rule, agg = build({**NEW, "history": "1h"})
        rule.fold([ev(0, level="ERROR", error={"type": "KeyError"})], WALL)
        rule.fold([ev(3800, level="ERROR", error={"type": "KeyError"})], WALL)
        assert len(firing(agg)) == 1

    def test_memory_is_bounded(self) -> None:
        rule, _ = build({**NEW, "max_values": 100, "learn_for": "0s"})
        rule.fold([ev(i, level="ERROR", error={"type": f"E{i}"}) for i in range(1000)], WALL)
        assert len(rule.seen) == 100 and rule.forgotten == 900


class TestBounds:
    def test_label_sets_beyond_max_keys_are_counted_and_ignored(self) -> None:
        rule, _ = build({**ERRORS, "max_keys": 3})
        rule.fold([ev(0, level="ERROR", logger=f"l{i}") for i in range(10)], WALL)
        assert len(rule.states) == 3 and rule.overflow == 7

    def test_an_event_from_the_future_is_taken_as_now(self) -> None:
        rule, _ = build(ERRORS)
        rule.fold([{"@timestamp": "2099-01-01T00:00:00.000Z", "level": "ERROR", "logger": "a"}], WALL)
        assert rule.states[("a",)].max_ts == WALL

    def test_snapshot_and_restore_keep_windows_and_the_firing_alert(self) -> None:
        rule, agg = build(ACCESS)
        rule.fold(requests(0, 100, errors=10), WALL)
        rule.fold(requests(100, 1), WALL)
        (group,) = firing(agg)
        snap, groups = rule.snapshot(), agg.snapshot()
        again, agg2 = build(ACCESS)
        agg2.restore(groups)
        again.restore(snap, WALL + 5)
        assert again.states[()].group is agg2.groups[group.fingerprint]
        again.fold(requests(101, 1), WALL + 5)
        again.fold(requests(110, 1), WALL + 5)  # the next step: still above: the same alert, not a new one
        assert list(agg2.groups) == [group.fingerprint]


class TestConfig:
    @pytest.mark.parametrize(("rule", "message"), [
        pytest.param({"type": "frequency", "window": "1m"}, "needs ['threshold']", id="missing"),
        pytest.param({"type": "frequency", "window": "1m", "threshold": 3, "factor": 2}, "do not apply",
                     id="foreign-option"),
        pytest.param({"type": "ratio", "window": "1m", "threshold": 5, "base": {"field": "a", "exists": True}},
                     "fraction", id="ratio-percent"),
        pytest.param({"type": "event", "for": "1m"}, "do not apply", id="event-for"),
        pytest.param({"type": "metric", "window": "1m", "threshold": 1, "field": "x", "aggregate": "p42"},
                     "aggregate", id="bad-aggregate"),
    ])
    def test_invalid_rules_are_explained(self, rule: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message.replace("[", r"\[")):
            RuleConfig.model_validate({"name": "R", "when": {"field": "level", "equals": "ERROR"}, **rule})
