"""The agent keeps producing through a broker restart and loses nothing.

The agent runs in-process (a paced generating source stands in for the file sources)
while `scripts/services down kafka` / `up kafka` restarts the real broker under it.
Afterwards kcat reads the topic back: every event must be there (duplicates are
allowed by at-least-once, and counted).

This test stops the shared broker on purpose; it brings it back up even on failure.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipeline.acks import Receipt
from pipeline.config import SourceConfig, load_config
from pipeline.daemon import Daemon
from pipeline.event import Batch
from pipeline.registry import register

pytestmark = pytest.mark.reliability

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"
BOOTSTRAP = "127.0.0.1:9092"


def services(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(SERVICES), *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, f"scripts/services {' '.join(args)}: {proc.stdout}\n{proc.stderr}"
    return proc


RELEASED: list[int] = []


class PacedSourceConfig(SourceConfig):
    type: Literal["test_kafka_paced"]
    events: int = 1000
    batch: int = 200
    interval: float = 0.05


class PacedSource:
    """`events` events in batches of `batch`, one batch per `interval` (blocked by backpressure)."""

    can_acknowledge = True

    def __init__(self, name: str, config: PacedSourceConfig) -> None:
        self.name = name
        self.config = config

    async def run(self, ctx: Any) -> None:
        cfg = self.config
        for start in range(0, cfg.events, cfg.batch):
            events = [{"host": "node-1", "event_id": f"ev-{n:06d}", "log_type": "application",
                       "source": {"path": f"/var/log/s{n % 4}.log"}, "message": f"event {n}"}
                      for n in range(start, min(start + cfg.batch, cfg.events))]
            count = len(events)
            await ctx.emit(Batch(events, Receipt(lambda status, c=count: RELEASED.append(c))))
            await asyncio.sleep(cfg.interval)

    async def aclose(self) -> None:
        return None


@register("source", "test_kafka_paced", PacedSourceConfig)
def _build(name: str, config: PacedSourceConfig, ctx: Any) -> PacedSource:
    return PacedSource(name, config)


async def _admin(action: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=15000)
    await admin.start()
    try:
        if action == "create":
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        else:
            await admin.delete_topics([topic])
    finally:
        await admin.close()


def _in_thread(action: str, topic: str) -> None:
    # Its own loop in a helper thread: usable whether or not a loop runs on this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(_admin(action, topic))).result()


@pytest.fixture
def topic() -> Iterator[str]:
    services("up", "kafka")
    name = f"t-{uuid.uuid4().hex[:8]}-restart"
    _in_thread("create", name)
    yield name
    services("up", "kafka")
    _in_thread("delete", name)


async def test_broker_restart_mid_stream_loses_nothing(topic: str, tmp_path: Path, write_config: Any) -> None:
    n = 30_000
    RELEASED.clear()
    cfg = load_config(write_config(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
shutdown_timeout: 120
sources:
  gen: {{type: test_kafka_paced, events: {n}, batch: 250, interval: 0.025}}
sinks:
  kafka:
    type: kafka
    inputs: [gen]
    bootstrap_servers: "{BOOTSTRAP}"
    topic: "{topic}"
    topics_to_create: ["{topic}"]
    request_timeout: 10s
    batch: {{max_events: 1000, timeout: 100ms}}
    retry: {{initial_backoff: 200ms, max_backoff: 2s}}
"""))
    daemon = Daemon(cfg, once=True)
    run = asyncio.create_task(daemon.run())
    restarted_at = 0
    try:
        async with asyncio.timeout(60):
            while sum(RELEASED) < n // 4:  # noqa: ASYNC110 - receipts settle in the runtime: poll
                await asyncio.sleep(0.05)
        restarted_at = sum(RELEASED)
        await asyncio.to_thread(services, "down", "kafka")
        await asyncio.sleep(2)
        stalled = sum(RELEASED)
        await asyncio.sleep(1)
        assert sum(RELEASED) == stalled, "nothing can be acknowledged while the broker is down"
        await asyncio.to_thread(services, "up", "kafka")
        await asyncio.wait_for(asyncio.shield(run), 120)
    finally:
        if not run.done():
            daemon.request_stop()
            await asyncio.wait_for(run, 130)
    assert 0 < restarted_at < n
    assert sum(RELEASED) == n

    proc = await asyncio.to_thread(
        subprocess.run, ["kcat", "-C", "-b", BOOTSTRAP, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    seen = Counter(json.loads(line)["event_id"] for line in proc.stdout.splitlines() if line)
    missing = {f"ev-{i:06d}" for i in range(n)} - set(seen)
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    duplicates = sum(c - 1 for c in seen.values())
    # At-least-once: a resent batch may duplicate, bounded by what was in flight at the restart.
    assert duplicates <= 5_000, duplicates
    print(f"broker restart after {restarted_at} events: {duplicates} duplicates, "
          f"{time.strftime('%H:%M:%S')}")
