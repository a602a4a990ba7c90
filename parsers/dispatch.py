"""Choose a parser per event: a built-in format by ``log_type``, or the user's grok.

``EventParser`` is what the ``parse`` transform and ``pipeline parse`` run.
With ``grok`` patterns it applies them to every event (captured fields merged
into the event, typed; a captured ``timestamp`` becomes ``@timestamp``), else it
routes on the configured ``log_type``, or, with ``auto``, on the event's own
``log_type`` when it names a built-in format, or on the message's shape:

    JSON object -> application; access-log line -> access;
    nginx/Apache error line -> error; anything else -> application (plain text)

and records the result in ``event["log_type"]``. A message that matches
nothing is kept unchanged and tagged ``_grokparsefailure``; nothing is dropped
and nothing raises (an unexpected exception is a bug: the event is tagged
``_parseexception`` and kept).

After parsing, optionally: user agents are parsed (``parsers/useragent.py``) and
the field names are turned into ECS ones (``parsers/ecs.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from parsers.dates import DateParser
from parsers.ecs import SCHEMAS, EcsMapper, WebServer
from parsers.errors import OptionError
from parsers.formats.access import AccessLogFormat
from parsers.formats.application import ApplicationLogFormat
from parsers.formats.error import ErrorLogFormat
from parsers.formats.json import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, JsonFormat, looks_like_json
from parsers.grok import Grok, compile_grok
from parsers.types import (
    DATE_FAILURE,
    GROK_FAILURE,
    GROK_TIMEOUT,
    INVALID_UTF8,
    PARSE_EXCEPTION,
    RESERVED_KEYS,
    Event,
    add_tag,
)
from parsers.useragent import DEFAULT_CACHE_SIZE, UserAgentParser

__all__ = ["LOG_TYPES", "EventParser"]

LOG_TYPES = ("auto", "application", "access", "error", "json", "none")
"""``json``: generic JSON lines, keys kept as they are; ``none``: no parsing."""


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Deep-merge nested captures into the event (existing sub-keys are kept)."""
    for k, v in src.items():
        cur = dst.get(k)
        if isinstance(v, dict) and isinstance(cur, dict):
            _merge(cur, v)
        else:
            dst[k] = v


