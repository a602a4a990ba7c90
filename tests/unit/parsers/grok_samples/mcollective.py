"""MCollective daemon and audit logs."""

from __future__ import annotations

from typing import Any

LOG = "I, [2024-01-02T03:04:05.123456 #2381]  INFO -- : rpcaudit.rb:30:in `audit_request' request received"

SAMPLES: dict[str, tuple[str, str, str]] = {
    "MCOLLECTIVE": (LOG, LOG[: LOG.index(" --")], "I, [2024-01-02T03:04:05.123456 2381] INFO"),
    "MCOLLECTIVEAUDIT": (
        "2024-01-02T03:04:05.123456+0000: reqid=abc",
        "2024-01-02T03:04:05.123456+0000:",
        "2024-01-02T03:04:05.123456+0000",
    ),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{MCOLLECTIVE}", "disabled", LOG, {"timestamp": "2024-01-02T03:04:05.123456", "pid": "2381",
     "event_level": "INFO"}),
    ("%{MCOLLECTIVE}", "v1", LOG, {"process": {"pid": 2381}, "log": {"level": "INFO"}}),
]  # fmt: skip
