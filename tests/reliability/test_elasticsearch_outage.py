"""Elasticsearch goes away for 30 s mid-stream and comes back: no event is lost, none is doubled.

The real sink and the real driver feed a steady stream into the real Elasticsearch;
`scripts/services down elasticsearch` stops it for 30 s, `up` restarts it (always, in a
`finally`). While it is down, sends fail as a whole and are retried with backoff,
nothing is settled and nothing is dead-lettered; the bounded queue fills and the
producer is held (backpressure). Afterwards every event is there exactly once: `_id` is
the event id and writes are `create`, so a request that ES stored but did not answer
before going down is not stored twice when retried.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from parsers.dates import rfc3339_ms
from pipeline.acks import Receipt, Status
from pipeline.dlq import DeadLetterQueue
from pipeline.driver import SinkDriver
from pipeline.event import Batch
from pipeline.metrics import Metrics
from pipeline.queues import BatchQueue
from sinks.elasticsearch import ElasticsearchSink, ElasticsearchSinkConfig

pytestmark = pytest.mark.reliability

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"
ES_URL = "http://127.0.0.1:9200"
OUTAGE_S = 30.0


def services(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(SERVICES), *args], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, f"scripts/services {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def prefix() -> Iterator[str]:
    services("up", "elasticsearch")
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    services("up", "elasticsearch")  # whatever happened, leave it running for the next test
    for path in (f"/{name}*?expand_wildcards=all", f"/_index_template/{name}*"):
        subprocess.run(["curl", "-s", "-XDELETE", ES_URL + path], capture_output=True, check=False, timeout=60)


def events(start: int, n: int) -> list[dict[str, Any]]:
    now = time.time()
    return [{"@timestamp": rfc3339_ms(now), "event_id": f"ev-{i}", "log_type": "application", "level": "INFO",
             "host": "node-1", "message": f"event {i}"} for i in range(start, start + n)]


async def test_no_event_lost_across_a_30s_outage(prefix: str, tmp_path: Path) -> None:
    config = ElasticsearchSinkConfig.model_validate({
        "type": "elasticsearch", "inputs": ["src"], "hosts": [ES_URL],
        "index": f"{prefix}-{{log_type}}-%Y.%m.%d",
        "template": {"name": f"{prefix}-template", "index_patterns": [f"{prefix}-*"]},
        "batch": {"max_events": 500, "timeout": "50ms"},
        "retry": {"initial_backoff": "100ms", "max_backoff": "2s"},
        "request_timeout": "10s",
    })
    metrics = Metrics()
    stats = metrics.component("es", "sink", "elasticsearch")
    sink = ElasticsearchSink("es", config, metrics=metrics, stats=stats)
    dlq = DeadLetterQueue(tmp_path / "dead_letter")
    queue = BatchQueue("es", 8)
    driver = SinkDriver(sink, config, queue, stats, metrics, dlq)
    released: list[Status] = []
    receipts: list[Receipt] = []
    total = 0
    batch = 200

    async def produce(batches: int) -> None:
        nonlocal total
        for _ in range(batches):
            receipt = Receipt(released.append)
            receipts.append(receipt)
            await queue.put(Batch(events(total, batch), receipt))  # blocks while the queue is full
            total += batch
            await asyncio.sleep(0.02)

    await sink.start()
    task = asyncio.create_task(driver.run())
    try:
        await produce(50)
        await asyncio.to_thread(services, "down", "elasticsearch")
        # Keep producing into the outage: the queue fills and the producer is held.
        producer = asyncio.create_task(produce(100))
        await asyncio.sleep(OUTAGE_S)
        assert not producer.done(), "the producer was never held back"
        assert sum(not r.settled for r in receipts) > 0
        assert dlq.read_all() == []  # an outage is never a reason to dead-letter
        assert driver.last_error is not None and "Connection" in driver.last_error
        await asyncio.to_thread(services, "up", "elasticsearch")
        await asyncio.wait_for(producer, 180)
        await produce(50)
        await queue.close()
        await asyncio.wait_for(task, 180)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await sink.aclose()

    assert all(r.settled for r in receipts)
    assert released == [Status.DELIVERED] * len(receipts)
    assert dlq.read_all() == []
    assert stats.retries.get("error", 0) > 0
    async with AsyncElasticsearch(ES_URL) as es:
        await es.indices.refresh(index=f"{prefix}-*")
        count = (await es.count(index=f"{prefix}-*")).body["count"]
        ids = (await es.search(index=f"{prefix}-*", size=0, aggs={
            "ids": {"cardinality": {"field": "event_id", "precision_threshold": 40000}}})).body
    assert count == total  # none lost, none doubled
    assert ids["aggregations"]["ids"]["value"] >= total * 0.99  # (cardinality is approximate)
