"""Redis log lines and MONITOR output."""

from __future__ import annotations

from typing import Any

LOG = "[4018] 14 Nov 07:01:22.119 * Background saving terminated with success"
MON = '1704164645.123456 [0 10.0.0.5:53412] "SET" "session:42" "active"'

SAMPLES: dict[str, tuple[str, str, str]] = {
    "REDISTIMESTAMP": (LOG, "14 Nov 07:01:22.119", "14/Nov 07:01:22.119"),
    "REDISLOG": (LOG, LOG[: LOG.index("*") + 1], "[4018] 14 Nov 07:01:22.119 #"),
    "REDISMONLOG": (MON, MON, MON.replace("[0 ", "[")),
}
FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{REDISLOG}", "disabled", LOG, {"pid": "4018", "timestamp": "14 Nov 07:01:22.119"}),
    ("%{REDISLOG}", "v1", LOG, {"process": {"pid": 4018}}),
    ("%{REDISMONLOG}", "disabled", MON, {"timestamp": "1704164645.123456", "database": "0", "client": "10.0.0.5",
     "port": 53412, "command": "SET", "params": '"session:42" "active"'}),
    ("%{REDISMONLOG}", "v1", MON, {"redis": {"database": {"id": "0"}, "command": {"name": "SET",
     "args": '"session:42" "active"'}}, "client": {"ip": "10.0.0.5", "port": 53412}}),
]  # fmt: skip
