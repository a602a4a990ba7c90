"""Process logging: structured JSON (default) or text, with component names.

Secrets never reach here by construction: config models hold them as
SecretStr, and components log names and error classes, not settings.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import orjson

from parsers.dates import rfc3339_ms

# Our loggers are named by module (`logging.getLogger(__name__)`) under these packages.
OWN_PACKAGES = frozenset({"pipeline", "sinks", "parsers"})

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": rfc3339_ms(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}" for k, v in record.__dict__.items() if k not in _STD_ATTRS and not k.startswith("_")
        )
        base = f"{self.formatTime(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        text = f"{base} {extras}" if extras else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class ComponentLog(logging.LoggerAdapter[logging.Logger]):
    """A module's logger bound to one component: every record carries `component=<name>`."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**(self.extra or {}), **extra} if extra else dict(self.extra or {})
        return msg, kwargs


def component_log(logger: logging.Logger, component: str) -> ComponentLog:
    """`component_log(logging.getLogger(__name__), name)`: the one way components bind their name."""
    return ComponentLog(logger, {"component": component})


# What setup_logging was last called with: worker processes set themselves up the same way.
_setup: tuple[str, str] | None = None


def setup_logging(level: str = "info", fmt: str = "json") -> None:
    global _setup
    _setup = (level, fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(LibraryRateLimit())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Client libraries are chatty at INFO about every reconnect.
    for noisy in ("aiokafka", "kafka", "elastic_transport", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def logging_setup() -> tuple[str, str] | None:
    """(level, format) of this process's setup_logging, None when it was never called (a library user)."""
    return _setup


class Throttle:
    """At most one pass per key every `interval` seconds, counting what it held back.

    `allow(key)` returns None while the key is held back (the call is counted), or
    the number of calls suppressed since the last pass (0 the first time): the
    caller logs that number with its line, so nothing is hidden, only folded.
    """

    __slots__ = ("_clock", "_last", "interval", "max_keys")

    def __init__(self, interval: float = 10.0, clock: Any = time.monotonic, max_keys: int = 1000) -> None:
        self.interval = interval
        self.max_keys = max_keys
        self._clock = clock
        self._last: dict[Any, tuple[float, int]] = {}

    def allow(self, key: Any) -> int | None:
        now = self._clock()
        seen = self._last.get(key)
        if seen is not None and now - seen[0] < self.interval:
            self._last[key] = (seen[0], seen[1] + 1)
            return None
        if len(self._last) >= self.max_keys:
            self._last.clear()
        self._last[key] = (now, 0)
        return seen[1] if seen is not None else 0


class LibraryRateLimit(logging.Filter):
    """At most one record per (library logger, message template) every `interval` seconds.

    Client libraries log every failed reconnect (aiokafka several times a second
    while a broker is down); our own components already log each retry with its
    backoff. A record that passes after a quiet spell says how many similar ones
    were suppressed. Records from our own packages (`pipeline`, `sinks`,
    `parsers`) always pass.
    """

    def __init__(self, interval: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._throttle = Throttle(interval, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in OWN_PACKAGES:
            return True
        suppressed = self._throttle.allow((record.name, str(record.msg)))
        if suppressed is None:
            return False
        if suppressed:
            record.suppressed = suppressed
        return True
