"""The processor (kafka source -> file sink) as real subprocesses: SIGKILL and restart, and a rebalance.

- SIGKILL mid-stream, restart: every record arrives at least once, and only records
  at or after the group's committed offset at the kill may arrive twice.
- Two processors in one group share a 4-partition topic while records keep coming;
  one is stopped (SIGTERM) and its partitions move to the other with nothing lost.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.reliability

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"
BOOTSTRAP = "127.0.0.1:9092"
PARTITIONS = 4


def _run(coro_factory: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


async def _admin(action: str, topic: str, group: str = "") -> Any:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=15000)
    await admin.start()
    try:
        if action == "create":
            return await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
        if action == "delete":
            return await admin.delete_topics([topic])
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: om.offset for tp, om in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()


@pytest.fixture
def topic() -> Iterator[str]:
    proc = subprocess.run([sys.executable, str(SERVICES), "up", "kafka"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    name = f"t-{uuid.uuid4().hex[:8]}-proc"
    _run(lambda: _admin("create", name))
    yield name
    _run(lambda: _admin("delete", name))


async def produce(topic: str, start: int, count: int, rate: float | None = None) -> None:
    """Events ev-<n> for n in [start, start+count), round robin over the partitions; paced if `rate`."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, linger_ms=5)
    await producer.start()
    try:
        chunk = 200
        t0 = time.monotonic()
        for base in range(start, start + count, chunk):
            futures = [await producer.send(topic, json.dumps({"event_id": f"ev-{n:06d}", "message": f"m {n}"})
                                           .encode(), partition=n % PARTITIONS)
                       for n in range(base, min(base + chunk, start + count))]
            await asyncio.gather(*futures)
            if rate:
                ahead = (base + chunk - start) / rate - (time.monotonic() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    finally:
        await producer.stop()


def write_config(tmp_path: Path, name: str, topic: str, group: str) -> tuple[Path, Path]:
    out = tmp_path / f"{name}.jsonl"
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
data_dir: {tmp_path}/{name}-data
api: {{enabled: false}}
shutdown_timeout: 20
queue_capacity: 4
sources:
  kafka:
    type: kafka
    bootstrap_servers: "{BOOTSTRAP}"
    topics: ["{topic}"]
    group_id: "{group}"
    max_batch_records: 500
    commit_interval: 1s
    session_timeout: 6s
    heartbeat_interval: 1s
sinks:
  out:
    type: file
    inputs: [kafka]
    path: "{out}"
    batch: {{max_events: 500, timeout: 50ms}}
""")
    return path, out


class Processor:
    def __init__(self, config: Path, log: Path, *, once: bool = False) -> None:
        self.log = log.open("ab")
        argv = [sys.executable, "-m", "pipeline", "--log-format", "text", "run", "--config", str(config)]
        self.proc = subprocess.Popen([*argv, "--once"] if once else argv, stdout=self.log, stderr=self.log)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self.log.close()
        return code

    def kill_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.stop(signal.SIGKILL, 10)


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(raw))
    return out


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def cut_partial_line(path: Path) -> None:
    """A SIGKILL may land inside the file sink's write: drop a torn last line (the record is
    not lost: its offset was not committed, so the restarted processor reads it again)."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with path.open("r+b") as fh:
            fh.truncate(end)


