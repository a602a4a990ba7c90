"""`log_to_metric` transform: Prometheus counters, histograms and gauges derived from events, on /metrics.

Vector's log_to_metric with its prometheus_exporter in one, Logstash's
metrics, Fluent Bit's log_to_metrics: `http_requests_total{method,status}` and
`http_request_duration_seconds` from an nginx access log that exports none.

Events pass through unchanged. Each metric is defined by a condition (`when`),
a value (`field`, times `scale`; a counter without a field counts events) and
labels (templates over the event). Its series live in memory and are exposed
on the daemon's `/metrics` at scrape time, next to the pipeline's own metrics.
Cardinality is capped per metric (`max_series`): an event that would open one
series too many is counted in `pipeline_log_metric_overflow_total` instead. A
value that is not a number (`"-"` where a duration should be) is counted in
`pipeline_log_metric_invalid_total` and skipped; an event without the field is
not one the metric is about. Series start from zero when the topology is built
(start, reload); Prometheus' rate() treats that as a counter reset.
"""

from __future__ import annotations

import itertools
import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from pydantic import Field, field_validator, model_validator

from parsers.fieldpath import compile_getter
from pipeline.conditions import Condition, Predicate, as_number, compile_condition
from pipeline.config import Model, TransformConfig
from pipeline.context import BuildContext
from pipeline.errors import ConfigError
from pipeline.event import Event
from pipeline.registry import register
from pipeline.template import Template, check_template

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# The buckets of the seeds' http_request_duration_seconds (seconds): a useful default for latencies.
DEFAULT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MetricConfig(Model):
    """One metric derived from events."""

    name: str = Field(
        description="Metric name. A counter's samples end in `_total` (added when the name lacks it); "
        "names starting with `pipeline_` are the daemon's own.",
        examples=["http_requests_total"],
    )
    type: Literal["counter", "histogram", "gauge"] = Field(
        description="`counter`: adds 1 per event, or the field's value; `histogram`: observes the field's "
        "value into buckets; `gauge`: set to the field's value (the last event wins)."
    )
    help: str = Field(default="", description="The HELP text.", examples=["HTTP requests, from the access log."])
    field: str | None = Field(
        default=None,
        description="The event field holding the value (dotted path; numbers or numeric text). Required for "
        "histograms and gauges; a counter without it counts events.",
        examples=["request_time"],
    )
    scale: float = Field(
        default=1.0, description="Multiply the value by this (0.001: milliseconds to seconds).", examples=[0.001]
    )
    when: Condition | None = Field(
        default=None,
        description="Only events that match count (docs/conditions.md).",
        examples=[{"field": "log_type", "equals": "access"}],
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="label: template over the event (docs/templates.md); a missing field renders empty. Keep "
        "them few-valued (method, status), not paths or ids: see `max_series`.",
        examples=[{"method": "{method}", "status": "{status_code}"}],
    )
    buckets: list[float] = Field(
        default_factory=lambda: list(DEFAULT_BUCKETS),
        min_length=1,
        description="Histogram bucket upper bounds, increasing (`+Inf` is added).",
        examples=[[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]],
    )
    max_series: int = Field(
        default=1000,
        gt=0,
        description="Label combinations kept at most; events that would add more are counted in "
        "`pipeline_log_metric_overflow_total` instead.",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}: letters, digits, _ and :, not starting with a digit")
        if name.startswith("pipeline_"):
            raise ValueError(f"metric name {name!r}: names starting with pipeline_ are the daemon's own")
        return name

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for label, template in labels.items():
            if not _LABEL.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r}: letters, digits and _, not starting with __")
            check_template(template)
        return labels

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, buckets: list[float]) -> list[float]:
        if any(not math.isfinite(b) for b in buckets) or any(a >= b for a, b in itertools.pairwise(buckets)):
            raise ValueError("buckets must be finite and strictly increasing (+Inf is added)")
        return buckets

    @model_validator(mode="after")
    def _value_source(self) -> MetricConfig:
        if self.type != "counter" and self.field is None:
            raise ValueError(f"a {self.type} needs `field`: the event field holding the value")
        if self.type == "histogram" and "le" in self.labels:
            raise ValueError("`le` is the histogram's bucket label: name the label differently")
        return self

    def family_name(self) -> str:
        """The name without a counter's `_total`: what the exposition's TYPE line names."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


class LogToMetricTransformConfig(TransformConfig):
    """Derive Prometheus metrics from events (served on the daemon's /metrics); events pass through unchanged."""

    type: Literal["log_to_metric"]
    metrics: list[MetricConfig] = Field(
        min_length=1,
        description="The metrics.",
        examples=[
            [
                {
                    "name": "http_requests_total",
                    "type": "counter",
                    "labels": {"method": "{method}", "status": "{status_code}"},
                }
            ]
        ],
    )

    @field_validator("metrics")
    @classmethod
    def _unique(cls, metrics: list[MetricConfig]) -> list[MetricConfig]:
        names = [m.family_name() for m in metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique: {', '.join(dupes)} defined twice")
        return metrics


class DerivedMetric:
    """The series of one metric: label values -> state, updated per event."""

    __slots__ = (
        "config",
        "get",
        "invalid",
        "kind",
        "labels",
        "max_series",
        "overflow",
        "scale",
        "series",
        "upper",
        "when",
    )

    def __init__(self, config: MetricConfig) -> None:
        self.config = config
        self.kind = config.type
        self.when: Predicate | None = compile_condition(config.when) if config.when is not None else None
        self.get = compile_getter(config.field) if config.field is not None else None
        self.scale = config.scale
        self.labels = [Template(t).renderer for t in config.labels.values()]
        self.upper = list(config.buckets)
        self.max_series = config.max_series
        # Counter/gauge: [value]; histogram: [count per bucket ..., +Inf bucket, sum].
        self.series: dict[tuple[str, ...], list[float]] = {}
        self.overflow = 0
        self.invalid = 0

    def observe(self, event: Event) -> None:
        if self.when is not None and not self.when(event):
            return
        value = 1.0
        if self.get is not None:
            raw = self.get(event)
            if raw is None:
                return  # not an event this metric is about
            number = raw if raw.__class__ is float or raw.__class__ is int else as_number(raw)
            if number is None or not math.isfinite(number) or (self.kind == "counter" and number < 0):
                self.invalid += 1
                return
            value = number * self.scale
        key = tuple([render(event) for render in self.labels])
        state = self.series.get(key)
        if state is None:
            if len(self.series) >= self.max_series:
                self.overflow += 1
                return
            state = self.series[key] = [0.0] * (len(self.upper) + 2) if self.kind == "histogram" else [0.0]
        if self.kind == "counter":
            state[0] += value
        elif self.kind == "gauge":
            state[0] = value
        else:
            state[bisect_left(self.upper, value)] += 1  # the first bucket whose bound is >= value
            state[-1] += value

    def family(self) -> Metric:
        c = self.config
        names = list(c.labels)
        if self.kind == "counter":
            counter = CounterMetricFamily(c.family_name(), c.help, labels=names)
            for key, state in self.series.items():
                counter.add_metric(list(key), state[0])
            return counter
        if self.kind == "gauge":
            gauge = GaugeMetricFamily(c.name, c.help, labels=names)
            for key, state in self.series.items():
                gauge.add_metric(list(key), state[0])
            return gauge
        histogram = HistogramMetricFamily(c.name, c.help, labels=names)
        bounds = [*(repr(float(b)) for b in self.upper), "+Inf"]
        for key, state in self.series.items():
            cumulative, running = [], 0.0
            for bound, n in zip(bounds, state[:-1], strict=True):
                running += n
                cumulative.append((bound, running))
            histogram.add_metric(list(key), cumulative, sum_value=state[-1])
        return histogram


class LogToMetricTransform:
    def __init__(self, name: str, metrics: list[DerivedMetric]) -> None:
        self.name = name
        self.metrics = metrics

    def process(self, events: list[Event]) -> list[Event]:
        metrics = self.metrics
        if len(metrics) == 1:
            observe = metrics[0].observe
            for event in events:
                observe(event)
        else:
            for event in events:
                for metric in metrics:
                    metric.observe(event)
        return events

    def collect(self) -> Iterator[Metric]:
        for metric in self.metrics:
            yield metric.family()

    def counts(self, attr: str) -> Callable[[], Iterator[tuple[dict[str, str], float]]]:
        def samples() -> Iterator[tuple[dict[str, str], float]]:
            for metric in self.metrics:
                yield {"component": self.name, "metric": metric.config.name}, float(getattr(metric, attr))

        return samples


@register("transform", "log_to_metric", LogToMetricTransformConfig)
def build_log_to_metric(name: str, config: LogToMetricTransformConfig, ctx: BuildContext) -> LogToMetricTransform:
    transform = LogToMetricTransform(name, [DerivedMetric(m) for m in config.metrics])
    metrics = ctx.metrics
    try:
        metrics.collector([m.family_name() for m in config.metrics], transform.collect, transform, name)
    except ValueError as exc:
        raise ConfigError([f"metrics: {exc}"]) from None
    labels = ["component", "metric"]
    metrics.counter(
        "pipeline_log_metric_overflow",
        "Events not counted by a derived metric because it reached max_series label combinations.",
        labels,
        transform.counts("overflow"),
        owner=transform,
    )
    metrics.counter(
        "pipeline_log_metric_invalid",
        "Events whose value for a derived metric was not a number (or negative, for a counter).",
        labels,
        transform.counts("invalid"),
        owner=transform,
    )
    return transform
