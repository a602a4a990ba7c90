"""Events and batches: the unit that flows between stages.

An event is a plain dict (fast, orjson-serialisable; the alias and the reserved
keys are defined once, in `parsers.types`). A batch is a list of events plus
one receipt; stages pass batches over bounded queues, never single events, so
per-event Python work stays in one tight loop per stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from parsers.types import Event
from pipeline.acks import Receipt

__all__ = ["DEFAULT_LOG_TYPE", "Batch", "Event", "deep_copy"]

# The log_type of an event that arrives without one (a foreign Kafka producer, a source with no
# log_type and no parse transform): every sink routes it as this type, and the Kafka source stamps
# it. `application` because its destinations exist by default in every sink (topic, index, table)
# and its shape (message, level, logger) is the generic one.
DEFAULT_LOG_TYPE = "application"


def deep_copy(value: Any) -> Any:
    """A deep copy of an event, a list of events or a field value: an orjson round trip (fast and
    exact for JSON-shaped data; other values, such as a date from YAML, become their JSON text)."""
    return orjson.loads(orjson.dumps(value, default=str))


@dataclass(slots=True)
class Batch:
    """Events plus the receipt that releases their source positions once settled."""

    events: list[Event]
    receipt: Receipt
