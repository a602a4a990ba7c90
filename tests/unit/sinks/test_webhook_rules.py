"""Conditions (pipeline/conditions.py) as alert rules use them, and compiled rules (sinks/webhook/rules.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.conditions import Condition, compile_condition
from sinks.webhook.config import RuleConfig
from sinks.webhook.rules import CompiledRule, fingerprint


def matches(condition: dict[str, Any], event: dict[str, Any]) -> bool:
    return compile_condition(Condition.model_validate(condition))(event)


APP_ERROR = {"log_type": "application", "level": "ERROR", "service": "api", "error": {"type": "KeyError"},
             "message": "upstream timeout after 30s", "status": 503, "latency": "0.25", "flag": True}


class TestMatchers:
    @pytest.mark.parametrize(("condition", "expected"), [
        pytest.param({"field": "level", "equals": "ERROR"}, True, id="equals-str"),
        pytest.param({"field": "level", "equals": "error"}, False, id="equals-case-sensitive"),
        pytest.param({"field": "level", "equals": "error", "ignore_case": True}, True, id="equals-ignore-case"),
        pytest.param({"field": "status", "equals": 503}, True, id="equals-int"),
        pytest.param({"field": "status", "equals": "503"}, True, id="equals-int-vs-text"),
        pytest.param({"field": "status", "equals": 503.0}, True, id="equals-int-vs-float"),
        pytest.param({"field": "flag", "equals": True}, True, id="equals-bool"),
        pytest.param({"field": "flag", "equals": "true"}, True, id="equals-bool-vs-text"),
        pytest.param({"field": "missing", "equals": None}, True, id="equals-null-matches-missing"),
        pytest.param({"field": "level", "equals": None}, False, id="equals-null-present"),
        pytest.param({"field": "error.type", "equals": "KeyError"}, True, id="equals-dotted"),
        pytest.param({"field": "error.type.deeper", "equals": "x"}, False, id="dotted-through-a-string"),
        pytest.param({"field": "level", "in": ["ERROR", "CRITICAL"]}, True, id="in"),
        pytest.param({"field": "level", "in": ["WARN", "INFO"]}, False, id="in-no"),
        pytest.param({"field": "level", "in": ["error"], "ignore_case": True}, True, id="in-ignore-case"),
        pytest.param({"field": "status", "in": [500, 502, 503]}, True, id="in-int"),
        pytest.param({"field": "status", "in": ["503"]}, True, id="in-text-vs-int"),
        pytest.param({"field": "missing", "in": ["x"]}, False, id="in-missing"),
        pytest.param({"field": "message", "regex": "time(out|d out)"}, True, id="regex-search"),
        pytest.param({"field": "message", "regex": "^timeout"}, False, id="regex-anchored"),
        pytest.param({"field": "message", "regex": "TIMEOUT", "ignore_case": True}, True, id="regex-ignore-case"),
        pytest.param({"field": "status", "regex": "^5\\d\\d$"}, True, id="regex-on-number-text"),
        pytest.param({"field": "missing", "regex": ".*"}, False, id="regex-missing"),
        pytest.param({"field": "status", "gte": 500}, True, id="gte"),
        pytest.param({"field": "status", "gte": 503}, True, id="gte-equal"),
        pytest.param({"field": "status", "gt": 503}, False, id="gt-equal"),
        pytest.param({"field": "status", "lt": 600}, True, id="lt"),
        pytest.param({"field": "status", "lte": 502}, False, id="lte"),
        pytest.param({"field": "status", "gte": 500, "lt": 600}, True, id="range"),
        pytest.param({"field": "status", "gte": 500, "lt": 503}, False, id="range-out"),
        pytest.param({"field": "latency", "gt": 0.2}, True, id="numeric-text"),
        pytest.param({"field": "level", "gt": 0}, False, id="non-numeric-text"),
        pytest.param({"field": "flag", "gt": 0}, False, id="bool-is-not-a-number"),
        pytest.param({"field": "missing", "lt": 10}, False, id="compare-missing"),
        pytest.param({"field": "service", "exists": True}, True, id="exists"),
        pytest.param({"field": "missing", "exists": True}, False, id="exists-missing"),
        pytest.param({"field": "missing", "exists": False}, True, id="not-exists"),
        pytest.param({"field": "error", "exists": True}, True, id="exists-mapping"),
    ])
    def test_matcher(self, condition: dict[str, Any], expected: bool) -> None:
        assert matches(condition, APP_ERROR) is expected

    def test_flat_key_with_dots_wins(self) -> None:
        event = {"error.type": "flat", "error": {"type": "nested"}}
        assert matches({"field": "error.type", "equals": "flat"}, event)

    def test_null_field_is_missing(self) -> None:
        assert matches({"field": "x", "exists": False}, {"x": None})


class TestCombinators:
    @pytest.mark.parametrize(("condition", "expected"), [
        pytest.param({"all": [{"field": "log_type", "equals": "application"},
                              {"field": "level", "in": ["ERROR", "CRITICAL"]}]}, True, id="all"),
        pytest.param({"all": [{"field": "log_type", "equals": "access"},
                              {"field": "level", "in": ["ERROR"]}]}, False, id="all-one-false"),
        pytest.param({"any": [{"field": "log_type", "equals": "access"},
                              {"field": "level", "equals": "ERROR"}]}, True, id="any"),
        pytest.param({"any": [{"field": "log_type", "equals": "access"},
                              {"field": "level", "equals": "INFO"}]}, False, id="any-none"),
        pytest.param({"not": {"field": "level", "equals": "ERROR"}}, False, id="not"),
        pytest.param({"not": {"field": "level", "equals": "INFO"}}, True, id="not-false"),
        pytest.param({"all": [{"any": [{"field": "status", "gte": 500}, {"field": "level", "equals": "ERROR"}]},
                              {"not": {"field": "service", "in": ["healthcheck"]}}]}, True, id="nested"),
    ])
    def test_combinator(self, condition: dict[str, Any], expected: bool) -> None:
        assert matches(condition, APP_ERROR) is expected


class TestExampleRules:
    """The three rules docs/alerts.md ships, against the events they are written for."""

    APP = {"all": [{"field": "log_type", "equals": "application"}, {"field": "level", "in": ["ERROR", "CRITICAL"]}]}
    ACCESS = {"all": [{"field": "log_type", "equals": "access"}, {"field": "status", "gte": 500}]}
    ERRLOG = {"all": [{"field": "log_type", "equals": "error"}, {"field": "level", "in": ["crit", "alert", "emerg"]}]}

    @pytest.mark.parametrize(("rule", "event", "expected"), [
        pytest.param(APP, {"log_type": "application", "level": "CRITICAL"}, True, id="app-critical"),
        pytest.param(APP, {"log_type": "application", "level": "WARN"}, False, id="app-warn"),
        pytest.param(APP, {"log_type": "access", "level": "ERROR"}, False, id="app-other-type"),
        pytest.param(ACCESS, {"log_type": "access", "status": 502}, True, id="access-502"),
        pytest.param(ACCESS, {"log_type": "access", "status": "500"}, True, id="access-500-text"),
        pytest.param(ACCESS, {"log_type": "access", "status": 404}, False, id="access-404"),
        pytest.param(ACCESS, {"log_type": "access"}, False, id="access-no-status"),
        pytest.param(ERRLOG, {"log_type": "error", "level": "crit"}, True, id="errlog-crit"),
        pytest.param(ERRLOG, {"log_type": "error", "level": "emerg"}, True, id="errlog-emerg"),
        pytest.param(ERRLOG, {"log_type": "error", "level": "error"}, False, id="errlog-error"),
    ])
    def test_rule(self, rule: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
        assert matches(rule, event) is expected


class TestValidation:
    @pytest.mark.parametrize(("condition", "message"), [
        pytest.param({"field": "level"}, "needs an operator", id="field-without-operator"),
        pytest.param({"equals": "x"}, "needs `field`", id="operator-without-field"),
        pytest.param({"all": [{"field": "a", "exists": True}], "field": "b", "equals": 1}, "stands alone",
                     id="combinator-with-field"),
        pytest.param({"all": [], }, "at least 1", id="empty-all"),
        pytest.param({"field": "m", "regex": "("}, "invalid regular expression", id="bad-regex"),
        pytest.param({"field": "m", "contains": "x"}, "Extra inputs", id="unknown-operator"),
        pytest.param({"field": "m", "gt": "five"}, "valid number", id="non-numeric-bound"),
    ])
    def test_invalid(self, condition: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            Condition.model_validate(condition)

    def test_nested_error_is_located(self) -> None:
        with pytest.raises(ValidationError) as info:
            RuleConfig.model_validate({"name": "r", "when": {"all": [{"field": "a", "exists": True}, {"field": "b"}]}})
        assert info.value.errors()[0]["loc"][:3] == ("when", "all", 1)

    @pytest.mark.parametrize(("labels", "annotations", "message"), [
        pytest.param({"bad-name": "x"}, {}, "label name 'bad-name' is invalid", id="label-name"),
        pytest.param({"__x": "x"}, {}, "is invalid", id="reserved-prefix"),
        pytest.param({}, {"count": "x"}, "set by the sink", id="reserved-annotation"),
        pytest.param({"a": "{unclosed"}, {}, "unbalanced", id="bad-template"),
    ])
    def test_invalid_rule(self, labels: dict[str, str], annotations: dict[str, str], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            RuleConfig.model_validate({"name": "r", "when": {"field": "a", "exists": True},
                                       "labels": labels, "annotations": annotations})


class TestCompiledRule:
    def rule(self, **kw: Any) -> CompiledRule:
        return CompiledRule(RuleConfig.model_validate({"name": "AppError", "when": {"field": "x", "exists": True},
                                                       **kw}))

    def test_alertname_and_severity_labels(self) -> None:
        rule = self.rule(severity="critical", labels={"service": "{service}"})
        key = rule.key({"service": "api"})
        assert key == ("api",)
        assert rule.labels_for_key(key) == {"alertname": "AppError", "severity": "critical", "service": "api"}

    def test_labels_override_alertname(self) -> None:
        rule = self.rule(labels={"alertname": "Custom"})
        assert rule.labels_for_key(rule.key({}))["alertname"] == "Custom"

    def test_empty_label_values_are_dropped(self) -> None:
        rule = self.rule(labels={"service": "{service}", "team": "core"})
        assert rule.labels_for_key(rule.key({})) == {"alertname": "AppError", "severity": "warning", "team": "core"}

    def test_templated_severity_is_part_of_the_key(self) -> None:
        rule = self.rule(severity="{sev|warning}")
        assert rule.key({"sev": "critical"}) != rule.key({})


class TestFingerprint:
    def test_independent_of_label_order(self) -> None:
        assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})

    def test_differs_by_value_and_name(self) -> None:
        base = fingerprint({"a": "1"})
        assert base != fingerprint({"a": "2"})
        assert base != fingerprint({"b": "1"})

    def test_stable_across_processes(self) -> None:
        # Persisted state refers to alerts by fingerprint: it must not depend on hash randomisation.
        code = "from sinks.webhook.rules import fingerprint; print(fingerprint({'alertname': 'X', 'a': 'b'}))"
        out = {
            subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                           capture_output=True, text=True, check=True).stdout.strip()
            for seed in ("1", "2")
        }
        assert out == {fingerprint({"alertname": "X", "a": "b"})}
