"""Process logs: structured records, and library noise rate-limited."""

from __future__ import annotations

import json
import logging

from pipeline.logs import JsonFormatter, LibraryRateLimit


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


class TestLibraryRateLimit:
    def test_repeated_library_errors_pass_once_per_interval_with_a_count(self) -> None:
        now = [0.0]
        limit = LibraryRateLimit(interval=10, clock=lambda: now[0])
        passed = []
        for i in range(50):
            now[0] = i * 0.1  # 5 s of reconnect errors, ten a second
            passed.append(limit.filter(_record("aiokafka", "Unable connect to %s", f"node {i}")))
        assert passed.count(True) == 1
        now[0] = 12.0
        later = _record("aiokafka", "Unable connect to %s", "node x")
        assert limit.filter(later)
        assert later.suppressed == 49  # type: ignore[attr-defined]

    def test_different_messages_and_our_own_logs_are_not_limited(self) -> None:
        limit = LibraryRateLimit(interval=10, clock=lambda: 0.0)
        assert limit.filter(_record("aiokafka", "a"))
        assert limit.filter(_record("aiokafka", "b"))
        assert all(limit.filter(_record("pipeline.sink", "sink send failed, retrying")) for _ in range(5))


class TestJsonFormatter:
    def test_extras_become_fields(self) -> None:
        record = _record("pipeline.sink", "sink send failed, retrying")
        record.component = "es"
        out = json.loads(JsonFormatter().format(record))
        assert out["msg"] == "sink send failed, retrying" and out["component"] == "es" and out["level"] == "error"
