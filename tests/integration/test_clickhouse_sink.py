"""The clickhouse sink on the real ClickHouse engine (chDB, in-process), run by the real driver.

The sink opens the same database directory as the `chdb_client` fixture (chDB allows one
directory per process; clients on it share the data), writes through the driver, and
the test reads back with the fixture's client.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from parsers.dates import rfc3339_ms
from pipeline.acks import Receipt, Status
from pipeline.dlq import DeadLetterQueue
from pipeline.driver import SinkDriver
from pipeline.event import Batch
from pipeline.metrics import Metrics
from pipeline.queues import BatchQueue
from sinks.clickhouse import ClickHouseSink, ClickHouseSinkConfig
from sinks.clickhouse.query import main as query
from sinks.clickhouse.schema import SCHEMAS

DAY = 86400.0


def access_events(n: int, *, days: int = 3, prefix: str = "e") -> list[dict[str, Any]]:
    """n access events over the last `days` UTC days (inside the default 30-day TTL)."""
    now = time.time()
    start = now - now % DAY - (days - 1) * DAY
    statuses = (200, 200, 200, 301, 404, 500)
    return [{
        "@timestamp": rfc3339_ms(start + (i % days) * DAY + (i // days) % 3600),
        "event_id": f"{prefix}{i}", "log_type": "access", "host": f"web-{i % 3}",
        "message": f'10.2.{i % 250}.{i % 200} - - "GET /p/{i} HTTP/1.1" {statuses[i % 6]} {i}',
        "client_ip": f"10.2.{i % 250}.{i % 200}", "method": "GET" if i % 4 else "POST", "path": f"/p/{i}",
        "http_version": "1.1", "status": statuses[i % 6], "bytes": i * 10, "request_time": 0.25,
        "upstream_response_time": "0.125", "user_agent": "curl/8.5", "referrer": "-",
        "geoip": {"country_iso_code": "DE", "city_name": "Berlin", "location": {"lat": 52.5, "lon": 13.4}},
        "kubernetes": {"namespace": "shop", "pod": f"web-{i % 3}", "container": "nginx", "node": "n1"},
        "tags": ["_geoip_lookup_failure"] if i % 1000 == 0 else [],
        "trace": {"id": f"t{i}"},
    } for i in range(n)]


class Run:
    def __init__(self, tmp_path: Path, dsn: str, **overrides: Any) -> None:
        raw = {"type": "clickhouse", "inputs": ["src"], "dsn": dsn,
               "batch": {"max_events": 10_000, "timeout": "50ms"},
               "retry": {"initial_backoff": "20ms", "max_backoff": "200ms"}, **overrides}
        self.config = ClickHouseSinkConfig.model_validate(raw)
        self.metrics = Metrics()
        self.stats = self.metrics.component("ch", "sink", "clickhouse")
        self.sink = ClickHouseSink("ch", self.config, data_dir=tmp_path, metrics=self.metrics)
        self.dlq = DeadLetterQueue(tmp_path / "dead_letter")
        self.queue = BatchQueue("ch", 16)
        self.driver = SinkDriver(self.sink, self.config, self.queue, self.stats, self.metrics, self.dlq)
        self.released: list[Status] = []

    async def deliver(self, events: list[dict[str, Any]], batch_size: int = 2000, start: bool = True,
                      ) -> list[Receipt]:
        if start:
            await self.sink.start()
        task = asyncio.create_task(self.driver.run())
        receipts = []
        try:
            for i in range(0, len(events), batch_size):
                receipt = Receipt(self.released.append)
                receipts.append(receipt)
                await self.queue.put(Batch(events[i:i + batch_size], receipt))
            await self.queue.close()
            await asyncio.wait_for(task, 300)
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await self.sink.aclose()
        return receipts


@pytest.fixture
def dsn(tmp_path: Path, chdb_client: Any) -> str:
    """The chdb DSN of the fixture's database directory."""
    return f"chdb://{tmp_path / 'chdb'}"


def scalar(client: Any, sql: str) -> Any:
    return client.query(sql).result_rows[0][0]


