"""Config model of an alert rule: its type (event, frequency, ratio, metric, absence, spike, new_value),
condition, window and threshold, labels and annotations.

One flat model with a `type`, checked per type by a validator (an option that does not
apply to the type is an error naming both), so existing rules without `type` stay
`event` rules. docs/alerts.md explains each type with examples.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.conditions import Condition
from pipeline.config import Model
from pipeline.template import check_template
from pipeline.units import Duration

# Prometheus' classic label-name syntax: valid in every Alertmanager version.
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Annotations the sink fills in itself on every notification.
RESERVED_ANNOTATIONS = ("count", "first_seen", "last_seen", "value", "threshold", "window", "samples")
RuleType = Literal["event", "frequency", "ratio", "metric", "absence", "spike", "new_value"]
Aggregate = Literal["p50", "p90", "p95", "p99", "avg", "min", "max", "sum", "count"]

# Which options each type takes (beyond name, type, when, severity, labels, annotations).
_OPTIONS: dict[str, frozenset[str]] = {
    "event": frozenset(),
    "frequency": frozenset({"window", "step", "threshold", "for_", "max_keys", "samples"}),
    "ratio": frozenset({"window", "step", "threshold", "op", "base", "min_count", "for_", "max_keys", "samples"}),
    "metric": frozenset(
        {"window", "step", "threshold", "op", "field", "aggregate", "min_count", "for_", "max_keys", "samples"}
    ),
    "absence": frozenset({"window", "for_", "forget_after", "max_keys", "samples"}),
    "spike": frozenset(
        {"window", "step", "factor", "direction", "min_count", "min_previous", "for_", "max_keys", "samples"}
    ),
    "new_value": frozenset({"window", "field", "history", "learn_for", "max_values", "max_keys", "samples"}),
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "frequency": ("window", "threshold"),
    "ratio": ("window", "threshold", "base"),
    "metric": ("window", "threshold", "field", "aggregate"),
    "absence": ("window",),
    "spike": ("window", "factor"),
    "new_value": ("field",),
}


def check_names(kind: str, names: dict[str, str], reserved: tuple[str, ...] = ()) -> None:
    for name, source in names.items():
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(
                f"{kind} name {name!r} is invalid: use letters, digits and _ (not starting with a digit or __)"
            )
        if name in reserved:
            raise ValueError(f"annotation {name!r} is set by the sink itself")
        check_template(source)


class RuleConfig(Model):
    """When events turn into an alert, and what the alert says."""

    name: str = Field(
        min_length=1,
        description="Rule name: the `alertname` label unless `labels` sets one.",
        examples=["ApplicationError"],
    )
    type: RuleType = Field(
        default="event",
        description="`event`: every match counts into an alert (processing time). Windowed, on event time: "
        "`frequency` (at least `threshold` matches within `window`), `ratio` (matches / `base` events within "
        "`window` against `threshold`), `metric` (`aggregate` of a numeric `field` within `window` against "
        "`threshold`), `absence` (no match for `window` after a key was seen), `spike` (this `window` vs the "
        "previous one by `factor`), `new_value` (a `field` value not seen within `history`).",
        examples=["ratio"],
    )
    when: Condition = Field(
        description="Condition an event must meet (structured matchers; nothing is evaluated as code). "
        "For `ratio`: the events counted above the base (the numerator).",
        examples=[{"field": "level", "in": ["ERROR", "CRITICAL"]}],
    )
    severity: str = Field(
        default="warning", description="The `severity` label (a template, like other labels).", examples=["critical"]
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Label templates. The rendered labels identify "
        "the alert: events with equal labels fold into one alert (for windowed rules: one window per label set).",
        examples=[{"service": "{service|unknown}", "error_type": "{error.type}"}],
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotation templates, rendered from the "
        "latest matching event (windowed rules also see `{alert.value}`, `{alert.threshold}`, `{alert.window}`, "
        "`{alert.count}`, `{alert.percent}`). `count`, `first_seen` and `last_seen` are added; windowed rules "
        "add `value`, `threshold`, `window` and `samples`.",
        examples=[{"summary": "{error.type}: {message:200}"}],
    )
    for_: Duration = Field(
        default=0.0,
        alias="for",
        ge=0,
        description="Windowed rules: the condition must hold this long (event time) before the alert fires; "
        "until then it is pending.",
        examples=["1m"],
    )
    window: Duration | None = Field(
        default=None,
        gt=0,
        description="Windowed rules: the event-time window (`absence`: the silence that fires; `new_value`: how "
        "long the alert for a new value stays firing, default 5m).",
        examples=["5m"],
    )
    step: Duration | None = Field(
        default=None,
        gt=0,
        description="Bucket width of the window, and how often (in event time) ratio, metric and spike rules "
        "are evaluated. Default: window / 60, at least 1s.",
        examples=["5s"],
    )
    threshold: float | None = Field(
        default=None,
        description="`frequency`: matches at least this many. `ratio`: a fraction (0.01 = 1%). `metric`: the "
        "aggregate's value (in the field's unit).",
        examples=[0.01],
    )
    op: Literal["above", "below"] = Field(
        default="above", description="`ratio` and `metric`: fire when the value is above (>) or below (<) threshold."
    )
    base: Condition | None = Field(
        default=None,
        description="`ratio`: the events the ratio is taken over (the denominator); `when` selects the "
        "numerator among them. Labels are rendered from base events.",
        examples=[{"field": "log_type", "equals": "access"}],
    )
    min_count: int = Field(
        default=1,
        ge=0,
        description="`ratio`: base events needed in the window; `metric`: values needed; `spike`: matches "
        "needed in the current window (`up`) or the previous one (`down`).",
        examples=[100],
    )
    field: str | None = Field(
        default=None,
        description="`metric`: the numeric field (numeric text counts). `new_value`: the field whose values are "
        "tracked.",
        examples=["request_time"],
    )
    aggregate: Aggregate | None = Field(
        default=None, description="`metric`: what is computed over the window's values.", examples=["p95"]
    )
    factor: float | None = Field(
        default=None,
        gt=1,
        description="`spike`: fire when the current window's count is at least factor x the previous "
        "window's (`up`), or at most previous / factor (`down`).",
        examples=[2],
    )
    direction: Literal["up", "down"] = Field(default="up", description="`spike`: a rise or a fall.")
    min_previous: int = Field(
        default=1,
        ge=0,
        description="`spike` (`up`): matches needed in the previous window (0: a rise from nothing counts).",
    )
    history: Duration = Field(
        default=30 * 86400.0,
        gt=0,
        description="`new_value`: a value is new when it was not seen within this long.",
        examples=["7d"],
    )
    learn_for: Duration = Field(
        default=300.0,
        ge=0,
        description="`new_value`: values seen during this long (event time) after the rule first sees events "
        "are learned without alerting (so a first start does not report every value as new).",
    )
    max_values: int = Field(
        default=100_000, gt=0, description="`new_value`: values remembered at most (the oldest are forgotten)."
    )
    forget_after: Duration = Field(
        default=86400.0,
        gt=0,
        description="`absence`: a key silent this long is forgotten (its alert resolves): services that were "
        "removed do not fire forever.",
    )
    max_keys: int = Field(
        default=10_000,
        gt=0,
        description="Windowed rules: label sets (windows) held at most; events of further label sets are "
        "counted and ignored until some are dropped.",
    )
    samples: int = Field(
        default=3, ge=0, le=20, description="Windowed rules: latest matching events shown in a notification."
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        check_names("label", value)
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        check_names("annotation", value, RESERVED_ANNOTATIONS)
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _per_type(self) -> RuleConfig:
        allowed = _OPTIONS[self.type]
        shown = {"for_": "for"}
        extra = sorted(shown.get(k, k) for k in self.model_fields_set if k in _ALL_OPTIONS and k not in allowed)
        if extra:
            raise ValueError(f"option(s) {extra} do not apply to a rule of type {self.type}")
        missing = [k for k in _REQUIRED.get(self.type, ()) if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a rule of type {self.type} needs {missing}")
        if self.type == "ratio" and self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError("a ratio threshold is a fraction between 0 and 1 (0.01 = 1%)")
        if self.type == "frequency" and self.threshold is not None and self.threshold < 1:
            raise ValueError("a frequency threshold is a count of at least 1")
        if self.window is not None and self.step is not None and self.step > self.window:
            raise ValueError("step must not be longer than window")
        if self.window is not None and self.step is not None and self.window / self.step > 3600:
            raise ValueError("window / step must be at most 3600 buckets")
        if self.type == "new_value" and self.for_:
            raise ValueError("a new_value rule fires at the new value's first event: `for` does not apply")
        return self

    # -- derived values ------------------------------------------------------------
    @property
    def bucket(self) -> float:
        """The bucket width (the step) of a windowed rule."""
        window = self.window or 300.0
        return self.step if self.step is not None else max(min(1.0, window), window / 60)

    @property
    def windowed(self) -> bool:
        return self.type != "event"


_ALL_OPTIONS = frozenset().union(*_OPTIONS.values())