async def wait_for(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_sigkill_mid_stream_then_restart_delivers_everything(topic: str, tmp_path: Path) -> None:
    n = 150_000
    head = 20_000
    group = f"{topic}-group"
    await produce(topic, 0, head)
    config, out = write_config(tmp_path, "p", topic, group)
    first = Processor(config, tmp_path / "p.log")
    # The rest arrives while the processor runs (about 13 s), so the kill always lands
    # mid-stream however fast the processor drains what is already there.
    producing = asyncio.create_task(produce(topic, head, n - head, rate=10_000))
    try:
        # Kill once some offsets are committed, so both sides of the commit are exercised.
        await wait_for(lambda: count_lines(out) >= 10_000, 60, "the processor to write 10k records")
        deadline = time.monotonic() + 30
        while sum((await asyncio.to_thread(_run, lambda: _admin("offsets", topic, group))).values()) == 0:
            assert time.monotonic() < deadline, "no commit within 30 s"
            await asyncio.sleep(0.1)
        first.stop(signal.SIGKILL)
    finally:
        first.kill_quietly()
        await producing
    cut_partial_line(out)
    before = lines(out)
    committed = await asyncio.to_thread(_run, lambda: _admin("offsets", topic, group))
    assert 0 < sum(committed.values()) <= len(before) < n, "the kill must land mid-stream, after a commit"

    second = Processor(config, tmp_path / "p.log", once=True)
    try:
        code = await asyncio.to_thread(second.proc.wait, 120)
    finally:
        second.kill_quietly()
    assert code == 0, (tmp_path / "p.log").read_text()[-3000:]

    events = lines(out)
    seen = Counter(e["event_id"] for e in events)
    missing = {f"ev-{i:06d}" for i in range(n)} - set(seen)
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:5]}"
    # Duplicates only among records the group had not committed at the kill.
    twice = [e["source"] for e in events if seen[e["event_id"]] > 1]
    assert all(src["offset"] >= committed.get(src["partition"], 0) for src in twice)
    duplicates = sum(c - 1 for c in seen.values())
    assert duplicates <= len(before) - sum(committed.values())
    print(f"killed after {len(before)} records (committed {sum(committed.values())}): {duplicates} duplicates")
    final = await asyncio.to_thread(_run, lambda: _admin("offsets", topic, group))
    assert sum(final.values()) == n


async def test_two_processors_share_partitions_and_a_stop_moves_them(topic: str, tmp_path: Path) -> None:
    group = f"{topic}-group"
    config_a, out_a = write_config(tmp_path, "a", topic, group)
    config_b, out_b = write_config(tmp_path, "b", topic, group)
    n_before, n_during = 4_000, 30_000
    await produce(topic, 0, n_before)
    a = Processor(config_a, tmp_path / "a.log")
    b = Processor(config_b, tmp_path / "b.log")
    producing = asyncio.create_task(produce(topic, n_before, n_during, rate=2_000))
    try:

        def partitions(path: Path) -> set[int]:
            return {e["source"]["partition"] for e in lines(path)}

        # Both members got a share (the round-robin assignor gives each 2 of the 4 partitions).
        await wait_for(lambda: bool(partitions(out_a)) and bool(partitions(out_b)), 60, "both processors to read")
        await asyncio.sleep(2)
        shared_a, shared_b = partitions(out_a), partitions(out_b)
        assert not producing.done(), "records must still be coming when a processor stops"
        assert a.stop(signal.SIGTERM) == 0
        b_at_stop = count_lines(out_b)
        await producing
        total = n_before + n_during
        expected = {f"ev-{i:06d}" for i in range(total)}
        await wait_for(lambda: {e["event_id"] for e in lines(out_a) + lines(out_b)} >= expected, 90,
                       "every record in the union of both outputs")
        assert b.stop(signal.SIGTERM) == 0
    finally:
        producing.cancel()
        a.kill_quietly()
        b.kill_quietly()
    after_stop = lines(out_b)[b_at_stop:]
    assert {e["source"]["partition"] for e in after_stop} == set(range(PARTITIONS)), "b took a's partitions"
    assert shared_a and shared_b
    seen = Counter(e["event_id"] for e in lines(out_a) + lines(out_b))
    duplicates = sum(c - 1 for c in seen.values())
    print(f"a read partitions {sorted(shared_a)}, b {sorted(shared_b)} before the stop; {duplicates} duplicates")
    final = await asyncio.to_thread(_run, lambda: _admin("offsets", topic, group))
    assert sum(final.values()) == n_before + n_during

