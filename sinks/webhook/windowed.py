"""Windowed alert rules on event time: the engine every windowed rule type shares (types: counting.py,
presence.py).

Each rule keeps one `KeyState` per label set: buckets of `step` seconds (windows.py),
the newest event time of that label set (its clock), whether the condition holds
(pending since, for `for:`), the firing group, and the latest sample events.

Time is per label set, so files read at different speeds (`--once` over old logs)
do not make each other late: an event counts when it is at most `allowed_lateness`
older than the newest of its label set; older ones are counted (`late`) and ignored.
While a label set receives nothing, its clock moves on with the wall clock
(`tick`), so alerts resolve when a live stream stops.

Evaluation: `frequency` and `new_value` check at each event (a count only grows with
events, so it fires at the very event that reaches the threshold); `ratio`, `metric`
and `spike` are evaluated each time a label set's clock enters a new step, over the
window of whole steps that ended there, like a rule's evaluation interval on event time.
Either way the result does not depend on how events were batched. At shutdown
`flush` evaluates the partial step too, so `--once` reports what the data shows.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from parsers.dates import rfc3339_ms
from pipeline.event import Event
from sinks.webhook.aggregate import Aggregator, Group
from sinks.webhook.config_rules import RuleConfig
from sinks.webhook.rules import CompiledRule
from sinks.webhook.windows import event_time, format_duration

SAMPLE_FIELDS = 16
SAMPLE_CHARS = 500


def trim_sample(event: Event) -> dict[str, Any]:
    """A sample event for a notification: top-level scalars, long strings cut (nested values as text)."""
    out: dict[str, Any] = {}
    for k, v in event.items():
        if len(out) >= SAMPLE_FIELDS:
            break
        if v.__class__ is str:
            out[k] = v if len(v) <= SAMPLE_CHARS else v[: SAMPLE_CHARS - 1] + "…"
        elif v is None or v.__class__ in (int, float, bool):
            out[k] = v
        elif isinstance(v, dict) and k in ("error", "http", "kubernetes"):
            out[k] = {ik: iv for ik, iv in list(v.items())[:SAMPLE_FIELDS] if iv.__class__ in (str, int, float, bool)}
    return out


def fmt(value: float) -> str:
    return f"{value:.6g}"


class KeyState:
    """One label set of a windowed rule."""

    __slots__ = ("buckets", "cur", "group", "key", "last", "max_ts", "since", "total", "value", "wall")

    def __init__(self, key: tuple[str, ...], ts: float, wall: float, bucket: int, samples: int) -> None:
        self.key = key
        self.buckets: dict[int, Any] = {}
        self.cur = bucket  # the bucket of max_ts
        self.max_ts = ts  # the newest event time of this label set: its clock
        self.wall = wall  # the wall time max_ts was reached (the clock runs on from there)
        self.total = 0  # frequency: matches in the window ending with `cur`
        self.since: float | None = None  # event time the condition started to hold
        self.group: Group | None = None
        self.last: deque[Event] = deque(maxlen=max(samples, 1))
        self.value: float | None = None  # new_value: event time of the new value

    def now(self, wall: float) -> float:
        return self.max_ts + max(0.0, wall - self.wall)


class WindowedRule:
    """The engine: predicate, clocks, lateness, buckets, evaluation, `for:`, groups, persistence."""

    boundary_evaluation = True  # evaluate when a label set's clock enters a new step

    def __init__(self, config: RuleConfig, aggregator: Aggregator, lateness: float) -> None:
        self.config = config
        self.rule = CompiledRule(config)
        self.name = config.name
        self.aggregator = aggregator
        self.lateness = lateness
        self.step = config.bucket
        self.window = config.window or 300.0
        self.n = max(1, round(self.window / self.step))  # buckets in the window
        self.span = self.n  # buckets kept
        self.for_ = config.for_
        self.predicate = self.rule.predicate
        self.states: dict[tuple[str, ...], KeyState] = {}
        self.started: float | None = None  # the first event time this rule saw
        self.matches = 0
        self.late = 0  # events older than allowed_lateness behind their label set
        self.overflow = 0  # events of label sets beyond max_keys

    # -- folding ---------------------------------------------------------------------
    def fold(self, events: list[Event], wall: float) -> int:
        """Fold a batch; returns how many events counted."""
        predicate, key_of, states, step, observe = self.predicate, self.rule.key, self.states, self.step, self.observe
        horizon = wall + self.lateness  # an event time beyond it is a clock error: taken as now
        counted = 0
        for event in events:
            if not predicate(event):
                continue
            ts = event_time(event, wall)
            if ts > horizon:
                ts = wall
            key = key_of(event)
            st = states.get(key)
            b = int(ts // step)
            if st is None:
                if len(states) >= self.config.max_keys:
                    self.overflow += 1
                    continue
                st = states[key] = KeyState(key, ts, wall, b, self.config.samples)
                if self.started is None or ts < self.started:
                    self.started = ts
            elif ts > st.max_ts:
                if b > st.cur:
                    self.advance(st, b)
                st.max_ts = ts
                st.wall = wall
            elif ts < st.max_ts - self.lateness:
                self.late += 1
                continue
            counted += 1
            observe(st, event, ts, b)
        self.matches += counted
        return counted

    def observe(self, st: KeyState, event: Event, ts: float, b: int) -> None:
        raise NotImplementedError

    def measure(self, st: KeyState, end: int) -> tuple[bool, float | None, dict[str, float]]:
        """Over the window of buckets ending with `end`: (holds, value, details for the notification)."""
        raise NotImplementedError

    # -- time --------------------------------------------------------------------------
    def advance(self, st: KeyState, b: int) -> None:
        """The clock of `st` enters bucket `b`: evaluate the step(s) that ended, drop old buckets."""
        if self.boundary_evaluation:
            self.evaluate(st, st.cur)
            if b - 1 > st.cur:  # idle steps passed: evaluate the latest whole window too
                self.prune(st, b - 1)
                self.evaluate(st, b - 1)
        st.cur = b
        self.prune(st, b)

    def prune(self, st: KeyState, b: int) -> None:
        oldest = b - self.span
        for old in [i for i in st.buckets if i <= oldest]:
            del st.buckets[old]

    def tick(self, wall: float) -> None:
        """Let idle label sets' clocks run on with the wall clock; drop label sets with nothing left."""
        for key, st in list(self.states.items()):
            b = int(st.now(wall) // self.step)
            if b > st.cur:
                self.advance(st, b)
            if not st.buckets and st.group is None and st.since is None:
                del self.states[key]

    def flush(self) -> None:
        """At shutdown: evaluate the current partial step of every label set."""
        for st in self.states.values():
            if self.boundary_evaluation:
                self.evaluate(st, st.cur, at=st.max_ts)
            elif st.group is not None:
                self.describe(st, st.group, st.total, {"count": st.total})

    # -- decisions ---------------------------------------------------------------------
    def evaluate(self, st: KeyState, end: int, at: float | None = None) -> None:
        holds, value, details = self.measure(st, end)
        self.transition(st, holds, value, details, (end + 1) * self.step if at is None else at)

    def transition(self, st: KeyState, holds: bool, value: float | None, details: dict[str, float], at: float) -> None:
        if not holds:
            st.since = None
            if st.group is not None:
                self.aggregator.resolve(st.group, at)
                st.group = None
            return
        if st.since is None:
            st.since = at
        if st.group is None and at - st.since >= self.for_:
            st.group = self.aggregator.open_windowed(self.rule, st.key, at, st.wall)
        group = st.group
        if group is not None:
            self.describe(st, group, value, details)

    def describe(self, st: KeyState, group: Group, value: float | None, details: dict[str, float]) -> None:
        """Refresh what the notification says: value, threshold, window, count, annotations, samples."""
        count = int(details.get("count", 0))
        extra = {"value": "" if value is None else fmt(value), "window": format_duration(self.window)}
        threshold = self.threshold_text()
        if threshold:
            extra["threshold"] = threshold
        context = {
            "value": extra["value"],
            "threshold": threshold,
            "window": extra["window"],
            "count": count,
            "rule": self.name,
            **{k: fmt(v) for k, v in details.items()},
        }
        if value is not None and self.config.type == "ratio":
            context["percent"] = f"{value * 100:.2f}"
        samples = [trim_sample(e) for e in st.last] if self.config.samples else []
        latest = st.last[-1] if st.last else {}
        group.annotations = self.rule.annotations({**latest, "alert": context})
        extra["last_seen"] = rfc3339_ms(st.max_ts)  # event time, like startsAt (not the processing time)
        group.extra = extra
        if samples:
            lines = [f"{s.get('@timestamp', '')} {str(s.get('message', ''))[:200]}".strip() for s in samples]
            group.extra["samples"] = "\n".join(lines)
        group.samples = samples
        group.count = count
        group.last_seen = st.wall

    def threshold_text(self) -> str:
        c = self.config
        if c.type == "frequency":
            return f">= {fmt(c.threshold or 0)}"
        if c.type in ("ratio", "metric"):
            return f"{'>' if c.op == 'above' else '<'} {fmt(c.threshold or 0)}"
        if c.type == "spike":
            return f"{'x' if c.direction == 'up' else '/'}{fmt(c.factor or 0)}"
        return ""

    # -- persistence -------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "signature": self.rule.signature,
            "started": self.started,
            "keys": [
                {
                    "key": list(st.key),
                    "buckets": [[b, self.dump_bucket(v)] for b, v in st.buckets.items()],
                    "cur": st.cur,
                    "max_ts": st.max_ts,
                    "total": st.total,
                    "since": st.since,
                    "value": st.value,
                    "group": None if st.group is None else st.group.fingerprint,
                    "last": [trim_sample(e) for e in st.last],
                }
                for st in self.states.values()
            ],
        }

    def restore(self, data: dict[str, Any], wall: float) -> None:
        """Load a snapshot taken under the same rule definition; clocks resume from `wall` (now), so the
        time the process was down does not count as silence."""
        if data.get("signature") != self.rule.signature:
            return
        self.started = data.get("started")
        for item in data.get("keys") or ():
            key = tuple(str(k) for k in item["key"])
            st = KeyState(key, float(item["max_ts"]), wall, int(item["cur"]), self.config.samples)
            st.buckets = {int(b): self.load_bucket(v) for b, v in item["buckets"]}
            st.total = int(item.get("total") or 0)
            st.since = item.get("since")
            st.value = item.get("value")
            st.last.extend(item.get("last") or [])
            fp = item.get("group")
            if fp is not None:
                group = self.aggregator.groups.get(fp)
                st.group = group if group is not None and group.ends_at is None else None
            self.states[key] = st

    def dump_bucket(self, value: Any) -> Any:
        return value

    def load_bucket(self, value: Any) -> Any:
        return value
