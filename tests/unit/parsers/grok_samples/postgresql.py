"""PostgreSQL with log_line_prefix '%t %u %c %p'."""

from __future__ import annotations

from typing import Any

LINE = "2024-01-02 03:04:05 UTC postgres 6593f1b2.1a2b 6699 LOG:  connection authorized: user=postgres"

SAMPLES: dict[str, tuple[str, str, str]] = {
    # DATESTAMP is a US/EU date: on an ISO date it matches from the day ("24-01-02"), as in Logstash.
    "POSTGRESQL": (LINE, LINE[2 : LINE.index(" LOG:")], "2024-01-02 03:04:05 UTC postgres 6593f1b2.1a2b"),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{POSTGRESQL}", "disabled", LINE, {"timestamp": "24-01-02 03:04:05", "user_id": "postgres",
     "connection_id": "6593f1b2.1a2b", "pid": "6699"}),
    ("%{POSTGRESQL}", "v1", LINE, {"event": {"timezone": "UTC"}, "user": {"name": "postgres"},
     "postgresql": {"log": {"connection_id": "6593f1b2.1a2b"}}, "process": {"pid": 6699}}),
]  # fmt: skip
