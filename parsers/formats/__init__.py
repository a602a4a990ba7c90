"""Built-in log formats: small callable classes that parse ``event["message"]`` in place.

Each format has ``__slots__``, regexes compiled at import, and two entry
points: ``parse(event, message) -> bool`` (fill fields, report whether the
shape matched, no tagging; used by the auto-detecting dispatcher) and
``__call__(event) -> event`` (tags ``_grokparsefailure`` when nothing
matched). Helpers shared by several formats live here.
"""

from __future__ import annotations

import re
from typing import Any

from parsers.types import Event

__all__ = ["REQUEST_LINE", "set_request_fields", "unescape_quoted"]

#: "GET /path?query HTTP/1.1" (the version is optional, as in HTTP/0.9 lines).
REQUEST_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,31}) ([^\s?]*+)(?:\?(\S*+))?(?: HTTP/(\d++(?:\.\d++)?))?")

_ESCAPE = re.compile(r'\\(["\\])')


def unescape_quoted(text: str) -> str:
    """Undo Apache's escaping of a quoted value (``\\"`` -> ``"``, ``\\\\`` -> ``\\``).

    nginx's ``\\xHH`` escapes are left as written (decoding them could produce
    invalid UTF-8)."""
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def set_request_fields(event: Event, request: str) -> bool:
    """Split a request line into ``method``, ``path``, ``query``, ``http_version``.

    Returns False (and sets nothing) when the text is not a request line.
    """
    m = REQUEST_LINE.fullmatch(request)
    if m is None:
        return False
    method, path, query, version = m.groups()
    event["method"] = method
    if path:
        event["path"] = path
    if query:
        event["query"] = query
    if version:
        event["http_version"] = version
    return True


def set_new(event: Event, key: str, value: Any) -> None:
    """Set ``key`` only if the event does not hold it yet (never clobber)."""
    if key not in event:
        event[key] = value
