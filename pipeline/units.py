"""Annotated config types for durations ("5s", "250ms") and sizes ("10MiB").

Each stores one canonical form (seconds as float, bytes as int) so the rest of
the code never parses units again.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5s, 250ms, 1m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    raise ValueError(f"invalid duration {value!r}: expected e.g. 5s, 250ms, 1m, 2h")


def format_size(size: int) -> str:
    """A byte count as operators read it: `1 MiB`, `512 KiB`, `1.5 GiB`, `800 B`."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


def parse_size(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a size like 512KiB, 10MiB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            unit = m.group(2).lower() if m.group(2) else None
            return int(float(m.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"invalid size {value!r}: expected bytes or e.g. 512KiB, 10MiB, 1GB")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(json_schema_extra={"format": "duration"})]
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(json_schema_extra={"format": "size"})]
