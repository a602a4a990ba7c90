"""The pure parsing library: grok, built-in formats, dates, GeoIP.

Imports nothing from ``pipeline/`` or ``sinks/``. Parsers work on plain
``dict`` events, in place, and never raise on bad input: they tag the event
(see the tag constants) and keep it.

    >>> from parsers import EventParser
    >>> p = EventParser(log_type="access")
    >>> ev = p({"message": '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5'})
    >>> ev["status"], ev["@timestamp"]
    (200, '2000-10-10T20:55:36.000Z')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from parsers.errors import GeoIPDatabaseError, GrokError, OptionError, ParserError
from parsers.types import (
    DATE_FAILURE,
    GEOIP_FAILURE,
    GROK_FAILURE,
    GROK_TIMEOUT,
    INVALID_UTF8,
    JSON_FAILURE,
    PARSE_EXCEPTION,
    RESERVED_KEYS,
    TRUNCATED,
    Event,
    Parser,
    add_tag,
)

if TYPE_CHECKING:
    from parsers.dates import DateParser
    from parsers.dispatch import LOG_TYPES, EventParser
    from parsers.geoip import GeoIPEnricher
    from parsers.grok import Grok, compile_grok

# Loaded on first use (PEP 562), so that `import parsers.multiline` in a source does
# not pay for compiling every format's regexes or importing geoip2.
_LAZY = {
    "DateParser": "parsers.dates",
    "EventParser": "parsers.dispatch",
    "LOG_TYPES": "parsers.dispatch",
    "GeoIPEnricher": "parsers.geoip",
    "Grok": "parsers.grok",
    "compile_grok": "parsers.grok",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'parsers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DATE_FAILURE",
    "GEOIP_FAILURE",
    "GROK_FAILURE",
    "GROK_TIMEOUT",
    "INVALID_UTF8",
    "JSON_FAILURE",
    "LOG_TYPES",
    "PARSE_EXCEPTION",
    "RESERVED_KEYS",
    "TRUNCATED",
    "DateParser",
    "Event",
    "EventParser",
    "GeoIPDatabaseError",
    "GeoIPEnricher",
    "Grok",
    "GrokError",
    "OptionError",
    "Parser",
    "ParserError",
    "add_tag",
    "compile_grok",
]
