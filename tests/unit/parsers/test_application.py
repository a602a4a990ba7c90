"""Application logs: JSON, logfmt, plain-text layouts, stack traces (formats/application.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from parsers.dates import DateParser
from parsers.formats.application import ApplicationLogFormat, extract_stack_trace
from parsers.types import DATE_FAILURE, GROK_FAILURE, JSON_FAILURE

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"
NOW = datetime(2024, 1, 5, 12, tzinfo=UTC).timestamp()


def fixture(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


def parse(message: str, **kwargs: Any) -> dict[str, Any]:
    fmt = ApplicationLogFormat(DateParser(clock=lambda: NOW), **kwargs)
    return fmt({"message": message})


class TestJson:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(
                fixture("app_json.log")[0],
                {"message": "GET /orders 200", "@timestamp": "2024-01-02T03:04:05.123Z", "level": "INFO",
                 "logger": "app.http", "request_id": "req-1", "user_id": 42, "duration_ms": 12.5},
                id="basic",
            ),
            pytest.param(
                fixture("app_json.log")[1],
                {"message": "order placed", "@timestamp": "2024-01-02T03:04:05.123Z", "level": "INFO",
                 "logger": "checkout", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7",
                 "service": "checkout"},
                id="pino-epoch-ms-numeric-level",
            ),
            pytest.param(
                fixture("app_json.log")[2],
                {"message": "cache miss ratio high", "@timestamp": "2024-01-02T03:04:05.000Z", "level": "WARNING",
                 "logger": "com.example.Cache", "json": {"host": "web-1", "tags": ["cache"]}},
                id="reserved-keys-nested-under-json",
            ),
            pytest.param(
                fixture("app_json.log")[3],
                {"message": "job failed", "@timestamp": "2024-01-02T03:04:05.123Z", "level": "ERROR",
                 "logger": "worker",
                 "error": {"type": "ValueError", "message": "bad payload",
                           "stack_trace": 'Traceback (most recent call last):\n  File "/app/worker.py", line 10, in '
                                          'run\n    process(job)\n  File "/app/worker.py", line 5, in process\n    '
                                          'raise ValueError("bad payload")\nValueError: bad payload'}},
                id="python-exc-info-string",
            ),
            pytest.param(
                fixture("app_json.log")[4],
                {"message": "request failed", "@timestamp": "2024-01-02T03:04:05.500Z", "level": "ERROR",
                 "error": {"type": "java.io.IOException", "message": "Broken pipe",
                           "stack_trace": "java.io.IOException: Broken pipe\n\tat "
                                          "sun.nio.ch.FileDispatcherImpl.write0(Native Method)"}},
                id="exception-object",
            ),
            pytest.param(
                fixture("app_json.log")[5],
                {"message": "nested payload", "@timestamp": "2024-01-02T03:04:05.000Z", "level": "DEBUG",
                 "http": {"method": "GET", "status": 200}, "json": {"source": "api"}},
                id="nested-objects-kept",
            ),
            pytest.param(
                '{"msg":"x","err":{"type":"TypeError","message":"y is undefined","stack":"TypeError: y is undefined'
                '\\n    at f (/app/a.js:1:2)"}}',
                {"message": "x", "error": {"type": "TypeError", "message": "y is undefined",
                                           "stack_trace": "TypeError: y is undefined\n    at f (/app/a.js:1:2)"}},
                id="pino-err",
            ),
            pytest.param(
                '{"message":"x","stack_trace":"java.lang.IllegalStateException: boom\\n\\tat a.B.c(B.java:1)"}',
                {"message": "x",
                 "error": {"type": "java.lang.IllegalStateException", "message": "boom",
                           "stack_trace": "java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)"}},
                id="logstash-logback-stack-trace",
            ),
            pytest.param(
                '{"message":"x","error":{"type":"E","message":"m","stack_trace":"E: m"}}',
                {"message": "x", "error": {"type": "E", "message": "m", "stack_trace": "E: m"}},
                id="ecs-error-object",
            ),
            pytest.param(
                '{"message":"x","error":"connection refused"}',
                {"message": "x", "error": "connection refused"},
                id="error-string-kept",
            ),
            pytest.param(
                '{"msg":"a","message":"b","level":"info","severity":"ERROR"}',
                {"message": "a", "level": "INFO", "severity": "ERROR", "json": {"message": "b"}},
                id="first-key-of-a-role-wins-others-kept",
            ),
            pytest.param(
                '{"msg":"a","requestId":"r1","traceId":"t1"}',
                {"message": "a", "request_id": "r1", "trace_id": "t1"},
                id="camel-case-aliases",
            ),
            pytest.param('{"level":"info"}', {"message": '{"level":"info"}', "level": "INFO"}, id="no-message-key"),
            pytest.param(
                '{"message":{"text":"x"}}', {"message": '{"message":{"text":"x"}}', "json": {"message": {"text": "x"}}},
                id="non-string-message",
            ),
            pytest.param('  {"msg":"indented"}', {"message": "indented"}, id="leading-whitespace"),
        ],
    )  # fmt: skip
    def test_line(self, line: str, expected: dict[str, Any]) -> None:
        assert parse(line) == expected

    def test_structlog_event_key_is_the_message(self) -> None:
        event = parse('{"timestamp":"2024-01-02T03:04:05Z","level":"error","event":"request failed","path":"/x"}')
        assert event["message"] == "request failed" and event["event"] == "request failed"
        assert event["level"] == "ERROR" and event["path"] == "/x"

    def test_message_key_wins_over_event(self) -> None:
        assert parse('{"msg":"real","event":"login"}')["message"] == "real"

    def test_bad_timestamp_tags_and_keeps_raw_value(self) -> None:
        event = ApplicationLogFormat()({"message": '{"timestamp":"not a date","msg":"x"}', "@timestamp": "ingest"})
        assert event == {"message": "x", "@timestamp": "ingest", "timestamp": "not a date", "tags": [DATE_FAILURE]}

    def test_bad_at_timestamp_goes_under_json(self) -> None:
        event = parse('{"@timestamp":"never","msg":"x"}')
        assert event == {"message": "x", "json": {"@timestamp": "never"}, "tags": [DATE_FAILURE]}

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param('{"level":"info","msg":"trunc', id="truncated"),
            pytest.param('{"level": info}', id="invalid"),
            pytest.param("{", id="brace-only"),
            pytest.param('{"a":1} trailing', id="trailing-garbage"),
            pytest.param('{"msg":"\ud800"}', id="lone-surrogate"),
        ],
    )
    def test_invalid_json_keeps_message_and_tags(self, line: str) -> None:
        event = parse(line)
        assert event["message"] == line
        assert event["tags"] == [JSON_FAILURE, GROK_FAILURE]

    def test_too_deep(self) -> None:
        line = '{"a":' * 70 + "1" + "}" * 70
        event = parse(line, max_json_depth=64)
        assert event["tags"] == [JSON_FAILURE, GROK_FAILURE]
        assert parse(line, max_json_depth=100)["a"]["a"]["a"] is not None

    def test_too_big(self) -> None:
        line = orjson.dumps({"msg": "x" * 2000}).decode()
        assert parse(line, max_json_bytes=1000)["tags"] == [JSON_FAILURE, GROK_FAILURE]
        assert parse(line, max_json_bytes=4000)["message"] == "x" * 2000

    def test_non_object_json_is_not_json_format(self) -> None:
        assert parse("[1, 2]")["tags"] == [GROK_FAILURE]

    def test_every_fixture_line_parses(self) -> None:
        for line in fixture("app_json.log"):
            event = parse(line)
            assert "tags" not in event, line
            assert event["@timestamp"].endswith("Z")
            assert event["level"].isupper()


class TestPlainText:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(
                "2024-01-02 03:04:05,123 INFO com.example.App - Started in 3.2 seconds",
                {"@timestamp": "2024-01-02T03:04:05.123Z", "level": "INFO", "logger": "com.example.App",
                 "message": "Started in 3.2 seconds"},
                id="ts-level-logger-dash",
            ),
            pytest.param(
                "2024-01-02T03:04:05Z [ERROR] app.db: connection lost",
                {"@timestamp": "2024-01-02T03:04:05.000Z", "level": "ERROR", "logger": "app.db",
                 "message": "connection lost"},
                id="ts-bracket-level-logger-colon",
            ),
            pytest.param(
                "2024-01-02 03:04:05.123 ERROR [main] c.e.OrderService - Request failed",
                {"@timestamp": "2024-01-02T03:04:05.123Z", "level": "ERROR", "thread": "main",
                 "logger": "c.e.OrderService", "message": "Request failed"},
                id="logback-level-thread",
            ),
            pytest.param(
                "2024-01-02 03:04:05.123 [http-nio-8080-exec-1] WARN  c.e.CacheService - slow lookup",
                {"@timestamp": "2024-01-02T03:04:05.123Z", "thread": "http-nio-8080-exec-1", "level": "WARN",
                 "logger": "c.e.CacheService", "message": "slow lookup"},
                id="logback-thread-level",
            ),
            pytest.param(
                "2024-01-02 03:04:05.123  INFO 12345 --- [           main] c.e.DemoApplication            : "
                "Started DemoApplication in 2.1 seconds",
                {"@timestamp": "2024-01-02T03:04:05.123Z", "level": "INFO", "pid": 12345, "thread": "main",
                 "logger": "c.e.DemoApplication", "message": "Started DemoApplication in 2.1 seconds"},
                id="spring-boot",
            ),
            pytest.param(
                "2024-01-02T03:04:05.123+01:00  WARN 7 --- [demo] [  main] c.e.A : hi",
                {"@timestamp": "2024-01-02T02:04:05.123Z", "level": "WARN", "pid": 7, "thread": "main",
                 "logger": "c.e.A", "message": "hi"},
                id="spring-boot-3-app-name",
            ),
            pytest.param(
                "2024-01-02 03:04:05,123 - myapp.worker - WARNING - queue is full",
                {"@timestamp": "2024-01-02T03:04:05.123Z", "logger": "myapp.worker", "level": "WARNING",
                 "message": "queue is full"},
                id="python-common",
            ),
            pytest.param(
                "[2024-01-02 03:04:05,123] INFO in views: rendering index",
                {"@timestamp": "2024-01-02T03:04:05.123Z", "level": "INFO", "logger": "views",
                 "message": "rendering index"},
                id="flask",
            ),
            pytest.param(
                "2024-01-02T03:04:05.123456+02:00 debug cache warmed",
                {"@timestamp": "2024-01-02T01:04:05.123Z", "level": "DEBUG", "message": "cache warmed"},
                id="ts-level-message-lowercase-level",
            ),
            pytest.param(
                "2024-05-14 09:12:06,417 INFO [billing.worker] charge started invoice=INV-10400",
                {"@timestamp": "2024-05-14T09:12:06.417Z", "level": "INFO", "logger": "billing.worker",
                 "message": "charge started invoice=INV-10400"},
                id="python-bracketed-logger",
            ),
            pytest.param(
                "2024-01-02 03:04:05 Server started on :8080",
                {"@timestamp": "2024-01-02T03:04:05.000Z", "message": "Server started on :8080"},
                id="ts-message-without-level",
            ),
            pytest.param(
                "WARNING:root:disk almost full",
                {"level": "WARNING", "logger": "root", "message": "disk almost full"},
                id="python-default",
            ),
            pytest.param("[error] bad thing", {"level": "ERROR", "message": "bad thing"}, id="bracket-level"),
            pytest.param("ERROR: bad thing", {"level": "ERROR", "message": "bad thing"}, id="level-colon"),
            pytest.param(
                "I0102 03:04:05.123456   12345 controller.go:42] Reconciling deployment default/web",
                {"level": "INFO", "pid": 12345, "source_file": "controller.go:42",
                 "message": "Reconciling deployment default/web", "@timestamp": "2024-01-02T03:04:05.123Z"},
                id="klog",
            ),
            pytest.param(
                'level=info ts=2024-01-02T03:04:05.123Z caller=main.go:512 msg="Server is \\"ready\\"."',
                {"level": "INFO", "@timestamp": "2024-01-02T03:04:05.123Z", "caller": "main.go:512",
                 "message": 'Server is "ready".'},
                id="logfmt",
            ),
        ],
    )  # fmt: skip
    def test_line(self, line: str, expected: dict[str, Any]) -> None:
        assert parse(line) == expected

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("just some words", id="words"),
            pytest.param("", id="empty"),
            pytest.param("Error connecting to db", id="capitalised-level-word-is-not-a-level"),
            pytest.param("key=value but then free text", id="not-logfmt"),
            pytest.param("a=1 b=2", id="logfmt-without-level-or-msg"),
        ],
    )
    def test_no_layout_matches(self, line: str) -> None:
        assert parse(line) == {"message": line, "tags": [GROK_FAILURE]}

    def test_bad_timestamp_in_text_layout(self) -> None:
        event = parse("2024-99-02 03:04:05 INFO app - x")
        assert event["tags"] == [DATE_FAILURE]
        assert event["level"] == "INFO"
        assert "@timestamp" not in event

    def test_overwrite_message_false(self) -> None:
        line = "2024-01-02 03:04:05,123 INFO com.example.App - Started"
        event = parse(line, overwrite_message=False)
        assert event["message"] == line
        assert event["logger"] == "com.example.App"

    def test_multiline_without_trace_keeps_continuation_lines(self) -> None:
        event = parse("2024-01-02 03:04:05,123 INFO app - SQL:\nSELECT 1\nFROM dual")
        assert event["message"] == "SQL:\nSELECT 1\nFROM dual"
        assert "error" not in event

    def test_invalid_utf8_replacement_chars(self) -> None:
        event = parse("2024-01-02 03:04:05,123 INFO app - caf\ufffd \ufffd")
        assert event["message"] == "caf\ufffd \ufffd"

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("x" * (10 * 1024 * 1024), id="10MB-text"),
            pytest.param("{" + "x" * (10 * 1024 * 1024), id="10MB-broken-json"),
            pytest.param("a=" * (5 * 1024 * 1024), id="10MB-logfmt-like"),
            pytest.param("2024-01-02 03:04:05 INFO " + "x" * (10 * 1024 * 1024), id="10MB-valid-prefix"),
            pytest.param("line\n\tat " * (1024 * 1024), id="10MB-frames"),
        ],
    )
    def test_huge_line_is_bounded(self, line: str) -> None:
        start = time.perf_counter()
        event = ApplicationLogFormat()({"message": line})
        assert time.perf_counter() - start < 3.0
        assert isinstance(event["message"], str)
        if not line.startswith("2024"):
            assert GROK_FAILURE in event["tags"]

    def test_every_fixture_line_parses(self) -> None:
        for line in fixture("app_text.log"):
            event = parse(line)
            assert "tags" not in event, line
            assert event["level"].isupper()


class TestStackTraces:
    def test_java_trace_in_text_record(self) -> None:
        record = (DATA / "stacktraces.log").read_text(encoding="utf-8").rstrip("\n")
        event = parse(record)
        trace = record[record.index("java.lang.IllegalStateException") :]
        assert event == {
            "@timestamp": "2024-01-02T03:04:05.123Z",
            "level": "ERROR",
            "thread": "main",
            "logger": "c.e.OrderService",
            "message": "Request failed",
            "error": {
                "type": "java.lang.IllegalStateException",
                "message": "Order 42 is closed",
                "stack_trace": trace,
            },
        }
        assert "Caused by: java.io.IOException: disk full" in event["error"]["stack_trace"]

    def test_python_traceback_in_text_record(self) -> None:
        record = (DATA / "traceback.log").read_text(encoding="utf-8").rstrip("\n")
        event = parse(record)
        assert event["message"] == "Unhandled error in job 7"
        assert event["logger"] == "app.worker"
        assert event["error"] == {
            "type": "KeyError",
            "message": "\"missing 'id'\"",
            "stack_trace": record[record.index("Traceback") :],
        }

    @pytest.mark.parametrize(
        ("record", "etype", "emsg", "message"),
        [
            pytest.param('Exception in thread "main" java.lang.NullPointerException\n\tat com.x.Main.main(Main.java:5)',
                         "java.lang.NullPointerException", None,
                         'Exception in thread "main" java.lang.NullPointerException', id="bare-java-no-message"),
            pytest.param("TypeError: Cannot read properties of undefined (reading 'id')\n"
                         "    at handler (/app/i.js:3:5)",
                         "TypeError", "Cannot read properties of undefined (reading 'id')",
                         "TypeError: Cannot read properties of undefined (reading 'id')", id="node"),
            pytest.param("Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n"
                         "KeyboardInterrupt", "KeyboardInterrupt", None, "Traceback (most recent call last):",
                         id="python-no-message"),
            pytest.param("Traceback (most recent call last):\n  File \"a.py\", line 3, in f\n    g()\n"
                         "ValueError: first\n\nDuring handling of the above exception, another exception occurred:\n\n"
                         "Traceback (most recent call last):\n  File \"a.py\", line 5, in f\n"
                         "    raise RuntimeError('x')\n"
                         "RuntimeError: second", "RuntimeError", "second", "Traceback (most recent call last):",
                         id="python-chained-last-wins"),
            pytest.param("2024-01-02 03:04:05 ERROR app - failed\ncom.x.AppException: line one\nline two\n"
                         "\tat com.x.A.b(A.java:1)", "com.x.AppException", "line one\nline two", "failed",
                         id="java-multiline-exception-message"),
        ],
    )  # fmt: skip
    def test_trace_shapes(self, record: str, etype: str, emsg: str | None, message: str) -> None:
        event = parse(record)
        assert event["error"]["type"] == etype
        assert event["error"].get("message") == emsg
        assert event["message"] == message
        assert "tags" not in event

    def test_no_trace_in_plain_multiline(self) -> None:
        assert extract_stack_trace("line one\nline two") is None

    def test_at_in_prose_is_not_a_trace(self) -> None:
        assert extract_stack_trace("meeting notes\n  at noon we decided") is None