class TestClickHouse:
    async def test_50k_events_become_50k_typed_rows(self, tmp_path: Path, dsn: str, chdb_client: Any) -> None:
        events = access_events(50_000)
        run = Run(tmp_path, dsn)
        receipts = await run.deliver(events)
        assert all(r.settled for r in receipts) and set(run.released) == {Status.DELIVERED}
        assert run.dlq.read_all() == []
        assert scalar(chdb_client, "SELECT count() FROM logs.access_logs") == 50_000
        assert scalar(chdb_client, "SELECT uniqExact(event_id) FROM logs.access_logs") == 50_000
        assert scalar(chdb_client, "SELECT uniqExact(toDate(timestamp)) FROM logs.access_logs") == 3

        described = {row[0]: row[1] for row in chdb_client.query("DESCRIBE TABLE logs.access_logs").result_rows}
        expected_types = {
            "timestamp": "DateTime64(3, 'UTC')", "event_id": "String", "host": "LowCardinality(String)",
            "message": "String", "client_ip": "IPv6", "method": "LowCardinality(String)", "status": "UInt16",
            "bytes": "UInt64", "request_time": "Float32", "upstream_response_time": "Float32",
            "country": "LowCardinality(String)", "tags": "Array(LowCardinality(String))",
            "extra": "Map(String, String)", "k8s_namespace": "LowCardinality(String)",
        }
        assert {k: described[k] for k in expected_types} == expected_types

        row = chdb_client.query(
            "SELECT toUnixTimestamp64Milli(timestamp), status, bytes, toString(client_ip), request_time, "
            "upstream_response_time, method, country, latitude, tags, extra, k8s_pod "
            "FROM logs.access_logs WHERE event_id = 'e1000'").result_rows[0]
        source = events[1000]
        assert row[0] == round(time.mktime(time.strptime(source["@timestamp"][:19], "%Y-%m-%dT%H:%M:%S"))
                               - time.timezone) * 1000 + int(source["@timestamp"][20:23])
        assert row[1:4] == (source["status"], 10_000, f"::ffff:{source['client_ip']}")
        assert row[4] == pytest.approx(0.25) and row[5] == pytest.approx(0.125)
        assert row[6:9] == ("POST", "DE", pytest.approx(52.5))
        assert row[9] == ["_geoip_lookup_failure"]
        assert row[10] == {"trace": '{"id":"t1000"}'}
        assert row[11] == "web-1"
        assert ipaddress.ip_address(chdb_client.query(
            "SELECT client_ip FROM logs.access_logs LIMIT 1").result_rows[0][0]).version == 6

        assert run.stats.events_out == 50_000
        assert run.sink.client.is_open is False  # closed by aclose after the drain
        metrics = generate_latest(run.metrics.registry).decode()
        assert 'pipeline_clickhouse_rows_total{component="ch",result="inserted",table="access_logs"} 50000.0' \
            in metrics

        by_status = dict(chdb_client.query(
            "SELECT status, count() FROM logs.access_logs GROUP BY status").result_rows)
        assert by_status == Counter(e["status"] for e in events)

    async def test_a_type_invalid_row_is_dead_lettered_and_its_batch_lands(
            self, tmp_path: Path, dsn: str, chdb_client: Any) -> None:
        events = access_events(1000, days=1)
        events[10] = {**events[10], "status": "abc"}
        events[20] = {**events[20], "bytes": -1}
        events[30] = {**events[30], "@timestamp": "not a time"}
        run = Run(tmp_path, dsn)
        await run.deliver(events, batch_size=1000)
        assert run.released == [Status.REJECTED]
        assert scalar(chdb_client, "SELECT count() FROM logs.access_logs") == 997
        dead = {d["event"]["event_id"]: d["reason"] for d in run.dlq.read_all()}
        assert dead == {
            "e10": "status: cannot convert 'abc' to UInt16",
            "e20": "bytes: cannot convert -1 to UInt64",
            "e30": "timestamp: cannot convert 'not a time' to DateTime64(3, 'UTC')",
        }

    async def test_a_block_the_server_refuses_is_bisected_to_the_bad_rows(
            self, tmp_path: Path, dsn: str, chdb_client: Any) -> None:
        # A CHECK constraint makes the engine itself refuse a whole insert for one row (a value
        # that converts fine in Python): the sink must find that row and land the others.
        chdb_client.command("CREATE DATABASE IF NOT EXISTS logs")
        ddl = SCHEMAS["access"].ddl("logs", "access_logs", dedup=False, retention_days=30)
        chdb_client.command(ddl.replace("\n)\nENGINE", ",\n  CONSTRAINT status_valid CHECK status < 600\n)\nENGINE"))
        events = access_events(500, days=1)
        events[123] = {**events[123], "status": 999}
        events[456] = {**events[456], "status": 700}
        run = Run(tmp_path, dsn)
        await run.deliver(events, batch_size=500)
        assert run.released == [Status.REJECTED]
        assert scalar(chdb_client, "SELECT count() FROM logs.access_logs") == 498
        dead = run.dlq.read_all()
        assert sorted(d["event"]["event_id"] for d in dead) == ["e123", "e456"]
        assert all("status_valid" in d["reason"] and "VIOLATED_CONSTRAINT" in d["reason"] for d in dead)

    async def test_a_table_dropped_under_the_sink_is_recreated_and_nothing_is_lost(
            self, tmp_path: Path, dsn: str, chdb_client: Any) -> None:
        # The store refusing inserts for a while (here: UNKNOWN_TABLE) holds the batch, unsettled and
        # retried with backoff, never dead-lettered; the sink recreates its tables and delivers.
        run = Run(tmp_path, dsn)
        await run.sink.start()
        chdb_client.command("DROP TABLE logs.access_logs")
        receipts = await run.deliver(access_events(100, days=1), batch_size=100, start=False)
        assert receipts[0].settled and run.released == [Status.DELIVERED]
        assert run.stats.retries.get("error", 0) >= 1
        assert run.dlq.read_all() == []
        assert scalar(chdb_client, "SELECT count() FROM logs.access_logs") == 100

    async def test_a_retried_insert_is_not_stored_twice(self, tmp_path: Path, dsn: str, chdb_client: Any) -> None:
        # The same rows inserted again (a retry after a timeout whose insert did land) carry the
        # same insert_deduplication_token: the engine drops the second copy.
        events = access_events(300, days=1)
        run = Run(tmp_path, dsn)
        await run.sink.start()
        try:
            assert await run.sink.send(events) == await run.sink.send(events)
        finally:
            await run.sink.aclose()
        assert scalar(chdb_client, "SELECT count() FROM logs.access_logs") == 300

    async def test_replays_grouped_differently_are_not_visible_to_queries(
            self, tmp_path: Path, dsn: str, chdb_client: Any, write_config: Any) -> None:
        # A processor crash replays events regrouped (other batch boundaries, so other insert tokens):
        # the default tables collapse them by event_id and `pipeline query` counts each event once.
        events = access_events(600, days=2)
        for e in events[::7]:
            del e["event_id"]  # a foreign producer's events: ids derived from their content
        await Run(tmp_path, dsn).deliver(events[:450], batch_size=150)
        await Run(tmp_path, dsn).deliver(events[100:], batch_size=77)
        await Run(tmp_path, dsn).deliver(events[::3], batch_size=1000)
        assert scalar(chdb_client, "SELECT count() FROM logs.access_logs") > 600  # stored twice, not merged yet
        engine = scalar(chdb_client, "SELECT engine FROM system.tables WHERE database = 'logs' "
                                     "AND name = 'access_logs'")
        assert engine == "ReplacingMergeTree"
        config = write_config(f"""
            data_dir: {tmp_path / 'data'}
            sources:
              in: {{type: stdin}}
            sinks:
              ch: {{type: clickhouse, inputs: [in], dsn: "{dsn}"}}
        """)
        out = io.StringIO()
        sql = "SELECT count() AS n, uniqExact(event_id) AS ids, uniqExact(message) AS messages FROM logs.access_logs"
        assert await asyncio.to_thread(query, str(config), sql, None, out) == 0
        assert out.getvalue().splitlines()[2].split() == ["600", "|", "600", "|", "600"]

    async def test_query_prints_ipv4_addresses_as_ipv4(self, tmp_path: Path, dsn: str, chdb_client: Any,
                                                       write_config: Any) -> None:
        events = access_events(2, days=1)
        events[1]["client_ip"] = "2001:db8::7"
        await Run(tmp_path, dsn).deliver(events)
        config = write_config(f"""
            sources:
              in: {{type: stdin}}
            sinks:
              ch: {{type: clickhouse, inputs: [in], dsn: "{dsn}"}}
        """)
        out = io.StringIO()
        sql = "SELECT client_ip, [client_ip] AS l FROM logs.access_logs ORDER BY event_id"
        assert await asyncio.to_thread(query, str(config), sql, None, out) == 0
        assert out.getvalue().splitlines()[2:4] == ["10.2.0.0    | [10.2.0.0]", "2001:db8::7 | [2001:db8::7]"]

    async def test_log_types_go_to_their_tables(self, tmp_path: Path, dsn: str, chdb_client: Any) -> None:
        now = rfc3339_ms(time.time())
        events = [
            {"@timestamp": now, "event_id": "a", "log_type": "application", "level": "ERROR", "logger": "db",
             "message": "boom", "error": {"type": "KeyError", "message": "'id'", "stack_trace": "Traceback..."}},
            {"@timestamp": now, "event_id": "b", "log_type": "error", "level": "error", "pid": "1234",
             "client_ip": "2001:db8::7", "message": "upstream timed out"},
            {"@timestamp": now, "event_id": "c", "log_type": "nginx-json", "message": "x", "level": "warn"},
            {"@timestamp": now, "event_id": "d", "message": "no type"},
        ]
        run = Run(tmp_path, dsn)
        await run.deliver(events)
        assert chdb_client.query("SELECT level, logger, error_type, error_message, stack_trace, extra "
                                 "FROM logs.application_logs WHERE event_id = 'a'").result_rows == \
            [("ERROR", "db", "KeyError", "'id'", "Traceback...", {})]
        assert chdb_client.query("SELECT pid, toString(client_ip) FROM logs.error_logs").result_rows == \
            [(1234, "2001:db8::7")]
        assert chdb_client.query("SELECT event_id, log_type, level FROM logs.other_logs ORDER BY event_id"
                                 ).result_rows == [("c", "nginx-json", "warn")]
        # No log_type: the default of every sink.
        assert chdb_client.query("SELECT event_id FROM logs.application_logs ORDER BY event_id").result_rows == \
            [("a",), ("d",)]

    async def test_a_table_of_an_older_version_gets_the_new_columns(
            self, tmp_path: Path, dsn: str, chdb_client: Any) -> None:
        # application_logs as an older version made it: no error_type / error_message columns.
        chdb_client.command("CREATE DATABASE IF NOT EXISTS logs")
        ddl = SCHEMAS["application"].ddl("logs", "application_logs", dedup=False, retention_days=30)
        ddl = ddl.replace(",\n  `error_type` LowCardinality(String)", "").replace(",\n  `error_message` String", "")
        assert "error_type" not in ddl
        chdb_client.command(ddl)
        now = rfc3339_ms(time.time())
        await Run(tmp_path, dsn).deliver([{"@timestamp": now, "event_id": "a", "log_type": "application",
                                           "message": "m", "error": {"type": "E", "message": "x"}}])
        assert chdb_client.query("SELECT error_type, error_message FROM logs.application_logs").result_rows == \
            [("E", "x")]

    async def test_a_relative_chdb_path_is_relative_to_the_working_directory(
            self, tmp_path: Path, chdb_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        run = Run(tmp_path, "chdb:chdb")  # = <cwd>/chdb, the fixture's directory
        assert run.sink.target.path == tmp_path / "chdb"
        await run.deliver(access_events(10, days=1))
        assert scalar(chdb_client, "SELECT count() FROM logs.access_logs") == 10

    async def test_query_prints_counts_by_status(self, tmp_path: Path, dsn: str, chdb_client: Any,
                                                 write_config: Any) -> None:
        await Run(tmp_path, dsn).deliver(access_events(600, days=1))
        config = write_config(f"""
            data_dir: {tmp_path / 'data'}
            sources:
              in: {{type: stdin}}
            sinks:
              ch: {{type: clickhouse, inputs: [in], dsn: "{dsn}"}}
        """)
        out = io.StringIO()
        code = await asyncio.to_thread(
            query, str(config), "SELECT status, count() AS n FROM logs.access_logs GROUP BY status ORDER BY status",
            None, out)
        assert code == 0
        assert out.getvalue().splitlines() == [
            "status |   n",
            "-------+----",
            "   200 | 300",
            "   301 | 100",
            "   404 | 100",
            "   500 | 100",
            "(4 rows)",
        ]

    async def test_query_reports_errors(self, tmp_path: Path, dsn: str, chdb_client: Any, write_config: Any,
                                        capsys: pytest.CaptureFixture[str]) -> None:
        config = write_config(f"""
            sources:
              in: {{type: stdin}}
            sinks:
              ch: {{type: clickhouse, inputs: [in], dsn: "{dsn}"}}
        """)
        code = await asyncio.to_thread(query, str(config), "SELECT nope FROM logs.missing", None, io.StringIO())
        assert code == 1
        err = capsys.readouterr().err
        assert err.startswith("query failed: ") and ("UNKNOWN_DATABASE" in err or "UNKNOWN_TABLE" in err)
        assert await asyncio.to_thread(query, str(config), "SELECT 1", "other", io.StringIO()) == 1
