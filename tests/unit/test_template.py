"""Templates (pipeline/template.py): fields, dotted paths, truncation, defaults, escapes, dates, trees."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.template import Template, compile_tree

EVENT = {"service": "api", "error": {"type": "KeyError", "code": 7}, "message": "x" * 500, "empty": "",
         "none": None, "ok": False, "ratio": 0.5, "tags": ["a", "b"], "flat.key": "flat"}


class TestRender:
    @pytest.mark.parametrize(("source", "expected"), [
        pytest.param("constant", "constant", id="constant"),
        pytest.param("{service}", "api", id="field"),
        pytest.param("svc={service}!", "svc=api!", id="field-in-text"),
        pytest.param("{error.type}/{error.code}", "KeyError/7", id="dotted-and-int"),
        pytest.param("{flat.key}", "flat", id="flat-dotted-key"),
        pytest.param("{missing}", "", id="missing-empty"),
        pytest.param("{missing|unknown}", "unknown", id="missing-default"),
        pytest.param("{empty|unknown}", "unknown", id="empty-default"),
        pytest.param("{none|-}", "-", id="null-default"),
        pytest.param("{service|unknown}", "api", id="present-ignores-default"),
        pytest.param("{ok}", "false", id="bool"),
        pytest.param("{ratio}", "0.5", id="float"),
        pytest.param("{tags}", '["a","b"]', id="list-as-json"),
        pytest.param("{error}", '{"type":"KeyError","code":7}', id="mapping-as-json"),
        pytest.param("{{literal}} {service}", "{literal} api", id="escaped-braces"),
        pytest.param("{ service }", "api", id="spaces"),
        pytest.param("{error.missing.deep|d}", "d", id="dotted-missing-default"),
    ])
    def test_render(self, source: str, expected: str) -> None:
        assert Template(source).render(EVENT) == expected

    def test_truncation(self) -> None:
        out = Template("{message:200}").render(EVENT)
        assert len(out) == 200 and out.endswith("…") and out[:199] == "x" * 199

    def test_truncation_leaves_short_values(self) -> None:
        assert Template("{service:200}").render(EVENT) == "api"

    def test_truncation_with_default(self) -> None:
        assert Template("{missing:3|abcdef}").render(EVENT) == "ab…"

    def test_constant_flag(self) -> None:
        assert Template("a {{b}}").is_constant and not Template("{a}").is_constant
        assert Template("a {{b}}").render({}) == "a {b}"


class TestErrors:
    @pytest.mark.parametrize("source", [
        pytest.param("{unclosed", id="unclosed"),
        pytest.param("closed}", id="stray-close"),
        pytest.param("{}", id="empty"),
        pytest.param("{a:b}", id="non-numeric-length"),
        pytest.param("{a:0}", id="zero-length"),
        pytest.param("{a b}", id="space-in-name"),
    ])
    def test_invalid(self, source: str) -> None:
        with pytest.raises(ValueError, match=r"unbalanced|invalid placeholder"):
            Template(source)


class TestTree:
    def test_slack_body(self) -> None:
        alert: dict[str, Any] = {"status": "firing", "labels": {"alertname": "AppError"},
                                 "annotations": {"summary": "boom", "count": "3"}}
        body = compile_tree({"text": "[{status}] {labels.alertname}: {annotations.summary} (x{annotations.count})",
                             "blocks": [{"type": "section", "n": 1}], "flag": True})
        assert body(alert) == {"text": "[firing] AppError: boom (x3)", "blocks": [{"type": "section", "n": 1}],
                               "flag": True}

    def test_keys_are_templates_too(self) -> None:
        assert compile_tree({"{status}": "x"})({"status": "resolved"}) == {"resolved": "x"}


class TestDatesAndNames:
    EVENT = {"@timestamp": "2024-03-09T07:05:01.123Z", "log_type": "access", "n": 5, "flag": True}

    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            pytest.param("logs-{log_type}-%Y.%m.%d", "logs-access-2024.03.09", id="index"),
            pytest.param("out/%Y/%m/%d/%H.jsonl", "out/2024/03/09/07.jsonl", id="path"),
            pytest.param("100%% {n}", "100% 5", id="escaped-percent"),
            pytest.param("{flag}", "true", id="bool-as-text"),
        ],
    )
    def test_render(self, source: str, expected: str) -> None:
        assert Template(source, strict_dates=True).render(self.EVENT) == expected

    def test_missing_text_is_per_template(self) -> None:
        assert Template("{service}-logs", missing="unknown").render({}) == "unknown-logs"
        assert Template("{service|x}-logs", missing="unknown").render({}) == "x-logs"
        assert Template("{service}-logs").render({}) == "-logs"

    def test_no_timestamp_uses_now(self) -> None:
        import time

        assert Template("%Y").render({}) == time.strftime("%Y", time.gmtime())

    def test_unsupported_code_is_an_error_in_names_and_text_elsewhere(self) -> None:
        with pytest.raises(ValueError, match="unsupported date code '%j'"):
            Template("logs-%j", strict_dates=True)
        assert Template("rate 5%j").render({}) == "rate 5%j"

    def test_values_are_never_rendered_twice(self) -> None:
        event = {"user": "{secret}", "secret": "s3cr3t", "pct": "%Y"}
        assert Template("{user} {pct}").render(event) == "{secret} %Y"

    def test_fields_lists_what_the_template_reads(self) -> None:
        assert Template("{a}-{b.c|x}:{d:3}").fields == ("a", "b.c", "d")
