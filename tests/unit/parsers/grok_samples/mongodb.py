"""MongoDB 2.x and 3.x-4.2 text logs, 2.x slow queries."""

from __future__ import annotations

from typing import Any

LOG2 = "Jan  2 03:04:05 [conn12] end connection 10.0.0.5:51234 (3 connections now open)"
SLOW = (
    'query shop.orders query: { status: "new", total: { $gt: 100 } } ntoreturn:0 ntoskip:0 nscanned:1204 '
    "keyUpdates:0 numYields: 9 locks(micros) r:21034 nreturned:12 reslen:2048 134ms"
)
LOG3 = "2024-01-02T03:04:05.123+0000 I NETWORK  [conn12] end connection 10.0.0.5:51234 (3 connections now open)"

SAMPLES: dict[str, tuple[str, str, str]] = {
    "MONGO_LOG": (LOG2, LOG2, LOG2.replace("[conn12]", "conn12")),
    "MONGO_QUERY": (SLOW, '{ status: "new", total: { $gt: 100 } }', '{ status: "new" '),
    "MONGO_SLOWQUERY": (SLOW, SLOW, SLOW.replace("134ms", "134")),
    "MONGO_WORDDASH": ("shop-eu", "shop-eu", "shop eu"),
    "MONGO3_SEVERITY": ("I", "I", "II"),
    "MONGO3_COMPONENT": ("NETWORK", "NETWORK", "NET WORK"),
    "MONGO3_LOG": (LOG3, LOG3, LOG3.replace("2024-01-02T03:04:05.123+0000", "yesterday")),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{MONGO3_LOG}", "disabled", LOG3, {"timestamp": "2024-01-02T03:04:05.123+0000", "severity": "I",
     "component": "NETWORK", "context": "conn12", "message": "end connection 10.0.0.5:51234 (3 connections now open)"}),
    ("%{MONGO3_LOG}", "v1", LOG3, {"log": {"level": "I"}, "mongodb": {"component": "NETWORK", "context": "conn12"}}),
    ("%{MONGO_SLOWQUERY}", "disabled", SLOW, {"database": "shop", "collection": "orders",
     "query": '{ status: "new", total: { $gt: 100 } }', "ntoreturn": "0", "nscanned": "1204", "nreturned": "12",
     "duration": "134"}),
    ("%{MONGO_SLOWQUERY}", "v1", SLOW, {"mongodb": {"database": "shop", "collection": "orders", "profile": {
     "op": "query", "nscanned": 1204, "nreturned": 12, "duration": 134}}}),
    ("%{MONGO_LOG}", "v1", LOG2, {"timestamp": "Jan  2 03:04:05", "mongodb": {"component": "conn12"}}),
]  # fmt: skip
