"""JSON-lines decoding with size and depth limits (orjson).

``JsonDecoder.decode`` returns the decoded object for a message that is one
JSON object, or ``None`` when it is invalid, truncated, not an object, longer
than ``max_bytes`` or nested deeper than ``max_depth``; the caller then tags
``_jsonparsefailure`` and keeps the message. ``JsonFormat`` is the generic
format: every key goes to the top level of the event, keys that collide with
reserved ones are nested under ``json``.
"""

from __future__ import annotations

from typing import Any

import orjson

from parsers.types import GROK_FAILURE, JSON_FAILURE, RESERVED_KEYS, Event, add_tag

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "JsonDecoder", "JsonFormat", "looks_like_json", "merge_json"]

DEFAULT_MAX_BYTES = 1 << 20
"""Messages longer than this (in characters, ~bytes) are not decoded: 1 MiB."""
DEFAULT_MAX_DEPTH = 64
"""Deeper nesting is refused (orjson itself stops at 1024)."""


def looks_like_json(message: str) -> bool:
    """True when the message (after leading whitespace) starts with ``{``."""
    return message[:1] == "{" or (message[:1].isspace() and message.lstrip()[:1] == "{")


def _depth(obj: Any, limit: int) -> int:
    """Nesting depth of ``obj``, stopping early once it exceeds ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list) and child:
                stack.append((child, d + 1))
    return deepest


class JsonDecoder:
    """Decode one JSON object per message, within limits; ``None`` on any failure."""

    __slots__ = ("max_bytes", "max_depth")

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        if max_bytes <= 0 or max_depth <= 0:
            raise ValueError("max_bytes and max_depth must be > 0")
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    def decode(self, message: str) -> dict[str, Any] | None:
        if len(message) > self.max_bytes:
            return None
        try:
            obj = orjson.loads(message)
        except orjson.JSONDecodeError:  # invalid, truncated, lone surrogates, too deep for orjson
            return None
        if not isinstance(obj, dict):
            return None
        # Counting brackets is C-speed; walk the tree only when it could be too deep.
        if message.count("{") + message.count("[") > self.max_depth and _depth(obj, self.max_depth) > self.max_depth:
            return None
        return obj


def merge_json(event: Event, obj: dict[str, Any]) -> None:
    """Copy decoded keys to the event; reserved keys go under ``event["json"]``."""
    nested: dict[str, Any] | None = None
    for k, v in obj.items():
        if k in RESERVED_KEYS or k == "json":
            if nested is None:
                existing = event.get("json")
                nested = existing if isinstance(existing, dict) else {}
                event["json"] = nested
            nested[k] = v
        else:
            event[k] = v


class JsonFormat:
    """Generic JSON lines: decoded keys merged into the event (no field renaming)."""

    __slots__ = ("decoder",)

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH) -> None:
        self.decoder = JsonDecoder(max_bytes, max_depth)

    def parse(self, event: Event, message: str) -> bool:
        obj = self.decoder.decode(message)
        if obj is None:
            return False
        merge_json(event, obj)
        return True

    def __call__(self, event: Event) -> Event:
        message = event.get("message")
        if not isinstance(message, str) or not looks_like_json(message):
            add_tag(event, GROK_FAILURE)
        elif not self.parse(event, message):
            add_tag(event, JSON_FAILURE)
        return event
