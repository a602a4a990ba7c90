"""The elasticsearch sink against the real Elasticsearch from scripts/services, run by the real driver.

Each test writes to indices named after `es_index` (`t-xxxxxxxx-...`) with its own index
template, so the fixture's cleanup removes everything it created.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from prometheus_client import generate_latest

from parsers.dates import rfc3339_ms
from pipeline.acks import Receipt, Status
from pipeline.dlq import DeadLetterQueue
from pipeline.driver import SinkDriver
from pipeline.errors import StartError, TransientError
from pipeline.event import Batch
from pipeline.metrics import Metrics
from pipeline.queues import BatchQueue
from sinks.elasticsearch import ElasticsearchSink, ElasticsearchSinkConfig

DAY = 86400.0


def access_events(n: int, *, start: float, days: int = 3, prefix: str = "e") -> list[dict[str, Any]]:
    """n access events spread evenly over `days` UTC days starting at `start` (midnight)."""
    out = []
    for i in range(n):
        ts = start + (i % days) * DAY + (i // days) % 80000
        out.append({
            "@timestamp": rfc3339_ms(ts), "event_id": f"{prefix}{i}", "log_type": "access", "host": "web-1",
            "message": f'10.1.{i % 250}.{i % 200} - - "GET /item/{i} HTTP/1.1" 200 {i}',
            "client_ip": f"10.1.{i % 250}.{i % 200}", "method": "GET", "path": f"/item/{i}", "status": 200,
            "bytes": i, "request_time": 0.005, "upstream_response_time": 0.004,
            "geoip": {"country_iso_code": "SE", "location": {"lat": 59.3, "lon": 18.1}},
        })
    return out


def midnight(days_ago: int) -> float:
    now = time.time()
    return now - now % DAY - days_ago * DAY


def day_of(ts: float) -> str:
    return time.strftime("%Y.%m.%d", time.gmtime(ts))


class Run:
    """A sink on the real cluster under the real driver."""

    def __init__(self, es_url: str, prefix: str, tmp_path: Path, **overrides: Any) -> None:
        raw = {"type": "elasticsearch", "inputs": ["src"], "hosts": [es_url],
               "index": f"{prefix}-{{log_type}}-%Y.%m.%d",
               "template": {"name": f"{prefix}-template", "index_patterns": [f"{prefix}-*"]},
               "batch": {"max_events": 5000, "timeout": "50ms"},
               "retry": {"initial_backoff": "50ms", "max_backoff": "1s"}, **overrides}
        self.config = ElasticsearchSinkConfig.model_validate(raw)
        self.metrics = Metrics()
        self.stats = self.metrics.component("es", "sink", "elasticsearch")
        self.sink = ElasticsearchSink("es", self.config, metrics=self.metrics, stats=self.stats)
        self.dlq = DeadLetterQueue(tmp_path / "dead_letter")
        self.queue = BatchQueue("es", 16)
        self.driver = SinkDriver(self.sink, self.config, self.queue, self.stats, self.metrics, self.dlq)
        self.released: list[Status] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.sink.start()
        self.task = asyncio.create_task(self.driver.run())

    async def put(self, events: list[dict[str, Any]], batch_size: int = 1000) -> list[Receipt]:
        receipts = []
        for i in range(0, len(events), batch_size):
            receipt = Receipt(self.released.append)
            await self.queue.put(Batch(events[i:i + batch_size], receipt))
            receipts.append(receipt)
        return receipts

    async def finish(self) -> None:
        await self.queue.close()
        assert self.task is not None
        await asyncio.wait_for(self.task, 240)
        await self.sink.aclose()

    async def abort(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.sink.aclose()

    def items(self) -> dict[str, float]:
        out = {}
        for line in generate_latest(self.metrics.registry).decode().splitlines():
            if line.startswith("pipeline_elasticsearch_items_total{"):
                result = line.split('result="')[1].split('"')[0]
                out[result] = float(line.rsplit(" ", 1)[1])
        return out


@pytest.fixture
async def es(es_url: str) -> Any:
    client = AsyncElasticsearch(es_url)
    yield client
    await client.close()


async def cluster_has_match_only_text(es: AsyncElasticsearch, prefix: str) -> bool:
    probe = f"{prefix}-probe"
    response = await es.options(ignore_status=400).indices.create(
        index=probe, mappings={"properties": {"m": {"type": "match_only_text"}}})
    await es.options(ignore_status=404).indices.delete(index=probe)
    return response.meta.status == 200


async def counts_by_index(es: AsyncElasticsearch, pattern: str) -> dict[str, int]:
    await es.indices.refresh(index=pattern)
    rows: Any = (await es.cat.indices(index=pattern, format="json", h="index,docs.count")).body
    return {row["index"]: int(row["docs.count"]) for row in rows}


class TestElasticsearch:
    async def test_50k_events_land_once_in_daily_indices_with_typed_mappings(
            self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path) -> None:
        start = midnight(2)
        events = access_events(50_000, start=start)
        run = Run(es_url, es_index, tmp_path)
        try:
            await run.start()
            await run.put(events)
            await run.finish()
        finally:
            await run.abort()
        assert run.released == [Status.DELIVERED] * 50
        expected = {f"{es_index}-access-{day_of(start + d * DAY)}": 50_000 // 3 + (1 if d < 50_000 % 3 else 0)
                    for d in range(3)}
        assert await counts_by_index(es, f"{es_index}-*") == expected

        mapping = (await es.indices.get_mapping(index=f"{es_index}-*")).body
        for index, body in mapping.items():
            props = body["mappings"]["properties"]
            assert props["@timestamp"]["type"] == "date", index
            assert props["client_ip"]["type"] == "ip"
            assert props["status"]["type"] == "short"
            assert props["bytes"]["type"] == "long"
            assert props["request_time"]["type"] == "float"
            assert props["message"]["type"] == "text"
            assert props["method"] == {"type": "keyword", "ignore_above": 1024}
            assert props["geoip"]["properties"]["location"]["type"] == "geo_point"

        # The same 50k again (a replay after a crash): every create conflicts, nothing is added.
        replay = Run(es_url, es_index, tmp_path)
        try:
            await replay.start()
            await replay.put(events)
            await replay.finish()
        finally:
            await replay.abort()
        assert replay.released == [Status.DELIVERED] * 50
        assert await counts_by_index(es, f"{es_index}-*") == expected
        assert replay.items() == {"duplicate": 50_000.0}
        assert replay.dlq.read_all() == []

    async def test_mapping_conflicts_are_dead_lettered_and_the_rest_lands(
            self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path) -> None:
        events = access_events(1000, start=midnight(0), days=1)
        bad_ids = {f"e{i}" for i in range(0, 1000, 100)}
        events = [{**e, "status": "abc"} if e["event_id"] in bad_ids else e for e in events]
        run = Run(es_url, es_index, tmp_path)
        try:
            await run.start()
            receipts = await run.put(events, batch_size=1000)
            await run.finish()
        finally:
            await run.abort()
        assert all(r.settled for r in receipts)
        assert run.released == [Status.REJECTED]  # settled: the bad events are in the DLQ
        assert sum((await counts_by_index(es, f"{es_index}-*")).values()) == 990
        dead = run.dlq.read_all()  # the DLQ file, as an operator reads it
        assert {d["event"]["event_id"] for d in dead} == bad_ids
        for record in dead:
            assert record["component"] == "es"
            assert record["reason"].startswith("document_parsing_exception: ")
            assert "[status]" in record["reason"]
            assert record["event"]["status"] == "abc"
        assert run.stats.dead_lettered == 10 and run.stats.events_out == 990

    async def test_real_429_items_are_retried_alone_until_the_block_lifts(
            self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path) -> None:
        # An index with the flood-stage block answers every write with a per-item 429
        # (cluster_block_exception, TOO_MANY_REQUESTS/12): the honest way to make a real server
        # push back on some items of a bulk while accepting the others.
        blocked = f"{es_index}-error-blocked"
        await es.indices.create(index=blocked)
        await es.indices.put_settings(index=blocked, settings={"index.blocks.read_only_allow_delete": True})
        access = access_events(300, start=midnight(0), days=1, prefix="a")
        errors = [{**e, "log_type": "error", "event_id": f"x{i}"} for i, e in enumerate(access_events(
            20, start=midnight(0), days=1))]
        mixed = [e for pair in zip(access[:20], errors, strict=True) for e in pair] + access[20:]
        run = Run(es_url, es_index, tmp_path, index=f"{es_index}-{{log_type}}-blocked")
        try:
            await run.start()
            receipts = await run.put(mixed, batch_size=len(mixed))
            deadline = time.monotonic() + 60
            while run.stats.retries.get("cluster_block_exception", 0) < 40:  # two rounds of 20 items
                assert time.monotonic() < deadline, f"no item retries seen: {run.stats.retries}"
                await asyncio.sleep(0.1)
            assert not receipts[0].settled  # held while 20 of its events are refused
            counts = await counts_by_index(es, f"{es_index}-*")
            assert counts == {f"{es_index}-access-blocked": 300, blocked: 0}
            await es.indices.put_settings(index=blocked, settings={"index.blocks.read_only_allow_delete": None})
            await run.finish()
        finally:
            await es.indices.put_settings(index=blocked, settings={"index.blocks.read_only_allow_delete": None})
            await run.abort()
        assert run.released == [Status.DELIVERED]
        assert await counts_by_index(es, f"{es_index}-*") == {f"{es_index}-access-blocked": 300, blocked: 20}
        items = run.items()
        assert items["created"] == 320 and items["retry"] >= 40
        assert run.dlq.read_all() == []

    async def test_template_install_is_idempotent_and_health_is_green_or_yellow(
            self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path) -> None:
        run = Run(es_url, es_index, tmp_path)
        try:
            await run.sink.healthcheck()
            await run.sink.start()
            first = (await es.indices.get_index_template(name=f"{es_index}-template")).body
            await run.sink.start()
            second = (await es.indices.get_index_template(name=f"{es_index}-template")).body
        finally:
            await run.abort()
        assert first == second
        template = first["index_templates"][0]["index_template"]
        assert template["index_patterns"] == [f"{es_index}-*"]
        assert template["_meta"]["managed_by"] == "pipeline"

    async def test_long_stack_traces_are_searchable(
            self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path) -> None:
        # A trace of ~6 KB: as a keyword with ignore_above 1024 it would be stored but not indexed.
        frames = "\n".join(f"  File \"/app/mod{i}.py\", line {i}, in handler_{i}" for i in range(150))
        trace = f"Traceback (most recent call last):\n{frames}\nKeyError: 'zebra_frame_marker'"
        event = {"@timestamp": rfc3339_ms(time.time()), "event_id": "a1", "log_type": "application",
                 "message": "job failed " + "x" * 2000 + " needle_in_message",
                 "error": {"type": "KeyError", "message": "'zebra_frame_marker'", "stack_trace": trace}}
        assert len(trace) > 5000
        run = Run(es_url, es_index, tmp_path)
        try:
            await run.start()
            await run.put([event])
            await run.finish()
        finally:
            await run.abort()
        assert run.released == [Status.DELIVERED]
        await es.indices.refresh(index=f"{es_index}-*")
        for field, text in (("error.stack_trace", "handler_149"), ("error.stack_trace", "zebra_frame_marker"),
                            ("error.message", "zebra_frame_marker"), ("message", "needle_in_message")):
            found = (await es.count(index=f"{es_index}-*", query={"match": {field: text}})).body["count"]
            assert (field, found) == (field, 1)
        phrase = {"match_phrase": {"error.stack_trace": "in handler_77"}}
        assert (await es.count(index=f"{es_index}-*", query=phrase)).body["count"] == 1
        assert (await es.count(index=f"{es_index}-*", query={"term": {"error.type": "KeyError"}})).body["count"] == 1
        mapping = (await es.indices.get_mapping(index=f"{es_index}-*")).body
        props = next(iter(mapping.values()))["mappings"]["properties"]
        # This cluster (the integration-test distribution) has no mapper-extras module: auto fell back.
        has_match_only_text = await cluster_has_match_only_text(es, es_index)
        expected = "match_only_text" if has_match_only_text else "text"
        assert props["error"]["properties"]["stack_trace"]["type"] == expected
        assert props["message"]["type"] == expected

    async def test_a_document_over_max_document_bytes_lands_cut_and_tagged(
            self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path) -> None:
        long_message = "".join(f"{i:07d} " for i in range(25_000))  # 200 kB
        events = [{"@timestamp": rfc3339_ms(time.time()), "event_id": f"d{i}", "log_type": "application",
                   "message": long_message if i == 1 else f"short {i}"} for i in range(3)]
        run = Run(es_url, es_index, tmp_path, max_document_bytes="64KiB")
        try:
            await run.start()
            await run.put(events)
            await run.finish()
        finally:
            await run.abort()
        assert run.released == [Status.DELIVERED] and run.dlq.read_all() == []
        await es.indices.refresh(index=f"{es_index}-*")
        doc = (await es.search(index=f"{es_index}-*", query={"term": {"event_id": "d1"}})).body["hits"]["hits"][0]
        source = doc["_source"]
        assert source["tags"] == ["_truncated"] and long_message.startswith(source["message"])
        assert 60_000 < len(source["message"]) < 64 * 1024

    async def test_match_only_text_asked_for_on_a_cluster_without_it_is_a_start_error(
            self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path) -> None:
        if await cluster_has_match_only_text(es, es_index):
            pytest.skip("this cluster has match_only_text")
        run = Run(es_url, es_index, tmp_path, template={"name": f"{es_index}-template",
                                                        "index_patterns": [f"{es_index}-*"],
                                                        "text_type": "match_only_text"})
        try:
            with pytest.raises(StartError, match=r"no match_only_text type: set template\.text_type"):
                await run.sink.start()
        finally:
            await run.abort()

    async def test_healthcheck_reports_an_unreachable_cluster(self, es_index: str, tmp_path: Path) -> None:
        run = Run("http://127.0.0.1:9", es_index, tmp_path)  # port 9 (discard): nothing listens
        try:
            with pytest.raises(TransientError, match=re.escape("unreachable at http://127.0.0.1:9")):
                await run.sink.healthcheck()
        finally:
            await run.abort()

