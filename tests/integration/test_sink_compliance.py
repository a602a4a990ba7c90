"""The sink compliance suite: every sink keeps the same contract against its real destination.

Each case runs the sink as the daemon builds it (its registered config model and factory,
`DriverHarness.from_config`) under the real `SinkDriver` (batching, retry, dead-letter
queue, settlement), and asserts what arrived by reading the destination itself: kcat for
Kafka, a search for Elasticsearch, SELECT for ClickHouse (chDB), GET /api/v2/alerts for
Alertmanager, the files for the file sink. Never through the sink.

Cases:

1. `delivers`: N events in, N arrive exactly once; every receipt settles DELIVERED.
2. `down` / `down_mid_stream`: with the destination down (from the start, or after a first
   batch went through: connections open, records in flight), nothing settles, the retry
   counter moves, nothing arrives; when it comes back everything arrives and settles.
3. `rejection`: events the destination refuses for good go to the dead-letter queue with
   the reason, the batch settles (REJECTED) and the rest of it arrives.
4. `partial`: while one part of the destination fails, only the failed items are retried
   (every send after the first carries exactly them) and the rest arrives at once.
5. `close`: the stream ends while a send is in flight (held at a gate); the driver drains:
   every receipt settles and everything arrives (the sink's aclose flushes what it holds).
6. `metrics`: pipeline_events_in/out, pipeline_events_dead_lettered, pipeline_sink_send_seconds
   and the retry counter move, read from the Prometheus exposition.

"Down" never stops a shared service (other tests use them at the same time): HTTP services
and Kafka are reached through a `tests.relay` relay that is cut and restored: refused for
Elasticsearch and Alertmanager (a dead server), silent for Kafka (a partition: requests in
flight go unanswered); `KafkaRelay` rewrites the broker address in Metadata responses so
every connection goes through it.
chDB runs in-process and has no "down": ClickHouse itself refuses every insert
(parts_to_throw_insert = 0: TOO_MANY_PARTS, its overload signal, which the sink retries).
The file sink's "down" is its output folder replaced by a regular file.

Adding a sink = one `Destination` subclass, listed in DESTINATIONS:

    class LokiDestination(Destination):
        type = "loki"                          # the sink's `type`
        fixtures = ("victorialogs_url",)       # pytest fixtures it needs: self.fx["victorialogs_url"]
        not_applicable = {PARTIAL: "a push is accepted or refused as a whole"}  # case -> why (a skip)

        async def setup(self) -> None          # before the sink is built: relays, topics, ...
        def config(self) -> dict               # the sink's config as in YAML, without type and inputs
        async def arrived(self) -> Counter     # event ids found at the destination, with multiplicity
        async def cut(self) / restore(self)    # destination down / back (HTTP: self.relay, made in setup)
        def rejected(self) -> list[(event, reason piece)]   # refused for good (case 3), unless N/A
        async def break_part(self) / heal_part(self), def broken_event(i)   # case 4, unless N/A
        # optional: started() (after the sink started), teardown(), event(i) (the event shape),
        # retries(h) (when the sink counts retries elsewhere), settles_while_down (why, if it does).

An HTTP destination subclasses `RelayedDestination` instead and names its URL fixture
(`url_fixture = "victorialogs_url"`): setup, teardown, cut and restore come with it, and the
sink's config points at `self.relay.url`.

A case a destination cannot show is declared in `not_applicable` with the reason, and the
test reports it as skipped with that reason: no case passes without asserting.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import random
import subprocess
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from parsers.dates import rfc3339_ms
from pipeline.acks import Receipt, Status
from pipeline.event import Event
from tests.helpers import eventually
from tests.integration.conftest import _create_topic, _delete_topics, http_request, logsql
from tests.relay import KafkaRelay, Relay
from tests.unit.sinks.driver_harness import DriverHarness

DOWN, DOWN_MID_STREAM, REJECTION, PARTIAL = "down", "down_mid_stream", "rejection", "partial"
CASES = (DOWN, DOWN_MID_STREAM, REJECTION, PARTIAL)
SINK = "under_test"  # the component name
N = 120  # events per case
BATCH = 40  # events per batch put into the sink's queue
TIMING = {
    "batch": {"max_events": BATCH, "timeout": "50ms"},
    "retry": {"initial_backoff": "50ms", "max_backoff": "500ms"},
}


class Destination:
    """One sink type against its real destination (see the module docstring)."""

    type: ClassVar[str]
    fixtures: ClassVar[tuple[str, ...]] = ()
    not_applicable: ClassVar[dict[str, str]] = {}
    # Why a batch settles while the destination is down (the sink's own durable buffer), or None.
    settles_while_down: ClassVar[str | None] = None
    relay: Relay | None = None  # set when the sink reaches the destination through one

    def __init__(self, name: str, tmp_path: Path, fx: dict[str, Any]) -> None:
        self.name = name  # unique per test: event ids, topics, indices and labels carry it
        self.tmp_path = tmp_path
        self.fx = fx

    async def setup(self) -> None:
        return None

    async def teardown(self) -> None:
        return None

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    async def started(self) -> None:
        return None

    def event_id(self, i: int) -> str:
        return f"{self.name}-{i:04d}"

    def event(self, i: int, **fields: Any) -> Event:
        """A well-formed access-log event, as the parse transform leaves one."""
        return {
            "@timestamp": rfc3339_ms(time.time()),
            "event_id": self.event_id(i),
            "log_type": "access",
            "host": "web-1",
            "source": {"path": "/var/log/nginx/access.log"},
            "message": f'10.0.{i % 250}.1 - - "GET /p/{i} HTTP/1.1" 200 {i}',
            "client_ip": f"10.0.{i % 250}.1",
            "method": "GET",
            "path": f"/p/{i}",
            "status": 200,
            "bytes": i,
            **fields,
        }

    async def arrived(self) -> Counter[str]:
        raise NotImplementedError

    async def cut(self) -> None:
        raise NotImplementedError

    async def restore(self) -> None:
        raise NotImplementedError

    def rejected(self) -> list[tuple[Event, str]]:
        raise NotImplementedError

    async def break_part(self) -> None:
        raise NotImplementedError

    async def heal_part(self) -> None:
        raise NotImplementedError

    def broken_event(self, i: int) -> Event:
        raise NotImplementedError

    def retries(self, h: DriverHarness) -> float:
        """The retry counter a test watches move while the destination fails."""
        return h.metric("pipeline_sink_retries_total", component=SINK)

    def require(self, case: str) -> None:
        reason = self.not_applicable.get(case)
        if reason is not None:
            pytest.skip(f"{case} is not applicable to the {self.type} sink: {reason}")


class RelayedDestination(Destination):
    """A destination over HTTP, reached through a relay; `cut()` refuses connections (a dead server)."""

    url_fixture: ClassVar[str]  # the fixture giving the service's base URL (also listed in `fixtures`)

    async def setup(self) -> None:
        self.url = self.fx[self.url_fixture]
        self.relay = await Relay.to_url(self.url).start()

    async def teardown(self) -> None:
        await self.relay.aclose()

    async def cut(self) -> None:
        await self.relay.cut()

    async def restore(self) -> None:
        await self.relay.restore()


# -- Kafka --------------------------------------------------------------------------------


def kcat_ids(bootstrap: str, topic: str) -> list[str]:
    proc = subprocess.run(
        ["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        assert "Unknown topic" in proc.stderr or "UNKNOWN_TOPIC" in proc.stderr, proc.stderr
        return []  # the partial case deletes a topic for a while
    return [json.loads(line)["event_id"] for line in proc.stdout.splitlines() if line.strip()]


class KafkaDestination(Destination):
    type = "kafka"
    fixtures = ("kafka_bootstrap",)

    async def setup(self) -> None:
        self.bootstrap = self.fx["kafka_bootstrap"]
        self.good_topic = f"{self.name}-access"
        self.part_topic = f"{self.name}-error"
        # The broker refuses record batches over 64 KiB on the topic: the rejection case's record.
        await _create_topic(self.bootstrap, self.good_topic, 1, {"max.message.bytes": str(64 * 1024)})
        await _create_topic(self.bootstrap, self.part_topic, 1, {})
        host, _, port = self.bootstrap.rpartition(":")
        self.relay = await KafkaRelay(host, int(port)).start()

    async def teardown(self) -> None:
        await self.relay.aclose()
        await _delete_topics(self.bootstrap, [self.good_topic, self.part_topic])

    def config(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.relay.address,
            "topic": f"{self.name}-{{log_type}}",
            "topics_to_create": [self.good_topic, self.part_topic],
            "max_batch_bytes": "16KiB",
            "request_timeout": "2s",
            "delivery_timeout": "3s",
        }

    async def arrived(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for topic in (self.good_topic, self.part_topic):
            out.update(await asyncio.to_thread(kcat_ids, self.bootstrap, topic))
        return out

    async def cut(self) -> None:
        # Silent (a partition, a hung broker), not refused: the producer's connections stay up and
        # its requests go unanswered, so records are in flight when the broker goes away.
        await self.relay.cut(silent=True)

    async def restore(self) -> None:
        await self.relay.restore()

    def rejected(self) -> list[tuple[Event, str]]:
        noise = base64.b64encode(random.randbytes(200_000)).decode()  # zstd cannot get it under 64 KiB
        return [
            (self.event(9000, message=noise), "kafka rejected the record as too large"),
            (self.event(9001, trace_id=2**70), "cannot encode the event as JSON: Integer exceeds 64-bit range"),
        ]

    async def break_part(self) -> None:
        # A deleted topic: the broker answers UNKNOWN_TOPIC_OR_PARTITION for its partition only.
        await _delete_topics(self.bootstrap, [self.part_topic])

    async def heal_part(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:  # the deletion completes asynchronously: TOPIC_ALREADY_EXISTS meanwhile
                await _create_topic(self.bootstrap, self.part_topic, 1, {})
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def broken_event(self, i: int) -> Event:
        return self.event(i, log_type="error")


# -- Elasticsearch ------------------------------------------------------------------------


class ElasticsearchDestination(RelayedDestination):
    type = "elasticsearch"
    url_fixture = "es_url"
    fixtures = ("es_url", "es_index")  # es_index: deletes everything named <name>* afterwards

    async def setup(self) -> None:
        await super().setup()
        assert self.fx["es_index"] == self.name
        self.part_index = f"{self.name}-error"

    def config(self) -> dict[str, Any]:
        return {
            "hosts": [self.relay.url],
            "index": f"{self.name}-{{log_type}}",
            "template": {"name": f"{self.name}-template", "index_patterns": [f"{self.name}-*"]},
            "request_timeout": "5s",
        }

    async def _http(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await asyncio.to_thread(http_request, method, self.url + path, body)

    async def arrived(self) -> Counter[str]:
        pattern = urllib.parse.quote(f"{self.name}-*")
        await self._http("POST", f"/{pattern}/_refresh?ignore_unavailable=true&allow_no_indices=true")
        status, body = await self._http(
            "GET", f"/{pattern}/_search?size=10000&_source=event_id&ignore_unavailable=true&allow_no_indices=true"
        )
        if status == 503 and "no_shard_available_action_exception" in str(body):
            # An index the sink just created whose primary shard is still starting (seen in CI right after
            # the destination came back): nothing is readable yet; the caller polls again.
            return Counter()
        assert status == 200, body
        return Counter(hit["_source"]["event_id"] for hit in body["hits"]["hits"])

    def rejected(self) -> list[tuple[Event, str]]:
        return [
            (self.event(9000, status="abc"), "document_parsing_exception"),  # status is mapped `short`
            (self.event(9001, trace_id=2**70), "serialization_error: Integer exceeds 64-bit range"),
        ]

    async def _block(self, value: bool | None) -> None:
        settings = {"index.blocks.read_only_allow_delete": value}
        status, body = await self._http("PUT", f"/{self.part_index}/_settings", settings)
        assert status == 200, body

    async def break_part(self) -> None:
        # The flood-stage block: every write to this index gets a per-item 429, the others go through.
        status, body = await self._http("PUT", f"/{self.part_index}")
        assert status == 200, body
        await self._block(True)

    async def heal_part(self) -> None:
        await self._block(None)

    def broken_event(self, i: int) -> Event:
        return self.event(i, log_type="error")


# -- ClickHouse (chDB) ----------------------------------------------------------------------

TABLES = ("access_logs", "error_logs", "application_logs", "other_logs")


class ClickHouseDestination(Destination):
    type = "clickhouse"
    fixtures = ("chdb_client", "chdb_path")

    async def setup(self) -> None:
        self.client = self.fx["chdb_client"]

    def config(self) -> dict[str, Any]:
        return {"dsn": f"chdb://{self.fx['chdb_path']}"}

    async def started(self) -> None:
        # A value the sink converts fine but ClickHouse refuses: the server's own rejection.
        self.client.command("ALTER TABLE logs.access_logs ADD CONSTRAINT no_teapot CHECK status != 418")

    async def arrived(self) -> Counter[str]:
        sql = " UNION ALL ".join(f"SELECT event_id FROM logs.{t}" for t in TABLES)
        return Counter(row[0] for row in self.client.query(sql).result_rows)

    def _refuse(self, tables: tuple[str, ...], refuse: bool) -> None:
        for table in tables:
            setting = "MODIFY SETTING parts_to_throw_insert = 0" if refuse else "RESET SETTING parts_to_throw_insert"
            self.client.command(f"ALTER TABLE logs.{table} {setting}")

    async def cut(self) -> None:
        self._refuse(TABLES, True)

    async def restore(self) -> None:
        self._refuse(TABLES, False)

    def rejected(self) -> list[tuple[Event, str]]:
        return [
            (self.event(9000, status="abc"), "status: cannot convert 'abc' to UInt16"),
            (self.event(9001, status=418), "VIOLATED_CONSTRAINT"),
        ]

    async def break_part(self) -> None:
        self._refuse(("error_logs",), True)

    async def heal_part(self) -> None:
        self._refuse(("error_logs",), False)

    def broken_event(self, i: int) -> Event:
        return self.event(i, log_type="error", level="error", message=f"upstream timed out {i}")


# -- webhook -> Alertmanager ----------------------------------------------------------------


class WebhookDestination(RelayedDestination):
    type = "webhook"
    url_fixture = "alertmanager_url"
    fixtures = ("alertmanager_url",)
    not_applicable: ClassVar[dict[str, str]] = {
        REJECTION: "a send only folds events into the sink's durable alert state; Alertmanager answers for "
        "a notification (an aggregate of events settled earlier), never for an event, so no event can be "
        "refused (a refused notification is counted: pipeline_webhook_notifications_total{outcome=failed})",
        PARTIAL: "a send is one fold and one state write: there are no per-event outcomes (each target's "
        "outbox retries that target alone)",
    }
    settles_while_down = (
        "a batch settles once its alerts are in the sink's fsynced state file; the outbox delivers them "
        "to Alertmanager when it is back (at-least-once through the state file)"
    )

    def config(self) -> dict[str, Any]:
        return {
            "rules": [
                {
                    "name": "Compliance",
                    "when": {"field": "event_id", "exists": True},
                    # One alert per event, so every event is visible in Alertmanager with its own count.
                    "labels": {"test_id": self.name, "event_id": "{event_id}"},
                }
            ],
            "targets": [{"type": "alertmanager", "url": self.relay.url, "timeout": "1s"}],
            "group_wait": "300ms",
            "update_interval": "300ms",
            "resolve_after": "60s",
            "max_alerts_per_minute": 100_000,
            "flush_timeout": "10s",
        }

    async def arrived(self) -> Counter[str]:
        query = urllib.parse.urlencode(
            {"filter": f'test_id="{self.name}"', "active": "true", "silenced": "true", "inhibited": "true"}
        )
        status, alerts = await asyncio.to_thread(http_request, "GET", f"{self.url}/api/v2/alerts?{query}")
        assert status == 200, alerts
        return Counter({a["labels"]["event_id"]: int(a["annotations"]["count"]) for a in alerts})

    def retries(self, h: DriverHarness) -> float:
        return h.metric("pipeline_webhook_delivery_retries_total", component=SINK)


# -- file -------------------------------------------------------------------------------------


class FileDestination(Destination):
    type = "file"
    not_applicable: ClassVar[dict[str, str]] = {
        DOWN_MID_STREAM: "a file the sink holds open keeps taking writes whatever happens to its folder; only "
        "a full disk or an I/O error fails it, which a test cannot cause without privileges (the case "
        "'down' covers a folder that cannot be written before the first write)",
    }

    async def setup(self) -> None:
        self.out = self.tmp_path / "out"
        self.away = self.tmp_path / "out.away"

    def config(self) -> dict[str, Any]:
        return {"path": f"{self.out}/{{log_type}}/events.jsonl"}

    async def arrived(self) -> Counter[str]:
        return Counter(await asyncio.to_thread(self._read))

    def _read(self) -> list[str]:
        if not self.out.is_dir():
            return []
        return [json.loads(line)["event_id"] for p in sorted(self.out.rglob("*.jsonl")) for line in p.open("rb")]

    async def cut(self) -> None:
        # The sink opens a file on its first write to it; the cases cut before any write.
        if self.out.exists():
            self.out.rename(self.away)
        self.out.write_text("a file where the output folder should be")

    async def restore(self) -> None:
        self.out.unlink()
        if self.away.exists():
            self.away.rename(self.out)

    def rejected(self) -> list[tuple[Event, str]]:
        return [
            (self.event(9000, log_type="x" * 300), "File name too long (ENAMETOOLONG)"),
            (self.event(9001, trace_id=2**70), "cannot encode the event as JSON: Integer exceeds 64-bit range"),
        ]

    async def break_part(self) -> None:
        (self.out / "error").parent.mkdir(parents=True, exist_ok=True)
        (self.out / "error").write_text("a file where the error folder should be")

    async def heal_part(self) -> None:
        (self.out / "error").unlink()

    def broken_event(self, i: int) -> Event:
        return self.event(i, log_type="error")


# -- Loki (VictoriaLogs) ---------------------------------------------------------------------


class LokiDestination(RelayedDestination):
    type = "loki"
    url_fixture = "victorialogs_url"
    fixtures = ("victorialogs_url",)
    not_applicable: ClassVar[dict[str, str]] = {
        PARTIAL: "a Loki push is accepted or refused as a whole: the server has no per-entry outcomes to retry",
    }

    def config(self) -> dict[str, Any]:
        return {
            "endpoint": self.relay.url,
            "path": "/insert/loki/api/v1/push",
            "healthcheck_path": "/health",
            "labels": {"job": self.name, "log_type": "{log_type}"},
            "structured_metadata": ["event_id"],
            "request_timeout": "5s",
        }

    async def arrived(self) -> Counter[str]:
        rows = await asyncio.to_thread(logsql, self.url, f'job:"{self.name}"')
        return Counter(row["event_id"] for row in rows)

    def rejected(self) -> list[tuple[Event, str]]:
        # VictoriaLogs cannot refuse an entry on demand; what the sink refuses for good is an
        # event it can never encode (an integer beyond 64 bits, as a grok :int cast can make).
        return [(self.event(9001, trace_id=2**70), "cannot encode the event as JSON")]


DESTINATIONS: tuple[type[Destination], ...] = (
    KafkaDestination,
    ElasticsearchDestination,
    ClickHouseDestination,
    WebhookDestination,
    FileDestination,
    LokiDestination,
)


# -- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture(params=DESTINATIONS, ids=lambda d: d.type)
async def dest(request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> AsyncIterator[Destination]:
    cls: type[Destination] = request.param
    fx = {name: request.getfixturevalue(name) for name in cls.fixtures}
    destination = cls(unique_name, tmp_path, fx)
    await destination.setup()
    try:
        yield destination
    finally:
        await destination.teardown()


@contextlib.asynccontextmanager
async def running(dest: Destination) -> AsyncIterator[DriverHarness]:
    raw = {"type": dest.type, "inputs": ["src"], **TIMING, **dest.config()}
    h = DriverHarness.from_config(dest.tmp_path, SINK, raw)
    async with h:
        await dest.started()
        yield h


def ids(events: list[Event]) -> list[str]:
    return [e["event_id"] for e in events]


def chunks(events: list[Event]) -> list[list[Event]]:
    return [events[i : i + BATCH] for i in range(0, len(events), BATCH)]


async def put_all(h: DriverHarness, events: list[Event]) -> list[Receipt]:
    return [await h.put(batch) for batch in chunks(events)]


async def arrives(dest: Destination, expected: Counter[str], what: str) -> None:
    """What arrived equals `expected` exactly (polled: some destinations show writes with a delay)."""
    got = await eventually(dest.arrived, lambda got: got == expected, what=what)
    assert got == expected


# -- the cases --------------------------------------------------------------------------------


def test_every_not_applicable_case_is_a_case_with_a_reason() -> None:
    for cls in DESTINATIONS:
        assert set(cls.not_applicable) <= set(CASES), cls
        assert all(len(reason) > 20 for reason in cls.not_applicable.values()), cls


async def test_delivers_and_settles(dest: Destination) -> None:
    events = [dest.event(i) for i in range(N)]
    async with running(dest) as h:
        receipts = await put_all(h, events)
        await h.finish(within=60)
    assert all(r.settled for r in receipts)
    assert h.released == [Status.DELIVERED] * len(receipts)
    assert h.dlq.read_all() == []
    await arrives(dest, Counter(ids(events)), "every event, once")
    if dest.relay is not None:  # or cutting it would prove nothing
        assert dest.relay.accepted > 0, "the sink bypassed the relay"


@pytest.mark.parametrize("when", [DOWN, DOWN_MID_STREAM])
async def test_down_nothing_settles_retries_and_nothing_is_lost(dest: Destination, when: str) -> None:
    dest.require(when)
    warm = [dest.event(i) for i in range(BATCH)] if when == DOWN_MID_STREAM else []
    events = [dest.event(i) for i in range(len(warm), len(warm) + N)]
    async with running(dest) as h:
        if warm:  # connections open, metadata and files known: the destination goes away under a live sink
            await put_all(h, warm)
            await arrives(dest, Counter(ids(warm)), "the first batch")
        await dest.cut()
        try:
            receipts = await put_all(h, events)
            await eventually(lambda: dest.retries(h), lambda n: n >= 2, what="the retry counter to move")
            if dest.settles_while_down is None:
                assert not any(r.settled for r in receipts), "settled while the destination was down"
            else:  # the sink's own durable buffer holds them (the reason is declared on the destination)
                await eventually(lambda: all(r.settled for r in receipts), bool, what="settled into the buffer")
            assert await dest.arrived() == Counter(ids(warm)), "arrived while the destination was down"
        finally:
            await dest.restore()
        # Back: the sink delivers by itself (no new input, no shutdown needed to push it).
        # At-least-once: a send cut mid-way may be written twice, so the ids are compared as a set.
        expected = set(ids(warm + events))
        got = await eventually(dest.arrived, lambda got: set(got) == expected, what="every event, once back")
        assert set(got) == expected
        await h.finish(within=60)
    assert h.released == [Status.DELIVERED] * (len(chunks(warm)) + len(receipts))
    assert h.dlq.read_all() == []


async def test_permanent_rejection_is_dead_lettered_with_its_reason(dest: Destination) -> None:
    dest.require(REJECTION)
    good = [dest.event(i) for i in range(N)]
    bad = dest.rejected()
    mixed = good[:10] + [event for event, _ in bad] + good[10:]
    async with running(dest) as h:
        receipt = await h.put(mixed)
        await h.finish(within=60)
    assert receipt.settled and h.released == [Status.REJECTED]  # settled: the DLQ holds the rest
    dead = h.dlq.read_all()
    assert sorted(d["event"]["event_id"] for d in dead) == sorted(ids([event for event, _ in bad]))
    for event, reason in bad:
        (record,) = [d for d in dead if d["event"]["event_id"] == event["event_id"]]
        assert record["component"] == SINK
        assert reason in record["reason"], record["reason"]
    await arrives(dest, Counter(ids(good)), "the good events, once; none of the rejected")
    assert h.metric("pipeline_events_dead_lettered_total", component=SINK) == len(bad)


async def test_partial_failure_retries_only_the_failed_items(dest: Destination) -> None:
    dest.require(PARTIAL)
    good = [dest.event(i) for i in range(N)]
    broken = [dest.broken_event(N + i) for i in range(N // 4)]
    mixed = [e for pair in zip(good, broken, strict=False) for e in pair] + good[len(broken) :]
    async with running(dest) as h:
        await dest.break_part()
        try:
            receipt = await h.put(mixed)
            await eventually(lambda: len(h.sends), lambda n: n >= 3, within=60, what="two retries")
            assert not receipt.settled
            await arrives(dest, Counter(ids(good)), "the healthy part at once, the broken part not")
        finally:
            await dest.heal_part()
        await h.finish(within=60)
    assert h.released == [Status.DELIVERED]
    assert ids(h.sends[0]) == ids(mixed)
    for retried in h.sends[1:]:
        assert sorted(ids(retried)) == sorted(ids(broken)), "a retry carried more than the failed items"
    await arrives(dest, Counter(ids(good) + ids(broken)), "everything exactly once")
    assert dest.retries(h) >= len(broken)  # counted per retried item the first time


async def test_close_drains_a_send_in_flight(dest: Destination) -> None:
    events = [dest.event(i) for i in range(N)]
    async with running(dest) as h:
        h.recorder.hold()
        receipts = await put_all(h, events)
        await asyncio.wait_for(h.recorder.entered.wait(), 10)
        assert h.driver.in_flight >= 1 and h.recorder.in_send >= 1
        await h.queue.close()  # end of stream while the first send is still in flight
        h.recorder.release()
        assert h.task is not None
        await asyncio.wait_for(h.task, 60)
        await h.sink.aclose()  # the sink flushes what it holds (producer buffers, pending alerts)
        assert h.released == [Status.DELIVERED] * len(receipts)
    await arrives(dest, Counter(ids(events)), "every event, once")


async def test_standard_metrics_move(dest: Destination) -> None:
    good = [dest.event(i) for i in range(N)]
    bad = [] if REJECTION in dest.not_applicable else dest.rejected()
    async with running(dest) as h:
        if DOWN not in dest.not_applicable:
            await dest.cut()
            try:
                await h.put(good[:BATCH])
                await eventually(lambda: dest.retries(h), lambda n: n >= 1, what="a retry")
            finally:
                await dest.restore()
            first = set(ids(good[:BATCH]))
            await eventually(dest.arrived, lambda got: set(got) == first, what="the first batch, once back")
        else:
            await h.put(good[:BATCH])
        await put_all(h, good[BATCH:] + [event for event, _ in bad])
        await h.finish(within=60)
    labels = {"component": SINK, "kind": "sink", "type": dest.type}
    assert h.metric("pipeline_events_in_total", **labels) == len(good) + len(bad)
    assert h.metric("pipeline_events_out_total", **labels) == len(good)
    assert h.metric("pipeline_events_dead_lettered_total", **labels) == len(bad)
    assert h.metric("pipeline_sink_send_seconds_count", component=SINK) >= len(good) / BATCH
    assert h.metric("pipeline_sink_send_seconds_sum", component=SINK) > 0
    assert h.metric("pipeline_batch_events_sum", component=SINK) == len(good) + len(bad)
    assert dest.retries(h) >= 1
    await arrives(dest, Counter(ids(good)), "the good events")
