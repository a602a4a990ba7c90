"""Dotted field paths (parsers/fieldpath.py): flat dotted keys first, then nested dicts."""

from __future__ import annotations

from typing import Any

import pytest

from parsers.fieldpath import compile_getter, get_path, pop_path, set_path

EVENT: dict[str, Any] = {"a": 1, "error": {"type": "KeyError", "deep": {"x": 0}}, "flat.key": "flat", "s": "text"}


class TestGet:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            pytest.param("a", 1, id="top"),
            pytest.param("error.type", "KeyError", id="nested"),
            pytest.param("error.deep.x", 0, id="three-deep-falsy"),
            pytest.param("flat.key", "flat", id="flat-dotted-key"),
            pytest.param("missing", None, id="missing"),
            pytest.param("error.missing.x", None, id="missing-middle"),
            pytest.param("s.len", None, id="through-a-string"),
            pytest.param("a.b", None, id="through-an-int"),
        ],
    )
    def test_get(self, path: str, expected: Any) -> None:
        assert compile_getter(path)(EVENT) == expected
        assert get_path(EVENT, path) == expected


class TestSetAndPop:
    def test_set_creates_parents(self) -> None:
        event: dict[str, Any] = {}
        set_path(event, "http.request.method", "GET")
        assert event == {"http": {"request": {"method": "GET"}}}

    def test_set_replaces_a_scalar_in_the_way(self) -> None:
        event: dict[str, Any] = {"http": "x"}
        set_path(event, "http.version", "1.1")
        assert event == {"http": {"version": "1.1"}}

    def test_pop(self) -> None:
        event: dict[str, Any] = {"a": {"b": 1, "c": 2}, "x.y": 3}
        assert pop_path(event, "a.b") == 1
        assert pop_path(event, "x.y") == 3
        assert pop_path(event, "a.zz") is None
        assert pop_path(event, "nope.b") is None
        assert event == {"a": {"c": 2}}
