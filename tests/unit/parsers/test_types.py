"""Tag helper and constants (parsers/types.py)."""

from __future__ import annotations

from typing import Any

import pytest

from parsers import types


class TestAddTag:
    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            pytest.param({}, ["_x"], id="creates-list"),
            pytest.param({"tags": ["a"]}, ["a", "_x"], id="appends"),
            pytest.param({"tags": ["_x"]}, ["_x"], id="no-duplicate"),
            pytest.param({"tags": None}, ["_x"], id="none"),
            pytest.param({"tags": "a"}, ["a", "_x"], id="scalar-normalised"),
            pytest.param({"tags": ("a", "_x")}, ["a", "_x"], id="tuple-normalised-no-duplicate"),
        ],
    )
    def test_add_tag(self, event: dict[str, Any], expected: list[str]) -> None:
        types.add_tag(event, "_x")
        assert event["tags"] == expected

    def test_keeps_the_same_list_object(self) -> None:
        tags = ["a"]
        event = {"tags": tags}
        types.add_tag(event, "b")
        assert event["tags"] is tags


def test_tag_constants() -> None:
    assert (types.GROK_FAILURE, types.DATE_FAILURE, types.JSON_FAILURE, types.GEOIP_FAILURE) == (
        "_grokparsefailure",
        "_dateparsefailure",
        "_jsonparsefailure",
        "_geoip_lookup_failure",
    )
    assert (types.TRUNCATED, types.INVALID_UTF8) == ("_truncated", "_invalid_utf8")


def test_reserved_keys() -> None:
    assert {"@timestamp", "message", "log_type", "host", "source", "kubernetes", "tags"} == types.RESERVED_KEYS
