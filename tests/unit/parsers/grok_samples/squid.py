# ruff: noqa: E501  (log lines are kept whole: they are the test data)
"""Squid native access.log."""

from __future__ import annotations

from typing import Any

LINE = "1704164645.123    245 192.168.1.20 TCP_MISS/200 4523 GET http://www.example.com/index.html - HIER_DIRECT/93.184.216.34 text/html"

SAMPLES: dict[str, tuple[str, str, str]] = {
    "SQUID3": (LINE, LINE, LINE.replace("TCP_MISS/200", "TCP_MISS")),
    # ECS v1 only
    "SQUID3_STATUS": ("200", "200", "2x"),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{SQUID3}", "disabled", LINE, {"timestamp": "1704164645.123", "duration": "245",
     "client_address": "192.168.1.20", "cache_result": "TCP_MISS", "status_code": "200", "bytes": "4523",
     "request_method": "GET", "url": "http://www.example.com/index.html", "hierarchy_code": "HIER_DIRECT",
     "server": "93.184.216.34", "content_type": "text/html"}),
    ("%{SQUID3}", "v1", LINE, {"squid": {"request": {"duration": 245}, "hierarchy_code": "HIER_DIRECT"},
     "source": {"ip": "192.168.1.20"}, "event": {"action": "TCP_MISS"}, "http": {"response": {"status_code": 200,
     "bytes": 4523, "mime_type": "text/html"}, "request": {"method": "GET"}},
     "destination": {"address": "93.184.216.34"}}),
]  # fmt: skip
