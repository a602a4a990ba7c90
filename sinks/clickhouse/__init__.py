"""`clickhouse` sink: typed tables per log type, column-oriented inserts, bisection of bad rows.

A send groups its events by table (application, access, error, other),
converts each group to typed columns in Python (rows that cannot be converted
are rejected with the reason), and inserts each group column-oriented in one
request. If the server still refuses a block for its data, the block is
bisected: halves are inserted on their own until the failing rows are
isolated, and only those are dead-lettered, with the server's message.

Idempotence: every insert carries an `insert_deduplication_token` derived from
the table and the rows' event ids, and tables are created with
`non_replicated_deduplication_window`, so an insert retried after a timeout
(the server may have stored it) is not stored twice. A replay after a crash may
batch events differently; `dedup: true` (ReplacingMergeTree on event_id)
collapses those copies at merge time.
"""

from __future__ import annotations

import hashlib
import weakref
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from pipeline.context import BuildContext
from pipeline.errors import StartError, TransientError
from pipeline.event import Event
from pipeline.metrics import Metrics
from pipeline.registry import register
from pipeline.secrets import secret_value
from pipeline.sink import Outcome
from sinks.clickhouse.client import ClickHouseClient, ClientFactory, classify, describe, refused_at_start
from sinks.clickhouse.config import ClickHouseSinkConfig, resolve_target
from sinks.clickhouse.schema import SCHEMAS, Rows, TableSchema, get_each, schema_key, to_columns
from sinks.clickhouse.table import json_value

__all__ = ["ClickHouseSink", "ClickHouseSinkConfig", "build"]


_COUNTERS: weakref.WeakKeyDictionary[Metrics, Counter] = weakref.WeakKeyDictionary()
UNKNOWN_TABLE = 60
UNKNOWN_DATABASE = 81


def rows_counter(metrics: Metrics) -> Counter:
    """`pipeline_clickhouse_rows_total{component, table, result}`, one per metrics registry."""
    counter = _COUNTERS.get(metrics)
    if counter is None:
        counter = Counter(
            "pipeline_clickhouse_rows",
            "Rows handled by a clickhouse sink, by table and result "
            "(inserted, rejected, retried) and bisection inserts (bisected).",
            ["component", "table", "result"],
            registry=metrics.registry,
        )
        _COUNTERS[metrics] = counter
    return counter


class _Retry(Exception):
    """An insert failed transiently part-way: these event indices still need delivering."""

    def __init__(
        self, cause: BaseException, pending: list[int], inserted: int, rejected: list[tuple[int, str]]
    ) -> None:
        super().__init__(describe(cause))
        self.cause = cause
        self.pending = pending
        self.inserted = inserted
        self.rejected = rejected  # rows isolated by bisection before the failure


