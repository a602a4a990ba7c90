"""Query results as people and programs read them: a text table, and JSON-ready rows.

Shared by `pipeline query` (which prints the table) and the running daemon's
`POST /query` (which answers JSON that the CLI turns into the same table):
numbers stay numbers, everything else becomes the text the table shows.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any


def json_value(value: Any) -> Any:
    """A cell as JSON: numbers and null as they are, everything else as its display text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return _cell(value)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, ipaddress.IPv6Address):
        return str(value.ipv4_mapped or value)  # IPv4 stored as ::ffff:a.b.c.d prints as a.b.c.d
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def render_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A plain text table: header, rule, rows (numbers right-aligned), row count."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows)
        for i in range(len(columns))
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return " | ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    out = [line(columns), "-+-".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
