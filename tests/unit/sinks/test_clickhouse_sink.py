"""sinks/clickhouse: the sink with an injected client (the I/O seam), run by the real driver.

The fake client fails the way a ClickHouse server does (a block refused for one
row, a dropped connection, an unknown error) — cases a real server, let alone the
embedded chDB, can't be made to produce on demand. Integration tests run the same
sink on the real engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError
from prometheus_client import generate_latest

from pipeline.acks import Status
from pipeline.errors import TransientError
from pipeline.metrics import Metrics
from pipeline.sink import Outcome
from sinks.clickhouse import ClickHouseSink, ClickHouseSinkConfig
from sinks.clickhouse.config import Target
from sinks.clickhouse.schema import SCHEMAS
from tests.unit.sinks.driver_harness import DriverHarness

InsertHook = Callable[[str, dict[str, Sequence[Any]]], BaseException | None]


class FakeClient:
    """Stores inserted rows per table; `hook(table, columns)` may return an error to raise instead."""

    def __init__(self, hook: InsertHook | None = None, tables: Sequence[str] = ()) -> None:
        self.hook = hook
        self.commands: list[str] = []
        self.inserts: list[tuple[str, int, dict[str, Any]]] = []
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.existing = set(tables)
        self.closed = False

    def command(self, cmd: str) -> Any:
        self.commands.append(cmd)
        if cmd.startswith("EXISTS TABLE"):
            return 1 if cmd.split("`.`")[1].rstrip("`") in self.existing else 0
        return None

    def query(self, query: str, settings: dict[str, Any] | None = None) -> Any:
        class Result:
            column_names = ("1",)
            result_rows: list[tuple[Any, ...]] = [(1,)]

        if "system.columns" in query:  # the tables are up to date: every column of their schema
            table = query.split("table = '")[1].split("'")[0]
            schema = next(s for key, s in SCHEMAS.items() if key in table)
            Result.result_rows = [(name,) for name in schema.names]
        return Result()

    def insert(self, table: str, data: Sequence[Sequence[Any]], column_names: Sequence[str], database: str,
               column_type_names: Sequence[str], column_oriented: bool, settings: dict[str, Any]) -> Any:
        assert column_oriented
        columns = dict(zip(column_names, data, strict=True))
        self.inserts.append((table, len(data[0]), settings))
        error = self.hook(table, columns) if self.hook else None
        if error is not None:
            raise error
        rows = [dict(zip(columns, values, strict=True)) for values in zip(*data, strict=True)]
        self.rows.setdefault(table, []).extend(rows)
        return None

    def close(self) -> None:
        self.closed = True

    def ids(self, table: str) -> list[str]:
        return [r["event_id"] for r in self.rows.get(table, [])]


def make_config(**overrides: Any) -> ClickHouseSinkConfig:
    raw = {"type": "clickhouse", "inputs": ["src"], "dsn": "chdb://memory",
           "retry": {"initial_backoff": "5ms", "max_backoff": "20ms"},
           "batch": {"max_events": 1000, "timeout": "10ms"}, **overrides}
    return ClickHouseSinkConfig.model_validate(raw)


def make_sink(client: FakeClient, tmp_path: Path, metrics: Metrics | None = None, **overrides: Any) -> ClickHouseSink:
    def factory(target: Target, config: ClickHouseSinkConfig, password: str | None) -> FakeClient:
        return client

    return ClickHouseSink("ch", make_config(**overrides), data_dir=tmp_path, metrics=metrics or Metrics(),
                          factory=factory)


def event(i: int, log_type: str | None = "access", **extra: Any) -> dict[str, Any]:
    return {"@timestamp": "2024-03-01T10:00:00.000Z", "event_id": f"e{i}", "log_type": log_type, "host": "h",
            "message": f"m{i}", "status": 200, "client_ip": "10.0.0.1", **extra}


class Harness(DriverHarness):
    def __init__(self, tmp_path: Path, client: FakeClient, **overrides: Any) -> None:
        metrics = Metrics()
        super().__init__(tmp_path, make_sink(client, tmp_path, metrics, **overrides), metrics,
                         metrics.component("ch", "sink", "clickhouse"))


    def rows_metric(self) -> dict[tuple[str, str], float]:
        out = {}
        for line in generate_latest(self.metrics.registry).decode().splitlines():
            if line.startswith("pipeline_clickhouse_rows_total{"):
                labels = dict(part.split("=") for part in line[line.index("{") + 1: line.index("}")].split(","))
                out[(labels["table"].strip('"'), labels["result"].strip('"'))] = float(line.rsplit(" ", 1)[1])
        return out


def poison(table: str, columns: dict[str, Sequence[Any]]) -> BaseException | None:
    """A server refusing any block that holds a message 'poison' (as for a value it can't store)."""
    if "poison" in columns["message"]:
        return DatabaseError("Code: 53. DB::Exception: Type mismatch in column message: poison. (TYPE_MISMATCH) "
                             "(version 24.8.1)", code=53)
    return None


class TestDelivery:
    async def test_delivers_per_table_and_settles(self, tmp_path: Path) -> None:
        client = FakeClient()
        async with Harness(tmp_path, client) as h:
            await h.put([event(0), event(1, "error", level="error"), event(2, "application", level="INFO"),
                         event(3, "nginx-json"), event(4, None)])
            await h.finish()
        assert h.released == [Status.DELIVERED]
        assert client.ids("access_logs") == ["e0"]
        assert client.ids("error_logs") == ["e1"]
        # No log_type: the default of every sink, application.
        assert client.ids("application_logs") == ["e2", "e4"]
        assert client.ids("other_logs") == ["e3"]
        assert client.rows["other_logs"][0]["log_type"] == "nginx-json"
        assert client.closed
        assert h.stats.events_out == 5

    async def test_default_log_type_chooses_the_table_of_events_without_one(self, tmp_path: Path) -> None:
        client = FakeClient()
        async with Harness(tmp_path, client, default_log_type="other") as h:
            await h.put([event(0, None), event(1, "")])
            await h.finish()
        assert client.ids("other_logs") == ["e0", "e1"]

    async def test_start_creates_database_and_four_tables(self, tmp_path: Path) -> None:
        client = FakeClient()
        sink = make_sink(client, tmp_path, database="weblogs", table="t_{log_type}", dedup=True)
        await sink.start()
        await sink.aclose()
        assert client.commands[0] == "CREATE DATABASE IF NOT EXISTS `weblogs`"
        creates = client.commands[1:]
        assert [c.split("`weblogs`.`")[1].split("`")[0] for c in creates] == \
            ["t_application", "t_access", "t_error", "t_other"]
        assert all("ReplacingMergeTree" in c for c in creates)

    async def test_start_without_create_tables_requires_them(self, tmp_path: Path) -> None:
        sink = make_sink(FakeClient(tables=["application_logs", "access_logs"]), tmp_path, create_tables=False)
        with pytest.raises(TransientError, match="error_logs, other_logs"):
            await sink.start()
        await sink.aclose()
        ok = make_sink(FakeClient(tables=["application_logs", "access_logs", "error_logs", "other_logs"]),
                       tmp_path, create_tables=False)
        await ok.start()
        await ok.aclose()

    async def test_unopenable_store_is_transient_at_start(self, tmp_path: Path) -> None:
        def factory(target: Target, config: ClickHouseSinkConfig, password: str | None) -> FakeClient:
            raise DatabaseError("Cannot lock file /x/status. Another server instance in same directory is "
                                "already running. (CANNOT_OPEN_FILE)")

        sink = ClickHouseSink("ch", make_config(dsn="chdb:///x"), data_dir=tmp_path, metrics=Metrics(),
                              factory=factory)
        with pytest.raises(TransientError, match="another process holds this chDB directory"):
            await sink.start()
        await sink.aclose()

    async def test_insert_token_is_deterministic_per_rows(self, tmp_path: Path) -> None:
        client = FakeClient()
        sink = make_sink(client, tmp_path, insert_settings={"async_insert": 0})
        await sink.start()
        await sink.send([event(0), event(1)])
        await sink.send([event(0), event(1)])
        await sink.send([event(0), event(2)])
        await sink.aclose()
        tokens = [settings["insert_deduplication_token"] for _, _, settings in client.inserts]
        assert tokens[0] == tokens[1] != tokens[2]
        assert all(settings["async_insert"] == 0 for _, _, settings in client.inserts)


class TestRejections:
    async def test_unconvertible_rows_go_to_the_dlq_and_the_rest_lands(self, tmp_path: Path) -> None:
        client = FakeClient()
        async with Harness(tmp_path, client) as h:
            await h.put([event(0), event(1, status="abc"), event(2)])
            await h.finish()
        assert h.released == [Status.REJECTED]
        assert client.ids("access_logs") == ["e0", "e2"]
        dead = h.dlq.read_all()
        assert [(d["event"]["event_id"], d["reason"]) for d in dead] == \
            [("e1", "status: cannot convert 'abc' to UInt16")]
        assert h.rows_metric()[("access_logs", "rejected")] == 1.0

    async def test_a_block_refused_by_the_server_is_bisected_to_the_bad_row(self, tmp_path: Path) -> None:
        client = FakeClient(poison)
        events = [event(i, message="poison" if i == 37 else f"m{i}") for i in range(64)]
        async with Harness(tmp_path, client) as h:
            await h.put(events)
            await h.finish()
        assert h.released == [Status.REJECTED]
        assert sorted(client.ids("access_logs")) == sorted(f"e{i}" for i in range(64) if i != 37)
        dead = h.dlq.read_all()
        assert [d["event"]["event_id"] for d in dead] == ["e37"]
        assert dead[0]["reason"] == "Code: 53. DB::Exception: Type mismatch in column message: poison. (TYPE_MISMATCH)"
        # 1 full try, then 2 per level down to a single row: 1 + 2*6 inserts, not 64.
        assert len(client.inserts) == 13
        assert h.rows_metric()[("access_logs", "inserted")] == 63.0

    async def test_client_side_encoding_errors_are_bisected_too(self, tmp_path: Path) -> None:
        def encode_error(table: str, columns: dict[str, Sequence[Any]]) -> BaseException | None:
            bad = [m for m in columns["message"] if not m.isascii()]
            return UnicodeEncodeError("utf-8", bad[0], 0, 1, "surrogates not allowed") if bad else None

        client = FakeClient(encode_error)
        sink = make_sink(client, tmp_path)
        await sink.start()
        outcome = await sink.send([event(0), event(1, message="\ud800"), event(2)])
        await sink.aclose()
        assert outcome.retry == [] and [i for i, _ in outcome.rejected] == [1]
        assert client.ids("access_logs") == ["e0", "e2"]


class TestTransient:
    async def test_server_down_is_retried_and_nothing_settles_meanwhile(self, tmp_path: Path) -> None:
        up = asyncio.Event()
        attempts = asyncio.Event()
        calls = 0

        def down(table: str, columns: dict[str, Sequence[Any]]) -> BaseException | None:
            nonlocal calls
            calls += 1
            if calls >= 3:
                attempts.set()
            return None if up.is_set() else OperationalError("Error HTTPConnectionPool: Connection refused")

        client = FakeClient(down)
        async with Harness(tmp_path, client) as h:
            receipt = await h.put([event(i) for i in range(5)])
            await asyncio.wait_for(attempts.wait(), 10)
            assert not receipt.settled
            assert h.driver.last_error is not None and "Connection refused" in h.driver.last_error
            up.set()
            await h.finish()
        assert h.released == [Status.DELIVERED]
        assert h.dlq.read_all() == []
        assert client.ids("access_logs") == [f"e{i}" for i in range(5)]
        assert h.stats.retries.get("error", 0) >= 2

    @pytest.mark.parametrize("error", [
        pytest.param(DatabaseError("Code: 252. Too many parts. (TOO_MANY_PARTS)", code=252), id="too-many-parts"),
        pytest.param(DatabaseError("Code: 241. Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)", code=241),
                     id="memory"),
        pytest.param(DatabaseError("Code: 60. Unknown table. (UNKNOWN_TABLE)", code=60), id="unknown-table"),
        pytest.param(DatabaseError("Code: 123456. Something new.", code=123456), id="unknown-code"),
        pytest.param(RuntimeError("surprise"), id="unexpected-exception"),
    ])
    async def test_server_trouble_is_never_dead_lettered(self, tmp_path: Path, error: BaseException) -> None:
        sink = make_sink(FakeClient(lambda t, c: error), tmp_path)
        await sink.start()
        with pytest.raises(TransientError):
            await sink.send([event(0), event(1)])
        await sink.aclose()

    async def test_failure_mid_bisection_retries_only_what_is_left(self, tmp_path: Path) -> None:
        # The first half lands, then the server goes away: only the rest is retried.
        calls = 0

        def flaky(table: str, columns: dict[str, Sequence[Any]]) -> BaseException | None:
            nonlocal calls
            calls += 1
            if calls == 3:
                return OperationalError("connection reset")
            return poison(table, columns)

        client = FakeClient(flaky)
        sink = make_sink(client, tmp_path)
        await sink.start()
        events = [event(i, message="poison" if i == 7 else f"m{i}") for i in range(8)]
        outcome = await sink.send(events)
        await sink.aclose()
        assert client.ids("access_logs") == [f"e{i}" for i in range(4)]
        assert outcome.rejected == []
        assert outcome.retry == [4, 5, 6, 7]

    async def test_rows_isolated_before_a_failure_are_still_rejected(self, tmp_path: Path) -> None:
        # Bisection finds the bad row in the first half, lands the rest of it, then the server
        # goes away: the bad row is rejected (not silently dropped), the second half retried.
        calls = 0

        def flaky(table: str, columns: dict[str, Sequence[Any]]) -> BaseException | None:
            nonlocal calls
            calls += 1
            if len(columns["message"]) == 4 and columns["message"][0] == "m4":
                return OperationalError("connection reset")
            return poison(table, columns)

        client = FakeClient(flaky)
        sink = make_sink(client, tmp_path)
        await sink.start()
        events = [event(i, message="poison" if i == 1 else f"m{i}") for i in range(8)]
        outcome = await sink.send(events)
        await sink.aclose()
        assert sorted(client.ids("access_logs")) == ["e0", "e2", "e3"]
        assert [i for i, _ in outcome.rejected] == [1]
        assert outcome.retry == [4, 5, 6, 7]

    async def test_a_later_table_failing_retries_only_its_events(self, tmp_path: Path) -> None:
        def error_table_down(table: str, columns: dict[str, Sequence[Any]]) -> BaseException | None:
            return OperationalError("timeout") if table == "error_logs" else None

        client = FakeClient(error_table_down)
        sink = make_sink(client, tmp_path)
        await sink.start()
        outcome = await sink.send([event(0), event(1, "error"), event(2), event(3, "application")])
        await sink.aclose()
        # Tables go in first-seen order: access lands, error fails, application is not tried.
        assert client.ids("access_logs") == ["e0", "e2"]
        assert outcome == Outcome(retry=[1, 3], rejected=[], retry_reason="insert")


class TestLifecycle:
    async def test_aclose_drains(self, tmp_path: Path) -> None:
        client = FakeClient()
        async with Harness(tmp_path, client, max_in_flight=2, batch={"max_events": 2, "timeout": "1ms"}) as h:
            receipts = [await h.put([event(i * 2), event(i * 2 + 1)]) for i in range(5)]
            await h.finish()
        assert all(r.settled for r in receipts)
        assert len(client.ids("access_logs")) == 10
        assert client.closed

    async def test_healthcheck(self, tmp_path: Path) -> None:
        sink = make_sink(FakeClient(), tmp_path)
        with pytest.raises(TransientError, match="not connected"):
            await sink.healthcheck()
        await sink.start()
        await sink.healthcheck()
        await sink.aclose()

    async def test_server_healthcheck_queries(self, tmp_path: Path) -> None:
        class Down(FakeClient):
            def query(self, query: str, settings: dict[str, Any] | None = None) -> Any:
                if query != "SELECT 1":
                    return super().query(query, settings)
                raise OperationalError("Connection refused")

        sink = make_sink(Down(), tmp_path, dsn="http://user:pw@ch:8123")
        await sink.start()
        with pytest.raises(TransientError, match=r"http://user:\*\*\*@ch:8123 unreachable"):
            await sink.healthcheck()
        await sink.aclose()

    def test_registered(self) -> None:
        from pipeline import registry

        spec = registry.lookup("sink", "clickhouse")
        assert spec is not None and spec.model is ClickHouseSinkConfig
