"""Rules about whether events come at all: `absence` (a label set fell silent) and `new_value`.

`absence`: each label set remembers the newest event time it logged. The rule's
reference clock is the newest event time of any of its label sets (running on with
the wall clock while nothing arrives, so a live stream that stops entirely still
fires). A label set is silent when the reference clock, less `allowed_lateness`
(the slack for a stream that is read behind the others), is `window` past its newest
event: the alert fires with startsAt = that event + window, and resolves at the
label set's next event. A label set silent for `forget_after` is forgotten.

`new_value`: the values of `field` seen within `history` are remembered (at most
`max_values`, oldest first out). A value not among them fires an alert for the
label set of its event, at that event; it resolves `window` later. Values seen in
the first `learn_for` of event time are learned without alerting.
"""

from __future__ import annotations

from typing import Any

from parsers.fieldpath import compile_getter
from pipeline.event import Event
from pipeline.template import to_text
from sinks.webhook.aggregate import Aggregator
from sinks.webhook.config_rules import RuleConfig
from sinks.webhook.windowed import KeyState, WindowedRule


class AbsenceRule(WindowedRule):
    boundary_evaluation = False

    def __init__(self, config: RuleConfig, aggregator: Aggregator, lateness: float) -> None:
        super().__init__(config, aggregator, lateness)
        self.ref_ts = float("-inf")  # the newest event time of the rule
        self.ref_wall = 0.0
        self.ref_step = -1  # the step of ref_ts last evaluated

    def observe(self, st: KeyState, event: Event, ts: float, b: int) -> None:
        st.last.append(event)
        if ts > self.ref_ts:
            self.ref_ts = ts
            self.ref_wall = st.wall
        if (st.group is not None or st.since is not None) and ts >= st.max_ts:
            self.transition(st, False, None, {}, ts)  # it logs again: resolved at this event

    def advance(self, st: KeyState, b: int) -> None:
        st.cur = b

    def fold(self, events: list[Event], wall: float) -> int:
        counted = super().fold(events, wall)
        if counted:
            step = int(self.ref_ts // self.step)
            if step > self.ref_step:  # the reference clock entered a new step: check every label set
                self.ref_step = step
                self.check(self.ref_ts)
        return counted

    def tick(self, wall: float) -> None:
        if self.states:
            self.check(self.ref_ts + max(0.0, wall - self.ref_wall))

    def flush(self) -> None:
        if self.states:
            self.check(self.ref_ts)

    def check(self, ref: float) -> None:
        now = ref - self.lateness
        window, forget = self.window, self.config.forget_after
        for key, st in list(self.states.items()):
            silence = now - st.max_ts
            if silence >= forget:
                self.transition(st, False, None, {}, st.max_ts + forget)
                del self.states[key]
            elif silence >= window:
                if st.since is None:
                    st.since = st.max_ts + window  # silent since then, whenever this check runs
                self.transition(st, True, silence, {"count": 0, "silent_for": silence}, now)
            elif st.since is not None or st.group is not None:
                self.transition(st, False, None, {}, now)

    def describe(self, st: KeyState, group: Any, value: float | None, details: dict[str, float]) -> None:
        super().describe(st, group, value, details)
        group.extra["threshold"] = f">= {group.extra['window']} silent"
        if group.starts_at is not None and st.since is not None:
            group.starts_at = min(group.starts_at, st.since + self.for_)

    def snapshot(self) -> dict[str, Any]:
        data = super().snapshot()
        data["ref_ts"] = None if self.ref_ts == float("-inf") else self.ref_ts
        return data

    def restore(self, data: dict[str, Any], wall: float) -> None:
        super().restore(data, wall)
        if data.get("signature") == self.rule.signature and data.get("ref_ts") is not None:
            self.ref_ts = float(data["ref_ts"])
            self.ref_wall = wall
            self.ref_step = int(self.ref_ts // self.step)


class NewValueRule(WindowedRule):
    boundary_evaluation = False

    def __init__(self, config: RuleConfig, aggregator: Aggregator, lateness: float) -> None:
        super().__init__(config, aggregator, lateness)
        assert config.field is not None
        self.get = compile_getter(config.field)
        self.seen: dict[str, float] = {}  # value -> newest event time; insertion order ~ oldest first
        self.forgotten = 0  # values dropped by max_values
        self.ref_ts = float("-inf")  # the rule's newest event time: new values' alerts expire by it
        self.ref_wall = 0.0

    def observe(self, st: KeyState, event: Event, ts: float, b: int) -> None:
        raw = self.get(event)
        if raw is None or raw == "":
            return
        value = to_text(raw)
        seen = self.seen
        last = seen.get(value)
        if last is not None and ts - last <= self.config.history:
            if ts - last > 60.0:  # keep the order roughly by recency (not per event: a dict move costs)
                del seen[value]
                seen[value] = ts
            return
        if last is not None:
            del seen[value]
        seen[value] = ts
        if len(seen) > self.config.max_values:
            del seen[next(iter(seen))]
            self.forgotten += 1
        if self.started is not None and ts - self.started < self.config.learn_for:
            return  # learning
        st.last.append(event)
        st.value = ts
        st.total += 1
        self.transition(st, True, 1.0, {"count": st.total}, ts)

    def advance(self, st: KeyState, b: int) -> None:
        st.cur = b

    def fold(self, events: list[Event], wall: float) -> int:
        counted = super().fold(events, wall)
        for st in self.states.values():
            if st.max_ts > self.ref_ts:
                self.ref_ts, self.ref_wall = st.max_ts, st.wall
        self.expire(self.ref_ts)
        return counted

    def tick(self, wall: float) -> None:
        self.expire(self.ref_ts + max(0.0, wall - self.ref_wall))

    def expire(self, ref: float) -> None:
        """Resolve the alerts of values that appeared `window` before the rule's newest event time."""
        for key, st in list(self.states.items()):
            if st.value is not None and ref - st.value >= self.window:
                self.transition(st, False, None, {}, st.value + self.window)
                st.value = None
                st.total = 0
            if st.value is None and st.group is None:
                del self.states[key]

    def flush(self) -> None:
        for st in self.states.values():
            if st.group is not None:
                self.describe(st, st.group, 1.0, {"count": st.total})

    def describe(self, st: KeyState, group: Any, value: float | None, details: dict[str, float]) -> None:
        super().describe(st, group, value, details)
        group.extra.pop("value", None)
        if st.last:
            group.extra["value"] = to_text(self.get(st.last[-1]))

    def snapshot(self) -> dict[str, Any]:
        data = super().snapshot()
        data["seen"] = list(self.seen.items())
        return data

    def restore(self, data: dict[str, Any], wall: float) -> None:
        super().restore(data, wall)
        if data.get("signature") == self.rule.signature:
            self.seen = {str(v): float(t) for v, t in data.get("seen") or ()}
            for st in self.states.values():
                if st.max_ts > self.ref_ts:
                    self.ref_ts, self.ref_wall = st.max_ts, wall
