"""The `mutate` transform (pipeline/transforms/mutate.py): every operation, conditions, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.transforms.convert import to_bool, to_float, to_int
from pipeline.transforms.mutate import MutateTransformConfig

from .conftest import Build


def run(build: Build, operations: list[dict[str, Any]], *events: dict[str, Any]) -> list[dict[str, Any]]:
    return build("mutate", operations=operations).process([dict(e) for e in events])  # type: ignore[no-any-return]


class TestSetAndAdd:
    def test_set_replaces_and_creates_nested(self, build: Build) -> None:
        [e] = run(build, [{"set": {"environment": "prod", "http.version": 2, "level": "WARN"}}], {"level": "INFO"})
        assert e == {"level": "WARN", "environment": "prod", "http": {"version": 2}}

    def test_set_renders_templates_from_fields(self, build: Build) -> None:
        [e] = run(build, [{"set": {"route": "{method} {path}", "who": "{user|anonymous}"}}],
                  {"method": "GET", "path": "/x"})
        assert e["route"] == "GET /x" and e["who"] == "anonymous"

    def test_set_copies_list_values_per_event(self, build: Build) -> None:
        a, b = run(build, [{"set": {"roles": ["a"]}}], {}, {})
        a["roles"].append("b")
        assert b["roles"] == ["a"]

    def test_add_keeps_an_existing_value_and_fills_null(self, build: Build) -> None:
        events = run(build, [{"add": {"service": "fallback"}}], {"service": "api"}, {}, {"service": None})
        assert [e["service"] for e in events] == ["api", "fallback", "fallback"]

    def test_a_malformed_template_is_a_config_error(self) -> None:
        with pytest.raises(ValidationError, match="unbalanced"):
            MutateTransformConfig.model_validate(
                {"type": "mutate", "inputs": ["x"], "operations": [{"set": {"a": "{b"}}]})


class TestRemoveRenameCopy:
    def test_remove_top_level_and_nested_ignores_missing(self, build: Build) -> None:
        [e] = run(build, [{"remove": ["@version", "host", "agent", "geo.city", "nothere"]}],
                  {"@version": "1", "host": "h", "geo": {"city": "x", "country": "y"}, "m": 1})
        assert e == {"geo": {"country": "y"}, "m": 1}

    def test_rename_moves_the_value(self, build: Build) -> None:
        [e] = run(build, [{"rename": {"status": "http.status_code"}}], {"status": 500})
        assert e == {"http": {"status_code": 500}}

    def test_rename_of_a_missing_field_leaves_the_target(self, build: Build) -> None:
        [e] = run(build, [{"rename": {"status": "code"}}], {"code": 1})
        assert e == {"code": 1}

    def test_copy_keeps_type_and_is_independent(self, build: Build) -> None:
        [e] = run(build, [{"copy": {"n": "m", "obj": "obj2"}}], {"n": 5, "obj": {"a": [1]}})
        e["obj2"]["a"].append(2)
        assert e["m"] == 5 and e["obj"] == {"a": [1]}


class TestConvert:
    def test_the_seeds_conversions(self, build: Build) -> None:
        [e] = run(build, [{"convert": {"status_code": "int", "bytes_sent": "int", "request_time": "float"}}],
                  {"status_code": "503", "bytes_sent": "1024", "request_time": "0.734"})
        assert (e["status_code"], e["bytes_sent"], e["request_time"]) == (503, 1024, 0.734)
        assert type(e["status_code"]) is int and type(e["request_time"]) is float
        assert "tags" not in e

    @pytest.mark.parametrize(("fn", "value", "expected"), [
        pytest.param(to_int, "1.9", 1, id="int-truncates"),
        pytest.param(to_int, " 42 ", 42, id="int-strips"),
        pytest.param(to_int, True, 1, id="int-from-bool"),
        pytest.param(to_int, 3.0, 3, id="int-from-float"),
        pytest.param(to_float, "1e3", 1000.0, id="float-exponent"),
        pytest.param(to_float, 2, 2.0, id="float-from-int"),
        pytest.param(to_bool, "Yes", True, id="bool-yes"),
        pytest.param(to_bool, "off", False, id="bool-off"),
        pytest.param(to_bool, 0, False, id="bool-zero"),
    ])
    def test_conversions(self, fn: Any, value: Any, expected: Any) -> None:
        assert fn(value) == expected and type(fn(value)) is type(expected)

    @pytest.mark.parametrize(("to", "value"), [
        pytest.param("int", "-", id="int-dash"),
        pytest.param("int", "nan", id="int-nan"),
        pytest.param("float", "inf", id="float-inf"),
        pytest.param("float", "abc", id="float-text"),
        pytest.param("bool", "maybe", id="bool-text"),
        pytest.param("bool", 2, id="bool-two"),
        pytest.param("int", {"a": 1}, id="int-mapping"),
    ])
    def test_a_failed_conversion_is_tagged_and_the_value_kept(self, build: Build, to: str, value: Any) -> None:
        [e] = run(build, [{"convert": {"f": to}}], {"f": value, "tags": ["x"]})
        assert e["f"] == value and e["tags"] == ["x", "_convertfailure"]

    def test_conversion_failures_are_counted(self, build: Build, metrics: Any) -> None:
        t = build("mutate", operations=[{"convert": {"f": "int"}}])
        t.process([{"f": "x"}, {"f": "1"}, {"f": "y"}])
        assert metrics.stats["t"].tags == {"_convertfailure": 2}

    def test_lists_convert_each_element_and_string_renders_json(self, build: Build) -> None:
        [e] = run(build, [{"convert": {"ports": "int", "obj": "string", "ok": "string"}}],
                  {"ports": ["80", "443"], "obj": {"a": 1}, "ok": True})
        assert e == {"ports": [80, 443], "obj": '{"a":1}', "ok": "true"}

    def test_missing_field_is_not_a_failure(self, build: Build) -> None:
        [e] = run(build, [{"convert": {"f": "int"}}], {})
        assert e == {}

    def test_unknown_type_is_a_config_error(self) -> None:
        with pytest.raises(ValidationError, match="'int', 'float', 'bool' or 'string'"):
            MutateTransformConfig.model_validate(
                {"type": "mutate", "inputs": ["x"], "operations": [{"convert": {"f": "integer"}}]})


class TestTextOperations:
    def test_lowercase_uppercase_leave_non_text(self, build: Build) -> None:
        [e] = run(build, [{"lowercase": ["method", "list", "n"]}, {"uppercase": ["level"]}],
                  {"method": "GET", "list": ["A", 1], "n": 5, "level": "warn"})
        assert e == {"method": "get", "list": ["a", 1], "n": 5, "level": "WARN"}

    def test_split(self, build: Build) -> None:
        [a, b] = run(build, [{"split": {"roles": ","}}], {"roles": "admin,ops"}, {"roles": ["x"]})
        assert a["roles"] == ["admin", "ops"] and b["roles"] == ["x"]

    def test_empty_separator_is_a_config_error(self) -> None:
        with pytest.raises(ValidationError, match="separator must not be empty"):
            MutateTransformConfig.model_validate(
                {"type": "mutate", "inputs": ["x"], "operations": [{"split": {"roles": ""}}]})


class TestParseJson:
    def test_in_place_to_a_target_and_into_the_root(self, build: Build) -> None:
        [e] = run(build, [{"parse_json": ["a"]}, {"parse_json": {"b": "decoded", "c": "."}}],
                  {"a": '{"x": 1}', "b": '{"y": [1, 2]}', "c": '{"z": true, "message": "inner"}', "message": "m"})
        assert e["a"] == {"x": 1} and e["decoded"] == {"y": [1, 2]} and e["z"] is True
        assert e["message"] == "m" and e["json"] == {"message": "inner"}  # keys the pipeline owns go under json

    @pytest.mark.parametrize("value", ['{"truncated": ', "[1, 2]", "plain", 42])
    def test_not_a_json_object_is_kept_and_tagged(self, build: Build, value: Any) -> None:
        [e] = run(build, [{"parse_json": ["a"]}], {"a": value})
        assert e["a"] == value and e["tags"] == ["_jsonparsefailure"]

    def test_already_decoded_is_left_alone(self, build: Build) -> None:
        [e] = run(build, [{"parse_json": ["a"]}], {"a": {"x": 1}})
        assert e == {"a": {"x": 1}}


class TestTags:
    def test_add_templated_tags_without_duplicates_and_remove(self, build: Build) -> None:
        [e] = run(build, [{"add_tags": ["error", "status_{status}", "error"]}, {"remove_tags": ["old"]}],
                  {"status": 500, "tags": ["old", "error"]})
        assert e["tags"] == ["error", "status_500"]

    def test_removing_the_last_tag_removes_the_field(self, build: Build) -> None:
        [e] = run(build, [{"remove_tags": ["_grokparsefailure"]}], {"tags": ["_grokparsefailure"]})
        assert "tags" not in e


class TestConditionsAndOrder:
    def test_the_seeds_error_tag_only_on_error_application_events(self, build: Build) -> None:
        op = {"add_tags": ["error"], "when": {"all": [{"field": "log_type", "equals": "application"},
                                                      {"field": "level", "equals": "ERROR"}]}}
        events = run(build, [op], {"log_type": "application", "level": "ERROR"},
                     {"log_type": "application", "level": "INFO"}, {"log_type": "access", "level": "ERROR"})
        assert [e.get("tags") for e in events] == [["error"], None, None]

    def test_operations_apply_in_order(self, build: Build) -> None:
        [e] = run(build, [{"rename": {"a": "b"}}, {"convert": {"b": "int"}}, {"set": {"c": "{b}"}}], {"a": "7"})
        assert e == {"b": 7, "c": "7"}

    @pytest.mark.parametrize("op", [
        pytest.param({}, id="none"),
        pytest.param({"set": {"a": 1}, "remove": ["b"]}, id="two"),
        pytest.param({"when": {"field": "a", "exists": True}}, id="only-when"),
    ])
    def test_exactly_one_operation_per_item(self, op: dict[str, Any]) -> None:
        with pytest.raises(ValidationError, match="exactly one of set, add, remove"):
            MutateTransformConfig.model_validate({"type": "mutate", "inputs": ["x"], "operations": [op]})
