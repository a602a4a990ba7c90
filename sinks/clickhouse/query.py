"""`pipeline query`: run SQL against a config's ClickHouse sink and print the result as a table.

It opens the sink's own target (server DSN or embedded chDB directory) with the
same client the sink uses. An embedded chDB directory can be opened by one
process at a time: query it while the daemon is stopped, or point the daemon
at a ClickHouse server to query it live.

Queries run with the setting `final = 1`: on the sink's ReplacingMergeTree
tables (`dedup`, the default) an event replayed after a crash is counted once
even before the background merge removed its copy. `SETTINGS final = 0` at the
end of the SQL shows the stored rows as they are. IPv4 addresses, stored in
IPv6 columns as `::ffff:a.b.c.d`, print as `a.b.c.d`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import sys
from typing import Any, TextIO

from pipeline.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.metrics import Metrics
from sinks.clickhouse import ClickHouseSink
from sinks.clickhouse.client import describe

# Replays collapsed at read time on ReplacingMergeTree tables (ignored by other engines).
QUERY_SETTINGS = {"final": 1}
# Statements that return rows; anything else (DDL, OPTIMIZE, ...) runs as a command.
_ROW_STATEMENTS = ("select", "with", "show", "describe", "desc", "explain", "exists", "(")


def main(config_path: str, sql: str, sink_name: str | None = None, out: TextIO | None = None) -> int:
    """Run `sql` on the config's clickhouse sink (the only one, or `sink_name`); print a table."""
    out = out or sys.stdout
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_CONFIG
    sinks = {name: c for name, c in config.sinks.items() if getattr(c, "type", None) == "clickhouse"}
    if sink_name is not None:
        if sink_name not in sinks:
            known = ", ".join(sorted(sinks)) or "none"
            print(f"{config_path}: no clickhouse sink named {sink_name!r} (clickhouse sinks: {known})", file=sys.stderr)
            return EXIT_FAILURE
        sink_config = sinks[sink_name]
    elif len(sinks) == 1:
        sink_config = next(iter(sinks.values()))
    else:
        names = ", ".join(sorted(sinks))
        print(
            f"{config_path}: "
            + (
                f"several clickhouse sinks ({names}): choose one with --sink"
                if sinks
                else "no clickhouse sink in this config"
            ),
            file=sys.stderr,
        )
        return EXIT_FAILURE

    try:
        sink = ClickHouseSink(sink_name or "query", sink_config, data_dir=config.data_dir, metrics=Metrics())
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{config_path}: {problem}", file=sys.stderr)
        return EXIT_CONFIG

    async def run() -> tuple[list[str], list[tuple[Any, ...]]] | str:
        try:
            await sink.client.open()
        except Exception as exc:
            hint = ""
            if "lock" in str(exc).lower():
                hint = " (is the daemon running? an embedded chDB directory opens in one process at a time)"
            raise RuntimeError(f"cannot open {sink.target.describe()}: {describe(exc)}{hint}") from exc
        try:
            if sql.lstrip().lower().startswith(_ROW_STATEMENTS):
                result = await sink.client.query(sql, settings=QUERY_SETTINGS)
                return result.column_names, result.rows
            return str(await sink.client.command(sql))
        finally:
            await sink.client.aclose()

    try:
        result = asyncio.run(run())
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        print(f"query failed: {describe(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    if isinstance(result, str):
        print(result or "OK", file=out)
    else:
        print(render_table(*result), file=out)
    return EXIT_OK


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, ipaddress.IPv6Address):
        return str(value.ipv4_mapped or value)
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
