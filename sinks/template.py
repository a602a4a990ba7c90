"""Render `{field}` and `%Y-%m-%d` templates from an event, cheaply.

Used for file paths, Kafka topics and keys, Elasticsearch index names. Field
placeholders take dotted paths (`{kubernetes.namespace}`); date codes take the
event's own `@timestamp` (so a late event lands in its own day), read by
slicing the RFC 3339 string rather than parsing it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

_FIELD = re.compile(r"\{([A-Za-z0-9_@.\-]+)\}")
# Positions in "YYYY-MM-DDTHH:MM:SS" of each supported strftime code.
_DATE_SLICES = {"%Y": (0, 4), "%m": (5, 7), "%d": (8, 10), "%H": (11, 13)}
_DATE_CODE = re.compile(r"%[YmdH]")


def lookup(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for part in path.split(".") if "." in path and path not in event else (path,):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
        if value is None:
            return None
    return value


class Template:
    __slots__ = ("_clean", "_dates", "_fields", "_parts", "default", "source")

    def __init__(self, source: str, default: str = "unknown", clean: Callable[[str], str] | None = None) -> None:
        """`clean`, when given, rewrites each field value before it is put in (e.g. for a file path)."""
        self.source = source
        self.default = default
        self._clean = clean
        self._fields = _FIELD.findall(source)
        self._dates = bool(_DATE_CODE.search(source))
        unknown = set(re.findall(r"%[A-Za-z]", source)) - set(_DATE_SLICES) - {"%%"}
        if unknown:
            raise ValueError(f"unsupported date code(s) {sorted(unknown)} in {source!r} (use %Y %m %d %H)")

    @property
    def is_constant(self) -> bool:
        return not self._fields and not self._dates

    def render(self, event: dict[str, Any]) -> str:
        if self.is_constant:
            return self.source
        out = self.source
        clean = self._clean
        for name in self._fields:
            value = lookup(event, name)
            if value is None or value == "":
                text = self.default
            elif clean is None:
                text = str(value)
            else:
                text = clean(str(value))
            out = out.replace("{" + name + "}", text)
        if self._dates:
            ts = event.get("@timestamp")
            if not isinstance(ts, str) or len(ts) < 13:
                ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
            for code, (a, b) in _DATE_SLICES.items():
                if code in out:
                    out = out.replace(code, ts[a:b])
        return out
