"""Exceptions raised at build time by ``parsers/`` (never on bad input).

    ParserError                 base of everything below
    ├── OptionError (ValueError) an option value is invalid; `.option` names it (timezone, log_type ...)
    ├── GrokError (ValueError)  unknown pattern name, invalid regex, bad pattern file
    └── GeoIPDatabaseError      a GeoIP database is missing, unreadable or of the wrong type

Per-event problems (no match, bad date, invalid JSON, unknown IP) are never
exceptions: the event is tagged (see ``parsers.types``) and kept.
"""

from __future__ import annotations


class ParserError(Exception):
    """Base class for configuration-time errors of the parsing library."""


class OptionError(ParserError, ValueError):
    """An option of a parser is invalid; `option` is its name, so a config error can name the key."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


class GrokError(ParserError, ValueError):
    """A grok expression or pattern definition cannot be compiled.

    The message names the offending pattern, e.g.
    ``unknown grok pattern %{FOO} in '%{FOO:x} bar'``.
    """


class GeoIPDatabaseError(ParserError):
    """A GeoIP database cannot be opened or is not of the expected type."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"GeoIP database {path!r}: {reason}")
        self.path = path
        self.reason = reason