class ClickHouseSink:
    def __init__(
        self,
        name: str,
        config: ClickHouseSinkConfig,
        *,
        data_dir: Path,
        metrics: Metrics,
        factory: ClientFactory | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.target = resolve_target(config.dsn, data_dir, cwd)
        self.database = config.effective_database
        self.tables = {key: config.table.replace("{log_type}", key) for key in SCHEMAS}
        self.client = ClickHouseClient(
            self.target,
            config,
            secret_value(config.password, config.password_file, "password"),
            factory,
            threads=config.max_in_flight,
        )
        # Columns go on the wire as cheaper types (String for LowCardinality, FixedString(16) for
        # IPv6) that the server converts; said explicitly so a profile that turned it off still works
        # (a server older than 23.3 refuses the unknown setting: a retried error, never a DLQ entry).
        self._settings: dict[str, Any] = {"input_format_native_allow_types_conversion": 1, **config.insert_settings}
        self._rows = rows_counter(metrics)
        self._tables_missing = False  # a table or the database was dropped under us: recreate before inserting

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self.client.open()
        except Exception as exc:
            refused = refused_at_start(exc)
            if refused is not None:  # untrusted certificate or refused credentials: StartError
                raise StartError(refused[0], f"{self.target.describe()}: {refused[1]}") from None
            hint = " (another process holds this chDB directory?)" if "lock" in str(exc).lower() else ""
            raise TransientError(f"cannot open {self.target.describe()}: {describe(exc)}{hint}") from exc
        await self._prepare_tables()

    async def _prepare_tables(self) -> None:
        try:
            if self.config.create_tables:
                await self.client.command(f"CREATE DATABASE IF NOT EXISTS `{self.database}`")
                for key, schema in SCHEMAS.items():
                    table = self.tables[key]
                    await self.client.command(
                        schema.ddl(
                            self.database, table, dedup=self.config.dedup, retention_days=self.config.retention_days
                        )
                    )
                    # A table made by an older version gets the columns added since (inserts name them all).
                    result = await self.client.query(
                        f"SELECT name FROM system.columns WHERE database = '{self.database}' AND table = '{table}'"
                    )
                    for alter in schema.add_missing_columns(self.database, table, {r[0] for r in result.rows}):
                        await self.client.command(alter)
                self._tables_missing = False
                return
            missing = [
                t
                for t in self.tables.values()
                if str(await self.client.command(f"EXISTS TABLE `{self.database}`.`{t}`")).strip() != "1"
            ]
        except Exception as exc:
            raise TransientError(f"preparing tables in {self.target.describe()}: {describe(exc)}") from exc
        if missing:
            raise TransientError(
                f"tables missing in database {self.database} (create_tables is off): {', '.join(missing)}"
            )

    async def healthcheck(self) -> None:
        if not self.client.is_open:
            raise TransientError(f"{self.target.describe()}: not connected")
        if self.target.embedded:
            return  # in-process: nothing to reach, and a probe would queue behind inserts
        try:
            await self.client.query("SELECT 1")
        except Exception as exc:
            raise TransientError(f"{self.target.describe()} unreachable: {describe(exc)}") from exc

    async def run_sql(self, sql: str) -> dict[str, Any]:
        """Run an operator's statement on this sink's own connection (`POST /query`, `pipeline query`).

        The one way to query an embedded chDB store while the daemon holds it open.
        """
        await self.client.open()
        result = await self.client.statement(sql)
        if isinstance(result, str):
            return {"result": result}
        return {"columns": result.column_names, "rows": [[json_value(v) for v in row] for row in result.rows]}

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- sending ---------------------------------------------------------------------------
    async def send(self, events: list[Event]) -> Outcome:
        if self._tables_missing and self.config.create_tables:
            await self._prepare_tables()  # raises TransientError while it cannot
        groups = _group(events, self.config.default_log_type)
        rejected: list[tuple[int, str]] = []
        retry: list[int] = []
        delivered_any = False
        for n, (key, indices) in enumerate(groups.items()):
            schema = SCHEMAS[key]
            table = self.tables[key]
            subset = events if len(groups) == 1 else [events[i] for i in indices]
            rows = to_columns(schema, subset, indices)
            if rows.rejected:
                rejected.extend(rows.rejected)
                self._rows.labels(self.name, table, "rejected").inc(len(rows.rejected))
            if not rows:
                continue
            try:
                inserted, bad = await self._insert(schema, table, rows)
            except _Retry as exc:
                self._rows.labels(self.name, table, "retried").inc(len(exc.pending))
                if getattr(exc.cause, "code", None) in (UNKNOWN_TABLE, UNKNOWN_DATABASE):
                    self._tables_missing = True
                if not delivered_any and exc.inserted == 0:
                    # Nothing landed yet: the driver retries the whole send (and logs why).
                    raise TransientError(f"insert into {self.database}.{table}: {exc}") from exc.cause
                # Part of the send landed: retry only what did not (this table's rest, later tables).
                rejected.extend(exc.rejected)
                retry.extend(exc.pending)
                for later in list(groups.values())[n + 1 :]:
                    retry.extend(later)
                break
            delivered_any = delivered_any or inserted > 0
            if bad:
                rejected.extend(bad)
                self._rows.labels(self.name, table, "rejected").inc(len(bad))
            self._rows.labels(self.name, table, "inserted").inc(inserted)
        return Outcome(retry=sorted(retry), rejected=rejected, retry_reason="insert")

    async def _insert(self, schema: TableSchema, table: str, rows: Rows) -> tuple[int, list[tuple[int, str]]]:
        """Insert rows; on a data error, bisect down to the failing rows. Returns (inserted, rejected)."""
        names, types = schema.names, schema.wire_types
        work = [rows]
        inserted = 0
        rejected: list[tuple[int, str]] = []
        while work:
            part = work.pop()
            settings = {**self._settings, "insert_deduplication_token": _token(table, schema, part)}
            try:
                await self.client.insert(self.database, table, part.columns, names, types, settings)
            except Exception as exc:
                if classify(exc) == "transient":
                    raise _Retry(exc, [i for p in (part, *work) for i in p.indices], inserted, rejected) from exc
                if len(part) == 1:
                    rejected.append((part.indices[0], describe(exc)))
                    continue
                self._rows.labels(self.name, table, "bisected").inc(len(part))
                mid = len(part) // 2
                # Pushed in reverse so the first half is tried first (keeps insert order).
                work.append(part.take(range(mid, len(part))))
                work.append(part.take(range(mid)))
                continue
            inserted += len(part)
        return inserted, rejected


def _group(events: list[Event], default_log_type: str) -> dict[str, list[int]]:
    """Event indices by table key (events without a log_type count as `default_log_type`)."""
    log_types = get_each(events, "log_type")
    if log_types and log_types.count(log_types[0]) == len(log_types):  # one type (a topic per type): no loop
        return {schema_key(log_types[0] or default_log_type): list(range(len(events)))}
    groups: dict[str, list[int]] = {}
    for i, log_type in enumerate(log_types):
        key = schema_key(log_type or default_log_type)
        indices = groups.get(key)
        if indices is None:
            indices = groups[key] = []
        indices.append(i)
    return groups


def _token(table: str, schema: TableSchema, rows: Rows) -> str:
    """Deterministic for the same rows: the table and the rows' event ids (or timestamps and messages)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(table.encode())
    names = schema.names
    ids = rows.columns[names.index("event_id")]
    h.update("\x1f".join(ids).encode("utf-8", "surrogatepass"))
    if not all(ids):
        h.update(repr(rows.columns[names.index("timestamp")]).encode())
        h.update("\x1f".join(rows.columns[names.index("message")]).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


@register("sink", "clickhouse", ClickHouseSinkConfig)
def build(name: str, config: ClickHouseSinkConfig, ctx: BuildContext) -> ClickHouseSink:
    if config.dsn.startswith("chdb:"):
        # chDB's first import chdirs the whole process into its package folder for a
        # moment. Do it here, on the main thread before any source runs, and not in
        # the sink's worker thread where it would race file sources' relative globs.
        import chdb  # noqa: F401
    return ClickHouseSink(name, config, data_dir=ctx.data_dir, metrics=ctx.metrics)
