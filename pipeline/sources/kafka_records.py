"""Kafka records into events: what a foreign producer's event lacks, and what a bad record leaves.

The processor reads events that our agents wrote, but also whatever else a topic
holds. An event without `log_type`, `@timestamp` or `event_id` is completed from
the record itself (its header, its Kafka timestamp, its position), so a replay
yields the same event; a record that is not a JSON object is dead-lettered as
its key and value text.
"""

from __future__ import annotations

import time
from typing import Any

from parsers.dates import rfc3339_ms
from parsers.types import INGEST_TIMESTAMP, add_tag
from pipeline.event import DEFAULT_LOG_TYPE, Event


def complete_event(event: Event, msg: Any, log_type: str | None) -> None:
    """Fill in what a foreign producer's event lacks, from the record itself (stable across replays)."""
    if not event.get("log_type"):
        if log_type is None:
            header = next((v for k, v in msg.headers or () if k == "log_type"), None)
            log_type = header.decode("utf-8", "replace") if header else DEFAULT_LOG_TYPE
        event["log_type"] = log_type
    if not event.get("@timestamp"):
        ms = msg.timestamp if isinstance(msg.timestamp, int) and msg.timestamp >= 0 else int(time.time() * 1000)
        secs, ms = divmod(ms, 1000)
        event["@timestamp"] = f"{rfc3339_ms(secs)[:-4]}{ms:03d}Z"
        add_tag(event, INGEST_TIMESTAMP)
    if not event.get("event_id"):
        source = event["source"]
        event["event_id"] = f"{source['topic']}-{source['partition']}-{source['offset']}"


def dead_letter_record(topic: str, partition: int, msg: Any) -> dict[str, Any]:
    """What the dead-letter queue keeps of a record that is not a JSON object: where it was, key, value."""
    value = msg.value
    key = msg.key
    return {
        "topic": topic,
        "partition": partition,
        "offset": msg.offset,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "value": value.decode("utf-8", "replace") if value is not None else None,
    }
