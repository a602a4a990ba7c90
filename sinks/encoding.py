"""orjson encoding shared by sinks, and the one way a sink cuts an event down to a size limit."""

from __future__ import annotations

from typing import Any

import orjson

from parsers.types import TRUNCATED

_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
_DOC_OPTS = orjson.OPT_NON_STR_KEYS
# Bytes the `_truncated` tag can add to the JSON: `,"tags":["_truncated"]`.
_TAG_BYTES = len(TRUNCATED) + 16

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


def fit_message(event: dict[str, Any], encoded: bytes, max_bytes: int) -> tuple[dict[str, Any], bytes] | None:
    """The event with `message` cut so that its JSON (`encoded` now) is at most `max_bytes`, tagged
    `_truncated`, and that JSON; None when cutting the message cannot make it fit.

    A shallow copy: sinks share the events they are given and never change them. The cut
    keeps a prefix of whole characters, as long as fits (JSON escapes counted).
    """
    message = event.get("message")
    if type(message) is not str:
        return None
    tags = event.get("tags")
    if isinstance(tags, list):
        new_tags = tags if TRUNCATED in tags else [*tags, TRUNCATED]
    else:
        new_tags = [TRUNCATED] if tags is None else [*([tags] if isinstance(tags, str) else tags), TRUNCATED]
    dumps = orjson.dumps
    message_json = len(dumps(message))
    budget = max_bytes - (len(encoded) - message_json) - _TAG_BYTES - 2  # JSON bytes left for the text
    if budget < 0:
        return None
    # A prefix in proportion to the budget, then shortened by what it still overshoots: every
    # character is at least one byte of JSON, so the second try fits.
    keep = len(message) * budget // max(1, message_json - 2)
    for _ in range(8):
        over = len(dumps(message[:keep])) - 2 - budget
        if over <= 0:
            break
        keep = max(0, keep - over)
    cut = {**event, "message": message[:keep], "tags": new_tags}
    out = dumps(cut, default=str, option=_DOC_OPTS)
    return (cut, out) if len(out) <= max_bytes else None
