"""orjson encoding shared by sinks."""

from __future__ import annotations

from typing import Any

import orjson

_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
# What encoding one event can raise on its content: an integer beyond 64 bits (a grok `:int`
# capture of a long number), a dict key of an odd type, a lone surrogate.
ENCODE_ERRORS = (orjson.JSONEncodeError, UnicodeEncodeError)


def unencodable(exc: Exception) -> str:
    """The dead-letter reason of an event that cannot be encoded: it never will be, so never retry it."""
    return f"cannot encode the event as JSON: {exc}"


def json_line(event: dict[str, Any]) -> bytes:
    """One event as a JSON line (newline included); unknown types become strings."""
    return orjson.dumps(event, default=str, option=_OPTS)


def json_lines(events: list[dict[str, Any]]) -> bytes:
    dumps = orjson.dumps
    return b"".join([dumps(e, default=str, option=_OPTS) for e in events])
