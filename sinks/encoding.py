"""orjson encoding shared by sinks."""

from __future__ import annotations

from typing import Any

import orjson

_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def json_line(event: dict[str, Any]) -> bytes:
    """One event as a JSON line (newline included); unknown types become strings."""
    return orjson.dumps(event, default=str, option=_OPTS)


def json_lines(events: list[dict[str, Any]]) -> bytes:
    dumps = orjson.dumps
    return b"".join([dumps(e, default=str, option=_OPTS) for e in events])
