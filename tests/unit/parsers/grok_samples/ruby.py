"""Ruby stdlib Logger."""

from __future__ import annotations

from typing import Any

LINE = "E, [2024-01-02T03:04:05.123456 #1234] ERROR -- worker: Job failed: undefined method `name' for nil"

SAMPLES: dict[str, tuple[str, str, str]] = {
    "RUBY_LOGLEVEL": ("WARN", "WARN", "WARNING"),
    "RUBY_LOGGER": (LINE, LINE, LINE.replace("#1234", "1234")),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{RUBY_LOGGER}", "disabled", LINE, {"timestamp": "2024-01-02T03:04:05.123456", "pid": 1234,
     "loglevel": "ERROR", "progname": "worker", "message": "Job failed: undefined method `name' for nil"}),
    ("%{RUBY_LOGGER}", "v1", LINE, {"process": {"pid": 1234, "name": "worker"}, "log": {"level": "ERROR"}}),
]  # fmt: skip
