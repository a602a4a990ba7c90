"""BIND 9 query log."""

from __future__ import annotations

from typing import Any

Q = (
    "02-Jan-2024 03:04:05.123 queries: info: client @0x7f8b4c01e568 10.0.0.5#53211 (www.example.com): "
    "query: www.example.com IN A +E(0)K (10.0.0.1)"
)

SAMPLES: dict[str, tuple[str, str, str]] = {
    "BIND9_TIMESTAMP": (Q, "02-Jan-2024 03:04:05.123", "2024-01-02 03:04:05.123"),
    "BIND9": (Q, Q, Q.replace("#53211", ":53211")),
    # ECS v1 only
    "BIND9_DNSTYPE": ("AAAA", "AAAA", "AAAAA"),
    "BIND9_CATEGORY": ("queries", "queries", "query"),
    "BIND9_QUERYLOGBASE": (Q, Q[Q.index("client") :], "client 10.0.0.5 (www.example.com): query: x IN A"),
    "BIND9_QUERYLOG": (Q, Q, Q.replace("queries: info:", "queries:")),
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{BIND9}", "disabled", Q, {"timestamp": "02-Jan-2024 03:04:05.123", "loglevel": "info",
     "clientip": "10.0.0.5", "clientport": 53211, "query": "www.example.com", "querytype": "A", "dns": "10.0.0.1"}),
    ("%{BIND9}", "v1", Q, {"client": {"ip": "10.0.0.5", "port": 53211}, "log": {"level": "info"},
     "bind": {"log": {"category": "queries", "question": {"name": "www.example.com", "flags": "+E(0)K"}}},
     "dns": {"question": {"name": "www.example.com", "class": "IN", "type": "A"}}, "server": {"ip": "10.0.0.1"}}),
]  # fmt: skip
