"""The grok engine: syntax, captures, types, nesting, user patterns, errors, caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parsers.errors import GrokError
from parsers.grok import Grok, compile_grok, field_path


class TestCaptures:
    @pytest.mark.parametrize(
        ("expression", "text", "expected"),
        [
            pytest.param("%{WORD:verb} %{NOTSPACE:path}", "GET /x", {"verb": "GET", "path": "/x"}, id="named"),
            pytest.param("%{INT:n:int}", "n=-42", {"n": -42}, id="cast-int"),
            pytest.param("%{NUMBER:n:float}", "took 1.5s", {"n": 1.5}, id="cast-float"),
            pytest.param("%{NUMBER:n:int}", "took 1.5s", {"n": 1}, id="cast-int-from-decimal"),
            pytest.param("%{NUMBER:n:float}", "took 7s", {"n": 7.0}, id="cast-float-from-int"),
            pytest.param(
                "%{IP:[client][ip]} %{POSINT:[client][port]:int}",
                "10.0.0.1 8080",
                {"client": {"ip": "10.0.0.1", "port": 8080}},
                id="nested-brackets",
            ),
            pytest.param(
                "%{IP:client.ip} %{POSINT:client.port:int}",
                "10.0.0.1 8080",
                {"client": {"ip": "10.0.0.1", "port": 8080}},
                id="nested-dots",
            ),
            pytest.param(
                "%{WORD:[http][request][method]} %{INT:http.response.status:int}",
                "GET 200",
                {"http": {"request": {"method": "GET"}, "response": {"status": 200}}},
                id="nested-mixed-depth",
            ),
            pytest.param("(?<user>[a-z]+)@(?<domain>\\S+)", "bob@example.com", {"user": "bob", "domain": "example.com"},
                         id="raw-named-groups"),
            pytest.param("(?<[user][name]>[a-z]+)@", "bob@", {"user": {"name": "bob"}}, id="raw-named-nested"),
            pytest.param("(?P<user>[a-z]+)@", "bob@", {"user": "bob"}, id="raw-python-named-group"),
            pytest.param("%{WORD:a}(?: %{WORD:b})?", "one", {"a": "one"}, id="non-participating-absent"),
            pytest.param("%{WORD:a}:%{DATA:b}:", "one::", {"a": "one"}, id="empty-capture-absent"),
            pytest.param("%{INT:a}", "x 12 y", {"a": "12"}, id="unanchored-search"),
            pytest.param(r"\[%{WORD:a}\] \%\{x\}", "[w] %{x}", {"a": "w"}, id="escapes-are-literal"),
            pytest.param("%{WORD:a} (?:%{WORD:a})", "first second", {"a": "first"}, id="duplicate-field-first-wins"),
            pytest.param(
                "(?:%{INT:v}|%{WORD:v})!", "word!", {"v": "word"}, id="duplicate-field-in-alternation"
            ),
        ],
    )  # fmt: skip
    def test_captures(self, expression: str, text: str, expected: dict[str, Any]) -> None:
        assert compile_grok(expression).match(text) == expected

    def test_no_match_returns_none(self) -> None:
        assert compile_grok("%{IPV4:ip}").match("no address here") is None

    @pytest.mark.parametrize("value", [None, 42, b"10.0.0.1"], ids=["none", "int", "bytes"])
    def test_non_string_input_returns_none(self, value: Any) -> None:
        assert compile_grok("%{IPV4:ip}").match(value) is None

    def test_invalid_utf8_replacement_chars_are_plain_text(self) -> None:
        text = "user=b\ufffd\ufffdb ip=10.0.0.1"
        assert compile_grok(r"user=%{NOTSPACE:user} ip=%{IP:ip}").match(text) == {
            "user": "b\ufffd\ufffdb",
            "ip": "10.0.0.1",
        }

    def test_cast_failure_keeps_text(self) -> None:
        # A user pattern that can capture non-numbers: the text is kept, nothing raises.
        g = compile_grok("%{WORD:n:int}")
        assert g.match("abc") == {"n": "abc"}

    def test_scalar_then_nested_same_root_keeps_first(self) -> None:
        g = compile_grok("%{WORD:a} %{WORD:a.b}")
        assert g.match("x y") == {"a": "x"}


class TestNamedCapturesOnly:
    def test_default_does_not_capture_unnamed(self) -> None:
        assert compile_grok("%{WORD} %{INT:n}").match("abc 5") == {"n": "5"}

    def test_false_captures_unnamed_under_pattern_name(self) -> None:
        got = compile_grok("%{WORD} %{INT:n}", named_captures_only=False).match("abc 5")
        assert got == {"WORD": "abc", "n": "5"}

    def test_inner_named_fields_always_captured(self) -> None:
        got = compile_grok("%{SYSLOGPROG}").match("sshd[42]")
        assert got == {"program": "sshd", "pid": "42"}


class TestMultiplePatterns:
    def test_first_match_wins(self) -> None:
        g = compile_grok(["%{INT:first}", "%{WORD:second}"])
        assert g.match("123") == {"first": "123"}
        assert g.match("abc") == {"second": "abc"}

    def test_order_matters_when_both_match(self) -> None:
        assert compile_grok(["%{WORD:w}", "%{INT:i}"]).match("42") == {"w": "42"}
        assert compile_grok(["%{INT:i}", "%{WORD:w}"]).match("42") == {"i": "42"}

    def test_none_match(self) -> None:
        assert compile_grok(["%{IPV4:a}", "%{UUID:b}"]).match("nothing") is None

    def test_field_names_lists_all(self) -> None:
        assert compile_grok(["%{INT:a} %{INT:b}", "%{WORD:c}"]).field_names == ["a", "b", "c"]


class TestUserPatterns:
    def test_pattern_definitions(self) -> None:
        g = compile_grok("%{ORDER:order}", pattern_definitions={"ORDER": "ORD-[0-9]{4}"})
        assert g.match("id ORD-1234") == {"order": "ORD-1234"}

    def test_definitions_reference_builtins_and_each_other(self) -> None:
        defs = {"PAIR": "%{KEY}=%{INT:value:int}", "KEY": "[a-z]+"}
        assert compile_grok("%{PAIR}", pattern_definitions=defs).match("x=5") == {"value": 5}

    def test_definitions_override_builtins(self) -> None:
        g = compile_grok("%{WORD:w}", pattern_definitions={"WORD": "[0-9]+"})
        assert g.match("abc 123") == {"w": "123"}

    def test_patterns_dir_loads_every_file(self, tmp_path: Path) -> None:
        (tmp_path / "app").write_text("# app patterns\n\nTICKET T-[0-9]+\n", encoding="utf-8")
        (tmp_path / "more.grok").write_text("SEVERITY (?:LOW|HIGH)\n", encoding="utf-8")
        g = compile_grok("%{TICKET:t} %{SEVERITY:s}", patterns_dir=str(tmp_path))
        assert g.match("T-99 HIGH") == {"t": "T-99", "s": "HIGH"}

    def test_inline_definitions_override_patterns_dir(self, tmp_path: Path) -> None:
        (tmp_path / "p").write_text("CODE [A-Z]+\n", encoding="utf-8")
        g = compile_grok("%{CODE:c}", patterns_dir=str(tmp_path), pattern_definitions={"CODE": "[0-9]+"})
        assert g.match("AB 12") == {"c": "12"}

    def test_bad_line_in_patterns_dir_names_file_and_line(self, tmp_path: Path) -> None:
        (tmp_path / "broken").write_text("GOOD x\nNOREGEX\n", encoding="utf-8")
        with pytest.raises(GrokError, match=r"broken:2"):
            compile_grok("%{GOOD}", patterns_dir=str(tmp_path))

    def test_missing_patterns_dir(self, tmp_path: Path) -> None:
        with pytest.raises(GrokError, match="not a directory"):
            compile_grok("%{WORD}", patterns_dir=str(tmp_path / "nope"))


class TestErrors:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            pytest.param({"patterns": "%{FOO:x} bar"}, r"unknown grok pattern %\{FOO\} in '%\{FOO:x\} bar'",
                         id="unknown-pattern"),
            pytest.param({"patterns": "%{BAD:x}", "pattern_definitions": {"BAD": "(unclosed"}},
                         r"invalid regex in grok pattern %\{BAD\}", id="invalid-regex-in-definition"),
            pytest.param({"patterns": "%{WORD:x} (oops"}, r"invalid regex in grok expression '%\{WORD:x\} \(oops'",
                         id="invalid-regex-in-expression"),
            pytest.param({"patterns": "%{A}", "pattern_definitions": {"A": "%{B}", "B": "x%{A}"}},
                         r"recursive grok pattern %\{A\} \(A -> B -> A\)", id="recursive"),
            pytest.param({"patterns": "%{WORD:x:bool}"}, r"unknown grok type 'bool'", id="unknown-type"),
            pytest.param({"patterns": "%{WORD x}"}, r"malformed grok reference", id="malformed-reference"),
            pytest.param({"patterns": "%{WORD:[a]b}"}, r"invalid field reference", id="bad-field-reference"),
            pytest.param({"patterns": []}, r"no grok expression", id="empty-list"),
            pytest.param({"patterns": "%{X}", "pattern_definitions": {"bad name": "x"}}, r"invalid grok pattern name",
                         id="bad-definition-name"),
        ],
    )  # fmt: skip
    def test_build_errors(self, kwargs: dict[str, Any], match: str) -> None:
        patterns = kwargs.pop("patterns")
        with pytest.raises(GrokError, match=match):
            compile_grok(patterns, **kwargs)

    def test_grok_error_is_value_error(self) -> None:
        with pytest.raises(ValueError, match="FOO"):
            compile_grok("%{FOO}")


class TestCompileCache:
    def test_same_expression_reuses_compiled_regex(self) -> None:
        a = compile_grok("%{IP:ip} %{INT:n}")
        b = compile_grok("%{IP:ip} %{INT:n}")
        assert a._compiled[0] is b._compiled[0]

    def test_definitions_are_part_of_the_key(self) -> None:
        a = compile_grok("%{X:x}", pattern_definitions={"X": "[a-z]+"})
        b = compile_grok("%{X:x}", pattern_definitions={"X": "[0-9]+"})
        assert a._compiled[0] is not b._compiled[0]
        assert a.match("abc 123") == {"x": "abc"}
        assert b.match("abc 123") == {"x": "123"}

    def test_named_captures_only_is_part_of_the_key(self) -> None:
        a = compile_grok("%{INT}")
        b = compile_grok("%{INT}", named_captures_only=False)
        assert a.match("5") == {}
        assert b.match("5") == {"INT": "5"}


class TestEngines:
    def test_stdlib_engine_used_when_compatible(self) -> None:
        assert compile_grok("%{COMBINEDAPACHELOG}")._compiled[0].fast is not None

    def test_regex_only_syntax_falls_back_to_regex_module(self) -> None:
        g = compile_grok(r"(?<word>\p{Lu}\p{Ll}+)")  # Unicode properties: `regex` only
        assert g._compiled[0].fast is None
        assert g.match("über Zürich") == {"word": "Zürich"}

    def test_variable_width_lookbehind_falls_back(self) -> None:
        g = compile_grok(r"(?<=id=|ident=)%{INT:n}")
        assert g._compiled[0].fast is None
        assert g.match("ident=7") == {"n": "7"}

    def test_timeout_counts_as_no_match(self) -> None:
        g = compile_grok(r"^(?<x>(a|aa)+)+b$", timeout=0.05)
        assert g.match("a" * 40 + "c") is None
        with pytest.raises(TimeoutError):
            g.match_or_timeout("a" * 40 + "c")

    def test_timeout_still_matches_normal_input(self) -> None:
        assert compile_grok("%{INT:n}", timeout=1.0).match("n=3") == {"n": "3"}


class TestFieldPath:
    @pytest.mark.parametrize(
        ("name", "path"),
        [
            pytest.param("a", ("a",), id="flat"),
            pytest.param("[a][b]", ("a", "b"), id="brackets"),
            pytest.param("a.b.c", ("a", "b", "c"), id="dots"),
            pytest.param("@timestamp", ("@timestamp",), id="at-sign"),
        ],
    )
    def test_split(self, name: str, path: tuple[str, ...]) -> None:
        assert field_path(name) == path

    @pytest.mark.parametrize("name", ["", "a..b", "[a]b", "[a", ".a"])
    def test_invalid(self, name: str) -> None:
        with pytest.raises(GrokError):
            field_path(name)


def test_repr_and_regexes() -> None:
    g = compile_grok(["%{INT:a}"])
    assert isinstance(g, Grok)
    assert repr(g) == "Grok(['%{INT:a}'])"
    assert "(?P<g1>" in g.regexes[0]


class TestLogstashSyntax:
    """Expressions as Logstash users write them (Oniguruma regex syntax)."""

    @pytest.mark.parametrize(
        ("expression", "text", "expected"),
        [
            pytest.param(r"(?<request_id>\h{8})", "id=deadbeef", {"request_id": "deadbeef"}, id="hex-class"),
            pytest.param(r"(?<name>[[:alpha:]]+)=(?<value>[[:digit:]]+)", "retries=3", {"name": "retries",
                         "value": "3"}, id="posix-classes"),
            pytest.param(r"(?<word>(?>[a-z]+))!", "ok!", {"word": "ok"}, id="atomic-group"),
            pytest.param(r"(?<digits>\d++)x", "123x", {"digits": "123"}, id="possessive"),
            pytest.param(r"%{WORD:verb} (?i)%{WORD:rest}", "GET abc", {"verb": "GET", "rest": "abc"},
                         id="inline-option-mid-pattern"),
            pytest.param(r"%{INT:n:integer}", "n=7", {"n": 7}, id="integer-type"),
            pytest.param(r"%{RAILS3HEAD}", 'Started GET "/" for 1.2.3.4 at 2024-01-02 03:04:05 +0000',
                         {"verb": "GET", "request": "/", "clientip": "1.2.3.4",
                          "timestamp": "2024-01-02 03:04:05 +0000"}, id="builtin-with-inline-option"),
        ],
    )  # fmt: skip
    def test_pasted_expressions(self, expression: str, text: str, expected: dict[str, Any]) -> None:
        assert compile_grok(expression).match(text) == expected


class TestEcsCompatibility:
    LINE = '203.0.113.9 - jane [02/Jan/2024:03:04:05 +0000] "GET /a?b=1 HTTP/1.1" 404 153 "-" "curl/8.5.0"'

    def test_default_is_legacy_field_names(self) -> None:
        got = compile_grok("%{COMBINEDAPACHELOG}").match(self.LINE)
        assert got is not None
        assert got["clientip"] == "203.0.113.9" and got["response"] == "404" and got["auth"] == "jane"

    def test_v1_is_ecs_field_names_and_types(self) -> None:
        got = compile_grok("%{COMBINEDAPACHELOG}", ecs_compatibility="v1").match(self.LINE)
        assert got == {
            "source": {"address": "203.0.113.9"},
            "user": {"name": "jane"},
            "timestamp": "02/Jan/2024:03:04:05 +0000",
            "http": {"request": {"method": "GET"}, "version": "1.1",
                     "response": {"status_code": 404, "body": {"bytes": 153}}},
            "url": {"original": "/a?b=1"},
            "user_agent": {"original": "curl/8.5.0"},
        }  # fmt: skip

    def test_set_is_part_of_the_cache_key(self) -> None:
        legacy = compile_grok("%{SYSLOGPROG}")
        ecs = compile_grok("%{SYSLOGPROG}", ecs_compatibility="v1")
        assert legacy.field_names == ["program", "pid"]
        assert ecs.field_names == ["[process][name]", "[process][pid]"]
