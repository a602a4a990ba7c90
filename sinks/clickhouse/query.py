"""`pipeline query`: run SQL against a config's ClickHouse sink and print the result as a table.

A server DSN is opened directly, with the same client the sink uses. An
embedded chDB directory opens in one process at a time, so while the daemon
runs and holds it, the statement goes through the daemon instead: `POST /query`
on its API (`api.address`, loopback by default), answered from the sink's own
connection. When no daemon answers there, the directory is opened directly.

Queries run with the setting `final = 1`: on the sink's ReplacingMergeTree
tables (`dedup`, the default) an event replayed after a crash is counted once
even before the background merge removed its copy. `SETTINGS final = 0` at the
end of the SQL shows the stored rows as they are. IPv4 addresses, stored in
IPv6 columns as `::ffff:a.b.c.d`, print as `a.b.c.d`.
"""

from __future__ import annotations

import asyncio
import sys
import urllib.error
import urllib.request
from typing import Any, TextIO

import orjson

from pipeline.api import local_client_context, local_headers, local_url
from pipeline.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from pipeline.config import ApiConfig, load_config
from pipeline.errors import ConfigError
from pipeline.metrics import Metrics
from sinks.clickhouse import ClickHouseSink
from sinks.clickhouse.client import describe
from sinks.clickhouse.table import render_table

# Statements can scan a lot: the daemon answers when they are done.
DAEMON_TIMEOUT_S = 300.0


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

    name = sink_name or next(n for n, c in sinks.items() if c is sink_config)
    try:
        sink = ClickHouseSink(name, sink_config, data_dir=config.data_dir, metrics=Metrics())
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{config_path}: {problem}", file=sys.stderr)
        return EXIT_CONFIG

    async def direct() -> dict[str, Any]:
        try:
            await sink.client.open()
        except Exception as exc:
            hint = ""
            if "lock" in str(exc).lower():
                hint = " (another process holds this embedded chDB directory; is a daemon running without its API?)"
            raise QueryFailed(f"cannot open {sink.target.describe()}: {describe(exc)}{hint}") from exc
        try:
            return await sink.run_sql(sql)
        except Exception as exc:
            raise QueryFailed(f"query failed: {describe(exc)}") from exc
        finally:
            await sink.client.aclose()

    try:
        answer = None
        if sink.target.embedded and config.root.api.enabled:
            answer = through_daemon(config.root.api, name, sql)
        if answer is None:
            answer = asyncio.run(direct())
    except QueryFailed as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILURE
    if "result" in answer:
        print(answer["result"] or "OK", file=out)
    else:
        print(render_table(answer["columns"], [tuple(r) for r in answer["rows"]]), file=out)
    return EXIT_OK


class QueryFailed(Exception):
    """The statement could not run; the message is what the operator reads."""


def through_daemon(api: ApiConfig, sink: str, sql: str) -> dict[str, Any] | None:
    """The daemon's answer to `POST /query`, or None when no daemon listens at `api.address`
    (with the API token, over TLS when the API serves it)."""
    address = api.address
    request = urllib.request.Request(
        local_url(api, "/query"),
        data=orjson.dumps({"sink": sink, "sql": sql}),
        headers={"Content-Type": "application/json", **local_headers(api)},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=DAEMON_TIMEOUT_S, context=local_client_context(api)) as resp:
            answer: dict[str, Any] = orjson.loads(resp.read())
            return answer
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            message = orjson.loads(body).get("error", "")
        except orjson.JSONDecodeError:
            message = body.decode("utf-8", "replace")[:300]
        raise QueryFailed(f"the daemon at {address} refused the query: {message or exc.reason}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None  # no daemon there: open the store directly
