"""EventParser: routing by log_type, auto-detection, user grok, batches (parsers/dispatch.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from parsers import EventParser, GrokError
from parsers.types import DATE_FAILURE, GROK_FAILURE, GROK_TIMEOUT, INVALID_UTF8, PARSE_EXCEPTION

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"

ACCESS = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.1" 200 5 "-" "ua"'
NGINX_ERROR = "2024/01/02 03:04:06 [notice] 1#1: signal process started"
APACHE_ERROR = "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] denied"
APP_JSON = '{"level":"info","msg":"hello"}'
APP_TEXT = "2024-01-02 03:04:05,123 INFO com.example.App - Started"


def fixture(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


class TestAutoDetect:
    @pytest.mark.parametrize(
        ("message", "log_type", "field"),
        [
            pytest.param(ACCESS, "access", "status", id="access"),
            pytest.param(NGINX_ERROR, "error", "pid", id="nginx-error"),
            pytest.param(APACHE_ERROR, "error", "client_ip", id="apache-error"),
            pytest.param(APP_JSON, "application", "level", id="json"),
            pytest.param(APP_TEXT, "application", "logger", id="text"),
        ],
    )
    def test_detects_and_records_log_type(self, message: str, log_type: str, field: str) -> None:
        event = EventParser()({"message": message})
        assert event["log_type"] == log_type
        assert field in event
        assert "tags" not in event

    @pytest.mark.parametrize(
        ("name", "log_type"),
        [
            ("access_nginx.log", "access"),
            ("access_apache.log", "access"),
            ("error_nginx.log", "error"),
            ("error_apache.log", "error"),
            ("app_json.log", "application"),
            ("app_text.log", "application"),
        ],
    )
    def test_fixture_files(self, name: str, log_type: str) -> None:
        events = EventParser().parse_batch([{"message": line} for line in fixture(name)])
        assert {e["log_type"] for e in events} == {log_type}
        assert not [e for e in events if "tags" in e]

    def test_unknown_shape_is_application_and_tagged(self) -> None:
        event = EventParser()({"message": "hello world"})
        assert event == {"message": "hello world", "log_type": "application", "tags": [GROK_FAILURE]}

    def test_declared_log_type_routes(self) -> None:
        # An access line declared as "application" is parsed as an application log (and fails).
        event = EventParser()({"message": ACCESS, "log_type": "application"})
        assert event["log_type"] == "application"
        assert event["tags"] == [GROK_FAILURE]
        assert "status" not in event

    def test_unknown_declared_log_type_is_detected(self) -> None:
        event = EventParser()({"message": ACCESS, "log_type": "weird"})
        assert event["log_type"] == "access"


class TestFixedLogType:
    @pytest.mark.parametrize(
        ("log_type", "message", "field"),
        [
            ("access", ACCESS, "status"),
            ("error", NGINX_ERROR, "pid"),
            ("application", APP_TEXT, "logger"),
            ("json", '{"a": 1}', "a"),
        ],
    )
    def test_fixed_type(self, log_type: str, message: str, field: str) -> None:
        event = EventParser(log_type)({"message": message, "log_type": "something-else"})
        assert event["log_type"] == log_type
        assert field in event

    def test_fixed_type_no_match(self) -> None:
        event = EventParser("access")({"message": APP_TEXT})
        assert event["tags"] == [GROK_FAILURE]
        assert event["message"] == APP_TEXT

    def test_none_passes_through(self) -> None:
        assert EventParser("none")({"message": ACCESS}) == {"message": ACCESS, "log_type": "none"}

    def test_unknown_log_type_rejected(self) -> None:
        with pytest.raises(ValueError, match="unknown log_type 'syslog'"):
            EventParser("syslog")


class TestUserGrok:
    def test_fields_merged_typed_and_timestamp_converted(self) -> None:
        p = EventParser(grok=["%{SYSLOGLINE}"], clock=lambda: 1704456000.0)  # 2024-01-05
        event = p({"message": "Jan  2 03:04:05 web-1 sshd[4721]: Accepted publickey", "host": "node-1"})
        assert event == {
            "message": "Accepted publickey",
            "host": "node-1",
            "@timestamp": "2024-01-02T03:04:05.000Z",
            "logsource": "web-1",
            "program": "sshd",
            "pid": "4721",
        }

    def test_ecs_compatibility_v1_captures_ecs_fields(self) -> None:
        p = EventParser(grok=["%{SYSLOGLINE}"], ecs_compatibility="v1", clock=lambda: 1704456000.0)
        event = p({"message": "Jan  2 03:04:05 web-1 sshd[4721]: Accepted publickey", "host": "node-1"})
        assert event["@timestamp"] == "2024-01-02T03:04:05.000Z"
        assert event["process"] == {"name": "sshd", "pid": 4721}
        assert event["message"] == "Accepted publickey"
        # `host` is a reserved event key: the ECS [host][hostname] capture lands under `grok`.
        assert event["host"] == "node-1"
        assert event["grok"] == {"host": {"hostname": "web-1"}}

    def test_unknown_ecs_compatibility_rejected(self) -> None:
        with pytest.raises(GrokError, match="ecs_compatibility"):
            EventParser(grok=["%{WORD}"], ecs_compatibility="v8")

    def test_types_and_nested(self) -> None:
        p = EventParser(grok=["%{IP:[client][ip]} %{INT:[http][status]:int} %{NUMBER:took:float}"])
        event = p({"message": "10.0.0.1 404 0.25", "http": {"version": "1.1"}})
        assert event["client"] == {"ip": "10.0.0.1"}
        assert event["http"] == {"version": "1.1", "status": 404}
        assert event["took"] == 0.25

    def test_first_match_wins_and_failure_tag(self) -> None:
        p = EventParser(grok=["^%{INT:n:int}$", "^%{WORD:w}$"])
        assert p({"message": "7"})["n"] == 7
        assert p({"message": "abc"})["w"] == "abc"
        assert p({"message": "a b"}) == {"message": "a b", "tags": [GROK_FAILURE]}

    def test_reserved_captures_are_nested_under_grok(self) -> None:
        p = EventParser(grok=["%{WORD:host} %{WORD:source} %{WORD:tags}"])
        event = p({"message": "a b c", "host": "node-1"})
        assert event["host"] == "node-1"
        assert event["grok"] == {"host": "a", "source": "b", "tags": "c"}
        assert "tags" not in event

    def test_overwrite_message_false_keeps_line(self) -> None:
        p = EventParser(grok=["%{WORD:level} %{GREEDYDATA:message}"], overwrite_message=False)
        assert p({"message": "INFO hello"}) == {"message": "INFO hello", "level": "INFO"}

    def test_bad_timestamp_tagged_raw_kept(self) -> None:
        p = EventParser(grok=["%{NOTSPACE:timestamp} %{GREEDYDATA:rest}"])
        event = p({"message": "yesterday hello", "@timestamp": "ingest"})
        assert event["@timestamp"] == "ingest"
        assert event["timestamp"] == "yesterday"
        assert event["tags"] == [DATE_FAILURE]

    def test_date_formats_apply_to_grok_timestamp(self) -> None:
        p = EventParser(grok=[r"^(?<timestamp>\S+ \S+) %{GREEDYDATA:rest}"], date_formats=["%d.%m.%Y %H:%M:%S"],
                        timezone="Europe/Berlin")  # fmt: skip
        assert p({"message": "31.01.2024 10:00:00 x"})["@timestamp"] == "2024-01-31T09:00:00.000Z"

    def test_custom_timestamp_field(self) -> None:
        p = EventParser(grok=[r"^%{TIMESTAMP_ISO8601:when} "], timestamp_field="when")
        assert p({"message": "2024-01-02T03:04:05Z x"})["@timestamp"] == "2024-01-02T03:04:05.000Z"

    def test_fixed_log_type_with_grok(self) -> None:
        assert EventParser("access", grok=["%{INT:n}"])({"message": "1"})["log_type"] == "access"

    def test_patterns_dir_and_definitions(self, tmp_path: Path) -> None:
        (tmp_path / "p").write_text("ORDER ORD-[0-9]+\n", encoding="utf-8")
        p = EventParser(grok=["%{ORDER:order} %{SKU:sku}"], patterns_dir=str(tmp_path),
                        pattern_definitions={"SKU": "[A-Z]{3}"})  # fmt: skip
        assert p({"message": "ORD-1 ABC"})["sku"] == "ABC"

    def test_named_captures_only_false(self) -> None:
        p = EventParser(grok=["%{INT} %{WORD:w}"], named_captures_only=False)
        assert p({"message": "5 x"})["INT"] == "5"

    def test_build_error_is_grok_error(self) -> None:
        with pytest.raises(GrokError, match="NOPE"):
            EventParser(grok=["%{NOPE:x}"])

    def test_timeout_tags(self) -> None:
        p = EventParser(grok=[r"^(?<x>(a|aa)+)+b$"], grok_timeout=0.05)
        event = p({"message": "a" * 40 + "c"})
        assert event["tags"] == [GROK_TIMEOUT, GROK_FAILURE]


class TestRobustness:
    @pytest.mark.parametrize(
        ("event", "expected"),
        [
            pytest.param({}, {"tags": [GROK_FAILURE]}, id="no-message"),
            pytest.param({"message": None}, {"message": None, "tags": [GROK_FAILURE]}, id="none"),
            pytest.param({"message": 42}, {"message": 42, "tags": [GROK_FAILURE]}, id="int"),
        ],
    )
    def test_non_text_message(self, event: dict[str, Any], expected: dict[str, Any]) -> None:
        assert EventParser()(event) == expected

    def test_bytes_message_decoded_with_replacement(self) -> None:
        event = EventParser()({"message": b"WARNING:root:caf\xe9"})
        assert event["message"] == "caf\ufffd"
        assert event["level"] == "WARNING"
        assert INVALID_UTF8 in event["tags"]

    def test_bug_in_a_format_tags_instead_of_raising(self, monkeypatch: pytest.MonkeyPatch) -> None:
        p = EventParser("access")

        def boom(event: dict[str, Any]) -> dict[str, Any]:
            raise RuntimeError("bug")

        monkeypatch.setitem(p._by_type, "access", boom)
        batch = [{"message": ACCESS}, {"message": ACCESS}]
        assert p.parse_batch(batch) == [
            {"message": ACCESS, "log_type": "access", "tags": [PARSE_EXCEPTION]},
            {"message": ACCESS, "log_type": "access", "tags": [PARSE_EXCEPTION]},
        ]
        assert p({"message": ACCESS})["tags"] == [PARSE_EXCEPTION]

    def test_replacement_chars_everywhere(self) -> None:
        lines = [ACCESS.replace("/x", "/\ufffd"), "\ufffd" * 100, '{"msg":"\ufffd"}', NGINX_ERROR + "\ufffd"]
        events = EventParser().parse_batch([{"message": line} for line in lines])
        assert events[0]["path"] == "/\ufffd"
        assert events[1]["tags"] == [GROK_FAILURE]
        assert events[2]["message"] == "\ufffd"
        assert events[3]["message"].endswith("\ufffd")


class TestBatch:
    def test_batch_equals_per_event(self) -> None:
        lines = [ACCESS, NGINX_ERROR, APACHE_ERROR, APP_JSON, APP_TEXT, "garbage", ""]
        one = [EventParser()({"message": line}) for line in lines]
        batch = EventParser().parse_batch([{"message": line} for line in lines])
        assert batch == one

    def test_batch_is_in_place_and_keeps_order(self) -> None:
        events = [{"message": ACCESS, "n": i} for i in range(5)]
        before = copy.copy(events)
        out = EventParser().parse_batch(events)
        assert out is events
        assert [e["n"] for e in out] == [0, 1, 2, 3, 4]
        assert all(a is b for a, b in zip(out, before, strict=True))

    def test_empty_batch(self) -> None:
        assert EventParser().parse_batch([]) == []
