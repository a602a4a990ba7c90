"""Events and batches: the unit that flows between stages.

An event is a plain dict (fast, orjson-serialisable). A batch is a list of
events plus one receipt; stages pass batches over bounded queues, never single
events, so per-event Python work stays in one tight loop per stage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pipeline.acks import Receipt

Event = dict[str, Any]

# Reserved keys (ARCHITECTURE.md).
TIMESTAMP = "@timestamp"
MESSAGE = "message"
LOG_TYPE = "log_type"
HOST = "host"
SOURCE = "source"
KUBERNETES = "kubernetes"
TAGS = "tags"
EVENT_ID = "event_id"


@dataclass(slots=True)
class Batch:
    """Events plus the receipt that releases their source positions once settled."""

    events: list[Event]
    receipt: Receipt


def rfc3339_ms(epoch: float | None = None) -> str:
    """UTC RFC 3339 with milliseconds, e.g. 2024-01-02T03:04:05.678Z."""
    if epoch is None:
        epoch = time.time()
    secs = int(epoch)
    ms = int((epoch - secs) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"