class EventParser:
    """Parse events in place; ``__call__`` for one event, ``parse_batch`` for a list.

    Options:
        log_type: ``auto`` (detect per event) or one of ``application``, ``access``,
            ``error``, ``json``, ``none``; a fixed type is also written to
            ``event["log_type"]``.
        grok: user grok expressions tried in order instead of the built-in formats.
        pattern_definitions / patterns_dir / named_captures_only / ecs_compatibility:
            see ``compile_grok``.
        grok_timeout: seconds per search of the user grok (``None``: unbounded,
            fastest); a timeout tags ``_groktimeout`` and ``_grokparsefailure``.
        date_formats: strptime formats or ``ISO8601``/``UNIX``/``UNIX_MS`` for the
            grok ``timestamp`` and application timestamps, tried before the
            built-in recognition.
        timezone: IANA zone for timestamps written without an offset.
        overwrite_message: put the extracted message text (application/error
            formats, a grok ``message`` capture) into ``message``; when False the
            raw line stays in ``message``.
        timestamp_field: the grok capture turned into ``@timestamp``.
        max_json_bytes / max_json_depth: JSON limits.
        schema: ``default`` (flat names) or ``ecs`` (Elastic Common Schema names,
            see ``parsers.ecs``); ``web_server`` names the module of access logs there.
        user_agent: parse ``user_agent`` into name, version, OS and device (LRU cache of
            ``user_agent_cache_size``); ``None``: on with ``ecs`` (Filebeat's modules
            do it), off otherwise.
        clock: epoch seconds, for dates written without a year (syslog, klog), and
            ECS's ``event.created`` when the event had no ``@timestamp``.
    """

    __slots__ = (
        "_access",
        "_application",
        "_base",
        "_by_type",
        "_dates",
        "_ecs",
        "_error",
        "_grok",
        "_json",
        "_parse",
        "_ua",
        "log_type",
        "overwrite_message",
        "timestamp_field",
    )

    def __init__(
        self,
        log_type: str = "auto",
        grok: list[str] | None = None,
        *,
        pattern_definitions: dict[str, str] | None = None,
        patterns_dir: str | None = None,
        named_captures_only: bool = True,
        ecs_compatibility: str = "disabled",
        grok_timeout: float | None = None,
        date_formats: list[str] | None = None,
        timezone: str = "UTC",
        overwrite_message: bool = True,
        timestamp_field: str = "timestamp",
        max_json_bytes: int = DEFAULT_MAX_BYTES,
        max_json_depth: int = DEFAULT_MAX_DEPTH,
        schema: str = "default",
        web_server: WebServer = "nginx",
        user_agent: bool | None = None,
        user_agent_cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if log_type not in LOG_TYPES:
            raise OptionError("log_type", f"unknown log_type {log_type!r}; expected one of {', '.join(LOG_TYPES)}")
        if schema not in SCHEMAS:
            raise OptionError("schema", f"unknown schema {schema!r}; expected one of {', '.join(SCHEMAS)}")
        self.log_type = log_type
        self.overwrite_message = overwrite_message
        self.timestamp_field = timestamp_field
        builtin_dates = DateParser(None, timezone, clock=clock)
        self._dates = (
            DateParser(date_formats, timezone, clock=clock, builtin_fallback=True) if date_formats else (builtin_dates)
        )
        self._access = AccessLogFormat(builtin_dates)
        self._error = ErrorLogFormat(builtin_dates, overwrite_message=overwrite_message)
        self._application = ApplicationLogFormat(
            self._dates,
            max_json_bytes=max_json_bytes,
            max_json_depth=max_json_depth,
            overwrite_message=overwrite_message,
        )
        self._json = JsonFormat(max_json_bytes, max_json_depth)
        self._by_type: dict[str, Callable[[Event], Event]] = {
            "application": self._application,
            "access": self._access,
            "error": self._error,
            "json": self._json,
        }
        self._grok: Grok | None = None
        if grok:
            self._grok = compile_grok(
                grok,
                pattern_definitions=pattern_definitions,
                patterns_dir=patterns_dir,
                named_captures_only=named_captures_only,
                timeout=grok_timeout,
                ecs_compatibility=ecs_compatibility,
            )
            self._parse: Callable[[Event, str], None] = self._parse_grok
        elif log_type == "auto":
            self._parse = self._parse_auto
        elif log_type == "none":
            self._parse = self._parse_none
        else:
            self._parse = self._parse_fixed
        if user_agent is None:
            user_agent = schema == "ecs"
        self._ua = UserAgentParser(cache_size=user_agent_cache_size) if user_agent else None
        self._ecs = EcsMapper(web_server, clock) if schema == "ecs" else None
        self._base = self._parse
        if self._ua is not None or self._ecs is not None:
            self._parse = self._parse_then_enrich

    @property
    def grok(self) -> Grok | None:
        """The compiled user grok, if any."""
        return self._grok

    def access_only(self, declared: str | None) -> AccessLogFormat | None:
        """The access format, when it is all this parser does to events whose log_type is `declared`:
        built-in access parsing and nothing after it (no grok, user agents or ECS). A caller that
        matched a line itself (a block scan) may then call `fill` on it and get what `__call__`
        gives, with `log_type` set to `access`."""
        if self._base is not self._parse or self._grok is not None:
            return None
        if self.log_type == "access" or (self.log_type == "auto" and declared == "access"):
            return self._access
        return None

    # -- entry points ------------------------------------------------------------------------

    def __call__(self, event: Event) -> Event:
        """Parse ``event["message"]`` into ``event`` (in place) and return the event."""
        message = event.get("message")
        if type(message) is not str:
            message = self._coerce_message(event, message)
            if message is None:
                add_tag(event, GROK_FAILURE)
                return event
        try:
            self._parse(event, message)
        except Exception:  # a bug in a parser must not lose the event or stop the batch
            add_tag(event, PARSE_EXCEPTION)
        return event

    def parse_batch(self, events: list[Event]) -> list[Event]:
        """Parse every event of the batch in place (one tight loop); returns the same list."""
        parse = self._parse
        for event in events:
            message = event.get("message")
            if type(message) is not str:
                message = self._coerce_message(event, message)
                if message is None:
                    add_tag(event, GROK_FAILURE)
                    continue
            try:
                parse(event, message)
            except Exception:
                add_tag(event, PARSE_EXCEPTION)
        return events

    # -- routes ------------------------------------------------------------------------------

    @staticmethod
    def _coerce_message(event: Event, message: object) -> str | None:
        if isinstance(message, bytes | bytearray):
            text = bytes(message).decode("utf-8", "replace")
            if "\ufffd" in text and b"\xef\xbf\xbd" not in message:
                add_tag(event, INVALID_UTF8)
            event["message"] = text
            return text
        if isinstance(message, str):  # a str subclass
            return str(message)
        return None

    def _parse_then_enrich(self, event: Event, message: str) -> None:
        created = event.get("@timestamp")  # when the source read it; parsing replaces it
        self._base(event, message)
        if self._ua is not None:
            self._ua(event)
        if self._ecs is not None:
            self._ecs(event, message, created)

    def _parse_none(self, event: Event, message: str) -> None:
        event["log_type"] = "none"

    def _parse_fixed(self, event: Event, message: str) -> None:
        event["log_type"] = self.log_type
        fmt = self._by_type[self.log_type]
        fmt(event)

    def _parse_auto(self, event: Event, message: str) -> None:
        declared = event.get("log_type")
        if declared is not None:
            fmt = self._by_type.get(declared)
            if fmt is not None:
                fmt(event)
                return
        if looks_like_json(message):
            event["log_type"] = "application"
            self._application(event)
        elif self._access.parse(event, message):
            event["log_type"] = "access"
        elif self._error.parse(event, message):
            event["log_type"] = "error"
        else:
            event["log_type"] = "application"
            if not self._application.parse_text(event, message):
                add_tag(event, GROK_FAILURE)

    def _parse_grok(self, event: Event, message: str) -> None:
        if self.log_type not in ("auto", "none"):
            event["log_type"] = self.log_type
        grok = self._grok
        assert grok is not None
        try:
            fields = grok.match_or_timeout(message)
        except TimeoutError:
            add_tag(event, GROK_TIMEOUT)
            fields = None
        if fields is None:
            add_tag(event, GROK_FAILURE)
            return
        ts_field = self.timestamp_field
        nested: dict[str, Any] | None = None
        for k, v in fields.items():
            if k == ts_field or k == "@timestamp":
                t = self._dates.parse(v)
                if t is not None:
                    event["@timestamp"] = t
                    continue
                add_tag(event, DATE_FAILURE)
                if k == "@timestamp":
                    k = "timestamp"  # keep the raw text, never a bad @timestamp
            if k == "message":
                if self.overwrite_message:
                    event["message"] = v
            elif k in RESERVED_KEYS:
                if nested is None:
                    cur = event.get("grok")
                    nested = cur if isinstance(cur, dict) else {}
                    event["grok"] = nested
                nested[k] = v
            elif isinstance(v, dict) and isinstance(event.get(k), dict):
                _merge(event[k], v)
            else:
                event[k] = v
