"""Alert grouping state: fold matching events into alerts and decide when to notify.

Pure: no I/O, no tasks, time passed in (`now`, wall-clock seconds, so the state can
be persisted and resumed). The sink calls `fold(events, now)` for each batch and
`due(now)` on a timer; `due` returns the notifications to send.

An alert ("group") is identified by the fingerprint of its rendered labels. Its life:
first match -> `firing` notification after group_wait -> `update` when the count
changed (at most every update_interval) -> `repeat` every repeat_interval while
nothing changed -> `resolved` after resolve_after without a match (then forgotten).

Windowed rules (windowed.py, presence.py) open and resolve their groups themselves
(`open_windowed`, `resolve`), at event times; this class still times their
notifications, and a group that fired and resolved before its first notification is
sent as `firing` then `resolved`, so every alert that fired is delivered.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from parsers.dates import rfc3339_ms
from pipeline.event import Event
from pipeline.template import Template
from sinks.webhook.rules import CompiledRule, fingerprint

Notification = dict[str, Any]
STATE_VERSION = 1
OVERFLOW_LABEL = "overflow"


@dataclass(frozen=True)
class Timing:
    group_wait: float = 1.0
    update_interval: float = 10.0
    repeat_interval: float = 300.0
    resolve_after: float = 300.0


@dataclass(slots=True, eq=False)  # eq=False: hashed by identity, used as a dict key in fold()
class Group:
    fingerprint: str
    rule: str
    labels: dict[str, str]
    first_seen: float
    last_seen: float
    annotations: dict[str, str] = field(default_factory=dict)
    count: int = 0
    notified_at: float | None = None  # None: not notified yet
    notified_count: int = 0
    signature: str = ""  # of the rule that opened it (its key is meaningful only under it)
    key: tuple[str, ...] | None = None
    overflow: bool = False
    # Windowed rules: event times of the start and the end, the computed value's annotations, samples.
    starts_at: float | None = None
    ends_at: float | None = None
    windowed: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    refs: list[tuple[CompiledRule, tuple[str, ...] | None]] = field(default_factory=list)  # index entries

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "labels": self.labels,
            "annotations": self.annotations,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
            "notified_at": self.notified_at,
            "notified_count": self.notified_count,
            "signature": self.signature,
            "key": None if self.key is None else list(self.key),
            "overflow": self.overflow,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "windowed": self.windowed,
            "extra": self.extra,
            "samples": self.samples,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Group:
        key = data.get("key")
        return cls(
            fingerprint=str(data["fingerprint"]),
            rule=str(data["rule"]),
            labels={str(k): str(v) for k, v in data["labels"].items()},
            annotations={str(k): str(v) for k, v in (data.get("annotations") or {}).items()},
            first_seen=float(data["first_seen"]),
            last_seen=float(data["last_seen"]),
            count=int(data["count"]),
            notified_at=None if data.get("notified_at") is None else float(data["notified_at"]),
            notified_count=int(data.get("notified_count") or 0),
            signature=str(data.get("signature") or ""),
            key=None if key is None else tuple(str(k) for k in key),
            overflow=bool(data.get("overflow")),
            starts_at=None if data.get("starts_at") is None else float(data["starts_at"]),
            ends_at=None if data.get("ends_at") is None else float(data["ends_at"]),
            windowed=bool(data.get("windowed")),
            extra={str(k): str(v) for k, v in (data.get("extra") or {}).items()},
            samples=list(data.get("samples") or []),
        )


class RateLimiter:
    """At most `limit` grants in any rolling `window` seconds."""

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        times = self._times
        if times and times[-1] > now + self.window:  # the wall clock went back a lot: start over
            times.clear()
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            return False
        times.append(now)
        return True

    def wait_time(self, now: float) -> float:
        """Seconds until allow() would grant (0: now)."""
        times = self._times
        while times and now - times[0] >= self.window:
            times.popleft()
        return 0.0 if len(times) < self.limit else max(0.0, times[0] + self.window - now)

    def snapshot(self) -> list[float]:
        return list(self._times)

    def restore(self, times: list[float]) -> None:
        self._times = deque(sorted(float(t) for t in times)[-self.limit :])


class Aggregator:
    def __init__(
        self,
        rules: list[CompiledRule],
        timing: Timing,
        *,
        max_alerts_per_minute: int = 60,
        overflow_alert: bool = True,
        generator_url: str = "http://pipeline/{component}",
        component: str = "webhook",
        host: str = "",
    ) -> None:
        self.rules = rules
        self.rules_by_name = {r.name: r for r in rules}
        self.timing = timing
        self.max_alerts_per_minute = max_alerts_per_minute
        self.overflow_alert = overflow_alert
        self.limiter = RateLimiter(max_alerts_per_minute)
        self._url_template = Template(generator_url)
        self._url_context = {"component": component, "host": host}
        self._urls: dict[str, str] = {}
        self.groups: dict[str, Group] = {}
        self.suppressed = 0  # matches held back by max_alerts_per_minute (the metric)
        self._pending: list[Notification] = []  # owed by groups replaced before due() ran
        self.revision = 0  # bumped when a windowed alert opens or resolves (the sink persists then)

    # -- folding (the hot path: one loop per rule over the batch) -------------------
    def fold(self, events: list[Event], now: float) -> int:
        """Fold matching events into groups; returns the number of matches."""
        total = 0
        for rule in self.rules:
            predicate = rule.predicate
            key_of = rule.key
            index = rule.index
            latest: dict[Group, Event] = {}
            denied: set[tuple[str, ...]] = set()
            matched = 0
            held = 0
            for event in events:
                if not predicate(event):
                    continue
                matched += 1
                key = key_of(event)
                group = index.get(key)
                if group is None:
                    if key in denied:
                        held += 1
                        continue
                    group = self._open(rule, key, now)
                    if group is None:
                        denied.add(key)
                        held += 1
                        continue
                group.count += 1
                latest[group] = event
            if not matched:
                continue
            # Per group, not per event: annotations come from the group's latest event.
            for group, event in latest.items():
                group.last_seen = now
                group.annotations = rule.annotations(event)
            if held:
                self.suppressed += held
                if self.overflow_alert:
                    overflow = self._overflow(rule, now)
                    overflow.count += held
                    overflow.last_seen = now
            rule.matches += matched
            total += matched
        return total

    def _open(self, rule: CompiledRule, key: tuple[str, ...], now: float) -> Group | None:
        labels = rule.labels_for_key(key)
        fp = fingerprint(labels)
        group = self.groups.get(fp)
        if group is None:  # (not None: another rule, or a restored group, has the same labels)
            if not self.limiter.allow(now):
                return None
            group = Group(fp, rule.name, labels, now, now, signature=rule.signature, key=key)
            self.groups[fp] = group
        rule.index[key] = group
        group.refs.append((rule, key))
        return group

    def _overflow(self, rule: CompiledRule, now: float) -> Group:
        group: Group | None = rule.overflow_group
        if group is None:
            labels = {**rule.static_labels(), OVERFLOW_LABEL: "true"}
            fp = fingerprint(labels)
            group = self.groups.get(fp)
            if group is None:  # the overflow alert bypasses the limit: one per rule at most
                group = Group(fp, rule.name, labels, now, now, signature=rule.signature, overflow=True)
                self.groups[fp] = group
            group.annotations = {
                "summary": f"Rule {rule.name}: matches beyond max_alerts_per_minute="
                f"{self.max_alerts_per_minute} new alerts were not alerted one by one",
                "description": "count is the number of matching events whose own alert was not opened.",
            }
            rule.overflow_group = group
            group.refs.append((rule, None))
        return group

    # -- windowed rules -------------------------------------------------------------
    def open_windowed(self, rule: CompiledRule, key: tuple[str, ...], starts_at: float, now: float) -> Group | None:
        """A firing alert of a windowed rule; None when max_alerts_per_minute holds it back (retried later)."""
        labels = rule.labels_for_key(key)
        fp = fingerprint(labels)
        group = self.groups.get(fp)
        if group is not None and group.ends_at is None:
            return group  # (another rule renders the same labels, or a restored group)
        if group is not None:  # resolved but not notified yet: the new firing replaces it after
            self.due_resolved(group, now)
        if not self.limiter.allow(now):
            self.suppressed += 1
            return None
        group = Group(fp, rule.name, labels, now, now, signature=rule.signature, key=key)
        group.windowed = True
        group.starts_at = starts_at
        self.groups[fp] = group
        self.revision += 1
        return group

    def resolve(self, group: Group, ends_at: float) -> None:
        """The windowed rule's condition stopped holding at event time `ends_at`: notify `resolved` next."""
        group.ends_at = max(ends_at, group.starts_at or ends_at)
        self.revision += 1

    def due_resolved(self, group: Group, now: float) -> None:
        """Queue what a resolved group still owes (firing if never notified, then resolved) and forget it."""
        if group.notified_at is None:
            self._pending.append(self._notify(group, "firing", now))
        self._pending.append(self._notify(group, "resolved", now))
        self._forget(group)

    # -- timing --------------------------------------------------------------------
    def due(self, now: float, *, flush: bool = False) -> list[Notification]:
        """Notifications due at `now`. `flush` (shutdown): notify new groups and changed counts now."""
        t = self.timing
        notes, self._pending = self._pending, []
        for group in list(self.groups.values()):
            if group.ends_at is not None:
                if flush or group.notified_at is not None or now - group.first_seen >= t.group_wait:
                    self.due_resolved(group, now)
                    notes.extend(self._pending)
                    self._pending.clear()
            elif group.notified_at is None:
                if flush or now - group.first_seen >= t.group_wait:
                    notes.append(self._notify(group, "firing", now))
            elif not group.windowed and now - group.last_seen >= t.resolve_after:
                notes.append(self._notify(group, "resolved", now))
                self._forget(group)
            elif group.count != group.notified_count and (flush or now - group.notified_at >= t.update_interval):
                notes.append(self._notify(group, "update", now))
            elif now - group.notified_at >= t.repeat_interval:
                notes.append(self._notify(group, "repeat", now))
        return notes

    def _notify(self, group: Group, kind: str, now: float) -> Notification:
        resolved = kind == "resolved"
        annotations = dict(group.annotations)
        annotations["count"] = str(group.count)
        annotations["first_seen"] = rfc3339_ms(group.first_seen)
        annotations["last_seen"] = rfc3339_ms(group.last_seen)
        group.notified_at = now
        group.notified_count = group.count
        if group.windowed:
            starts = group.starts_at if group.starts_at is not None else group.first_seen
            annotations["first_seen"] = rfc3339_ms(starts)
            annotations.update(group.extra)
            # Resolved: the event time it stopped holding. Firing: a horizon that repeats push forward.
            ends = group.ends_at if resolved and group.ends_at is not None else now + self.timing.resolve_after
        else:
            starts = group.first_seen
            # Resolved: now. Firing: when it resolves unless another event matches.
            ends = now if resolved else group.last_seen + self.timing.resolve_after
        note: Notification = {
            "status": "resolved" if resolved else "firing",
            "kind": kind,
            "fingerprint": group.fingerprint,
            "rule": group.rule,
            "labels": group.labels,
            "annotations": annotations,
            "startsAt": rfc3339_ms(starts),
            "endsAt": rfc3339_ms(ends),
            "generatorURL": self._url(group.rule),
        }
        if group.samples:
            note["samples"] = group.samples
        return note

    def _url(self, rule: str) -> str:
        url = self._urls.get(rule)
        if url is None:
            url = self._urls[rule] = self._url_template.render({**self._url_context, "rule": rule})
        return url

    def _forget(self, group: Group) -> None:
        del self.groups[group.fingerprint]
        for rule, key in group.refs:
            if key is None:
                if rule.overflow_group is group:
                    rule.overflow_group = None
            elif rule.index.get(key) is group:
                del rule.index[key]
        group.refs.clear()

    # -- persistence ---------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "groups": [g.to_json() for g in self.groups.values()],
            "limiter": self.limiter.snapshot(),
            "owed": self._pending,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load groups saved by snapshot(); a group whose rule changed keeps firing until it resolves."""
        for item in data.get("groups") or ():
            group = Group.from_json(item)
            self.groups[group.fingerprint] = group
            rule = self.rules_by_name.get(group.rule)
            if rule is None or rule.signature != group.signature:
                continue  # no new matches will reach it: it resolves after resolve_after
            if group.overflow:
                rule.overflow_group = group
                group.refs.append((rule, None))
            elif group.key is not None:
                rule.index[group.key] = group
                group.refs.append((rule, group.key))
        self.limiter.restore(data.get("limiter") or [])
        self._pending.extend(data.get("owed") or [])

    @property
    def active(self) -> int:
        return len(self.groups)
