"""Shared type aliases, the Parser protocol, reserved event keys and tag helpers.

An event is a plain ``dict`` (see ARCHITECTURE.md). Parsers never raise on bad
input: they append one of the tag constants below to ``event["tags"]``.
"""

from __future__ import annotations

from typing import Any, Protocol

Event = dict[str, Any]
"""One log event: a plain dict, serialisable by orjson."""

Fields = dict[str, Any]
"""Fields captured by a grok expression (possibly nested dicts)."""

#: Keys owned by the pipeline itself; parsers never overwrite them with captured data.
RESERVED_KEYS: frozenset[str] = frozenset({"@timestamp", "message", "log_type", "host", "source", "kubernetes", "tags"})

GROK_FAILURE = "_grokparsefailure"
"""No pattern / built-in format matched ``message``; the message is kept unchanged."""
GROK_TIMEOUT = "_groktimeout"
"""A user grok expression exceeded its per-event time budget (treated as no match)."""
DATE_FAILURE = "_dateparsefailure"
"""A timestamp was captured but could not be parsed; ``@timestamp`` is left as it was."""
JSON_FAILURE = "_jsonparsefailure"
"""The message looked like JSON (starts with ``{``) but was invalid, truncated or over the limits."""
GEOIP_FAILURE = "_geoip_lookup_failure"
"""The IP field held an invalid address or a public address with no database record."""
TRUNCATED = "_truncated"
"""The line was cut at ``max_line_bytes`` by the reader, or its message cut by a sink to fit the
sink's size limit (Kafka ``max_request_bytes``, Elasticsearch ``max_document_bytes``)."""
INGEST_TIMESTAMP = "_ingest_timestamp"
"""The event arrived without ``@timestamp`` (a foreign Kafka producer): it holds the time the record
entered Kafka (the record's timestamp), not the time the event happened."""
INVALID_UTF8 = "_invalid_utf8"
"""The line held bytes that are not UTF-8; they were replaced by U+FFFD."""
PARSE_EXCEPTION = "_parseexception"
"""A parser raised unexpectedly (a bug); the event is kept and tagged instead of being lost."""
CONVERT_FAILURE = "_convertfailure"
"""A field could not be converted to the type asked for (``mutate`` convert); the value is left as it was."""
THROTTLED = "_throttled"
"""The event exceeded a ``throttle`` limit and was kept, tagged, rather than dropped."""


class Parser(Protocol):
    """A pure, per-event parser: mutates ``event`` in place and returns it; never raises."""

    def __call__(self, event: Event, /) -> Event: ...


def add_tag(event: Event, tag: str) -> None:
    """Append ``tag`` to ``event["tags"]``, creating the list if needed, never duplicating."""
    tags = event.get("tags")
    if tags is None:
        event["tags"] = [tag]
    elif isinstance(tags, list):
        if tag not in tags:
            tags.append(tag)
    else:
        # Someone stored a scalar or tuple: normalise to a list rather than lose it.
        new = [tags] if isinstance(tags, str) else list(tags)
        if tag not in new:
            new.append(tag)
        event["tags"] = new
