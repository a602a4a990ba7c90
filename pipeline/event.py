"""Events and batches: the unit that flows between stages.

An event is a plain dict (fast, orjson-serialisable; the alias and the reserved
keys are defined once, in `parsers.types`). A batch is a list of events plus
one receipt; stages pass batches over bounded queues, never single events, so
per-event Python work stays in one tight loop per stage. A batch that a worker
process framed, transformed and encoded carries `EncodedEvents` instead of a
list (pipeline/encoded.py): `as_list` decodes it where dicts are needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from parsers.types import Event
from pipeline.acks import Receipt
from pipeline.encoded import EncodedEvents

__all__ = ["DEFAULT_LOG_TYPE", "Batch", "EncodedEvents", "Event", "Events", "as_list", "deep_copy"]

Events = list[Event] | EncodedEvents

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

    events: Events
    receipt: Receipt


def as_list(events: Events) -> list[Event]:
    """The events as a list of dicts (encoded ones are decoded, once)."""
    return events if isinstance(events, list) else events.decoded()
