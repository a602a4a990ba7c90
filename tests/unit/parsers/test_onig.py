"""Oniguruma syntax pasted from Logstash, rewritten into Python's."""

from __future__ import annotations

import re

import pytest

from parsers.onig import translate


class TestTranslate:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            pytest.param(r"\h{32}", r"[0-9A-Fa-f]{32}", id="hex-digit"),
            pytest.param(r"\H", r"[^0-9A-Fa-f]", id="not-hex-digit"),
            pytest.param(r"[\h-]+", r"[0-9A-Fa-f-]+", id="hex-digit-in-class"),
            pytest.param(r"[[:alpha:]_]+", r"[a-zA-Z_]+", id="posix-class"),
            pytest.param(r"(/[[[:alnum:]]_%!$@:.,+~-]*)+", r"(/[a-zA-Z0-9_%!$@:.,+~-]*)+", id="nested-posix-class"),
            pytest.param(r"[a-c[x-z]]", r"[a-cx-z]", id="nested-class-is-a-union"),
            pytest.param(r"[]a]", r"[\]a]", id="leading-bracket-literal"),
            pytest.param(r"a(?i)b|c", r"a(?i:b|c)", id="inline-option-to-end-of-group"),
            pytest.param(r"x(?:y(?i)z)w", r"x(?:y(?i:z))w", id="inline-option-closes-with-its-group"),
            pytest.param(r"(?m)Started .*", r"(?s:Started .*)", id="ruby-m-is-dotall"),
            pytest.param(r"(?-i)x", r"(?-i:x)", id="option-off"),
            pytest.param(r"(?i:ab)c", r"(?i:ab)c", id="scoped-option-kept"),
            pytest.param(r"a\z", r"a\Z", id="end-of-text"),
            pytest.param(r"a\Z", r"a(?=\n?\Z)", id="end-before-final-newline"),
            pytest.param(r"\x{263A}", r"\u263a", id="code-point"),
            pytest.param(r"(?<=a)b(?!c)(?>d)e++(?P<g1>f)(?#note)", r"(?<=a)b(?!c)(?>d)e++(?P<g1>f)(?#note)",
                         id="python-syntax-unchanged"),
        ],
    )  # fmt: skip
    def test_rewrites(self, source: str, expected: str) -> None:
        assert translate(source) == expected

    @pytest.mark.parametrize(
        ("source", "text", "matched"),
        [
            (r"^[[:upper:]][[:lower:]]+$", "Hello", True),
            (r"^[[:upper:]][[:lower:]]+$", "hello", False),
            (r"^a(?i)bc$", "aBC", True),
            (r"^a(?i)bc$", "ABC", False),
            (r"^x(?m).y$", "x\ny", True),
            (r"^\h+$", "deadBEEF", True),
            (r"^\h+$", "xyz", False),
        ],
    )
    def test_translated_regex_behaves_like_oniguruma(self, source: str, text: str, matched: bool) -> None:
        assert (re.search(translate(source), text) is not None) is matched

    def test_unbalanced_close_is_left_for_the_compiler(self) -> None:
        with pytest.raises(re.error):
            re.compile(translate("a)b"))
