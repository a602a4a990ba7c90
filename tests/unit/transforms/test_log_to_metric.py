"""The `log_to_metric` transform: series from events, cardinality cap, bad values, the exposition."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.metrics import Metrics
from pipeline.transforms.log_to_metric import LogToMetricTransformConfig

from .conftest import Build

REQUESTS = {"name": "http_requests_total", "type": "counter", "help": "Requests.",
            "labels": {"method": "{method}", "status": "{status_code}"}}
DURATION = {"name": "http_request_duration_seconds", "type": "histogram", "field": "request_time",
            "labels": {"method": "{method}"}, "buckets": [0.1, 0.5, 1.0]}


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def access(method: str, status: int, t: Any) -> dict[str, Any]:
    return {"method": method, "status_code": status, "request_time": t}


class TestSeries:
    def test_counter_and_histogram_from_access_events(self, build: Build, metrics: Metrics) -> None:
        t = build("log_to_metric", metrics=[REQUESTS, DURATION])
        events = [access("GET", 200, 0.05), access("GET", 200, 0.3), access("GET", 500, 0.7), access("POST", 201, 2.5)]
        assert t.process(events) is events  # events pass through
        s = samples(metrics)
        assert s[("http_requests_total", (("method", "GET"), ("status", "200")))] == 2
        assert s[("http_requests_total", (("method", "GET"), ("status", "500")))] == 1
        get = (("method", "GET"),)
        bounds = ("0.1", "0.5", "1.0", "+Inf")
        buckets = [s[("http_request_duration_seconds_bucket", (("le", le), *get))] for le in bounds]
        assert buckets == [1, 2, 3, 3]
        assert s[("http_request_duration_seconds_count", get)] == 3
        assert s[("http_request_duration_seconds_sum", get)] == pytest.approx(1.05)
        assert s[("http_request_duration_seconds_bucket", (("le", "+Inf"), ("method", "POST")))] == 1

    def test_a_value_on_a_bucket_bound_is_in_that_bucket(self, build: Build, metrics: Metrics) -> None:
        build("log_to_metric", metrics=[{**DURATION, "labels": {}}]).process([{"request_time": 0.5}])
        assert samples(metrics)[("http_request_duration_seconds_bucket", (("le", "0.5"),))] == 1
        assert samples(metrics)[("http_request_duration_seconds_bucket", (("le", "0.1"),))] == 0

    def test_counter_by_field_gauge_scale_and_when(self, build: Build, metrics: Metrics) -> None:
        t = build("log_to_metric", metrics=[
            {"name": "bytes_sent_total", "type": "counter", "field": "bytes", "when": {"field": "ok", "equals": True}},
            {"name": "last_duration_seconds", "type": "gauge", "field": "ms", "scale": 0.001},
        ])
        t.process([{"bytes": 100, "ok": True, "ms": 250}, {"bytes": "50", "ok": True}, {"bytes": 7, "ms": "40"}])
        s = samples(metrics)
        assert s[("bytes_sent_total", ())] == 150
        assert s[("last_duration_seconds", ())] == pytest.approx(0.04)

    def test_a_counter_named_without_total_gets_it(self, build: Build, metrics: Metrics) -> None:
        build("log_to_metric", metrics=[{"name": "logins", "type": "counter"}]).process([{}])
        assert samples(metrics)[("logins_total", ())] == 1

    def test_missing_label_field_renders_empty(self, build: Build, metrics: Metrics) -> None:
        build("log_to_metric", metrics=[REQUESTS]).process([{"method": "GET"}])
        assert samples(metrics)[("http_requests_total", (("method", "GET"), ("status", "")))] == 1


class TestBadValuesAndCardinality:
    def test_non_numeric_values_are_counted_not_observed(self, build: Build, metrics: Metrics) -> None:
        t = build("log_to_metric", name="m", metrics=[DURATION])
        t.process([access("GET", 200, "-"), access("GET", 200, "nan"), access("GET", 200, None), {"method": "GET"}])
        s = samples(metrics)
        assert ("http_request_duration_seconds_count", (("method", "GET"),)) not in s
        assert s[("pipeline_log_metric_invalid_total",
                  (("component", "m"), ("metric", "http_request_duration_seconds")))] == 2

    def test_negative_counter_increments_are_invalid(self, build: Build, metrics: Metrics) -> None:
        t = build("log_to_metric", name="m", metrics=[{"name": "b_total", "type": "counter", "field": "b"}])
        t.process([{"b": -5}, {"b": 5}])
        s = samples(metrics)
        assert s[("b_total", ())] == 5
        assert s[("pipeline_log_metric_invalid_total", (("component", "m"), ("metric", "b_total")))] == 1

    def test_series_are_capped_and_the_overflow_counted(self, build: Build, metrics: Metrics) -> None:
        t = build("log_to_metric", name="m", metrics=[{"name": "paths_total", "type": "counter",
                                                        "labels": {"path": "{path}"}, "max_series": 10}])
        t.process([{"path": f"/p/{i}"} for i in range(25)] + [{"path": "/p/3"}])
        s = samples(metrics)
        assert sum(1 for name, _ in s if name == "paths_total") == 10
        assert s[("paths_total", (("path", "/p/3"),))] == 2  # an existing series still counts
        assert s[("pipeline_log_metric_overflow_total", (("component", "m"), ("metric", "paths_total")))] == 15


class TestConfig:
    @pytest.mark.parametrize(("metric", "message"), [
        pytest.param({"name": "1bad", "type": "counter"}, "invalid metric name", id="name"),
        pytest.param({"name": "pipeline_x", "type": "counter"}, "daemon's own", id="reserved-prefix"),
        pytest.param({"name": "h", "type": "histogram"}, "needs `field`", id="histogram-needs-field"),
        pytest.param({"name": "h", "type": "histogram", "field": "t", "labels": {"le": "{x}"}}, "`le`", id="le"),
        pytest.param({"name": "c", "type": "counter", "labels": {"__x": "{x}"}}, "invalid label name", id="label"),
        pytest.param({"name": "h", "type": "histogram", "field": "t", "buckets": [1, 0.5]}, "increasing",
                     id="buckets"),
    ])
    def test_invalid_metrics(self, metric: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            LogToMetricTransformConfig.model_validate({"type": "log_to_metric", "inputs": ["x"], "metrics": [metric]})

    def test_duplicate_names_in_one_transform(self) -> None:
        with pytest.raises(ValidationError, match="defined twice"):
            LogToMetricTransformConfig.model_validate({"type": "log_to_metric", "inputs": ["x"], "metrics": [
                {"name": "a_total", "type": "counter"}, {"name": "a", "type": "counter"}]})

    def test_two_transforms_cannot_expose_one_name(self, build: Build, metrics: Metrics) -> None:
        first = build("log_to_metric", name="one", metrics=[REQUESTS])
        with pytest.raises(ConfigError, match="metrics: metric 'http_requests' is already exposed by component 'one'"):
            build("log_to_metric", name="two", metrics=[REQUESTS])
        metrics.drop_gauges(first)  # the first one closed (a reload): the name is free again
        build("log_to_metric", name="two", metrics=[REQUESTS])
