"""JSON decoding limits and the generic JSON format (parsers/formats/json.py)."""

from __future__ import annotations

from typing import Any

import pytest

from parsers.formats.json import JsonDecoder, JsonFormat, looks_like_json
from parsers.types import GROK_FAILURE, JSON_FAILURE


class TestDecoder:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param('{"a": 1}', {"a": 1}, id="object"),
            pytest.param('{"a": {"b": [1, {"c": null}]}}', {"a": {"b": [1, {"c": None}]}}, id="nested"),
            pytest.param('{"u": "caf\\u00e9 \ufffd"}', {"u": "café \ufffd"}, id="unicode-and-replacement-char"),
        ],
    )
    def test_decodes(self, text: str, expected: dict[str, Any]) -> None:
        assert JsonDecoder().decode(text) == expected

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param('{"a": 1', id="truncated"),
            pytest.param("[1, 2]", id="array"),
            pytest.param('"s"', id="string"),
            pytest.param("", id="empty"),
            pytest.param('{"a": NaN}', id="nan-literal"),
        ],
    )
    def test_rejects(self, text: str) -> None:
        assert JsonDecoder().decode(text) is None

    def test_depth_limit_counts_nesting(self) -> None:
        at_limit = '{"a":' * 3 + "1" + "}" * 3
        over = '{"a":' * 4 + "1" + "}" * 4
        assert JsonDecoder(max_depth=3).decode(at_limit) is not None
        assert JsonDecoder(max_depth=3).decode(over) is None

    def test_many_siblings_are_not_depth(self) -> None:
        wide = "{" + ",".join(f'"k{i}": {{"x": [1]}}' for i in range(200)) + "}"
        assert JsonDecoder(max_depth=3).decode(wide) is not None

    def test_size_limit(self) -> None:
        assert JsonDecoder(max_bytes=10).decode('{"a": "0123456789"}') is None
        assert JsonDecoder(max_bytes=100).decode('{"a": "0123456789"}') == {"a": "0123456789"}

    def test_orjson_own_recursion_limit_is_a_failure_not_a_crash(self) -> None:
        deep = "[" * 5000 + "]" * 5000
        assert JsonDecoder(max_depth=10_000).decode("{" + '"a":' + deep + "}") is None

    @pytest.mark.parametrize("kwargs", [{"max_bytes": 0}, {"max_depth": 0}])
    def test_invalid_limits(self, kwargs: dict[str, int]) -> None:
        with pytest.raises(ValueError, match="must be > 0"):
            JsonDecoder(**kwargs)


class TestGenericFormat:
    def test_merges_keys_and_nests_reserved(self) -> None:
        event = JsonFormat()({"message": '{"a": 1, "host": "h", "tags": ["x"], "json": 2}', "host": "node-1"})
        assert event == {
            "message": '{"a": 1, "host": "h", "tags": ["x"], "json": 2}',
            "host": "node-1",
            "a": 1,
            "json": {"host": "h", "tags": ["x"], "json": 2},
        }

    def test_invalid(self) -> None:
        assert JsonFormat()({"message": '{"a": '})["tags"] == [JSON_FAILURE]

    def test_not_json(self) -> None:
        assert JsonFormat()({"message": "plain"})["tags"] == [GROK_FAILURE]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{}", True), ("  \t{", True), ("x{", False), ("", False), (" ", False), ("[{}]", False)],
)
def test_looks_like_json(text: str, expected: bool) -> None:
    assert looks_like_json(text) is expected
