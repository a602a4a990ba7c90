"""The services started by scripts/services are the real thing, and their bookkeeping holds.

Each test talks to a service with an independent client (kcat, plain HTTP, clickhouse-
connect on chDB). `down` itself is exercised on decoy processes under a private services
home, so the shared services keep running for the rest of the session.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .conftest import SERVICES_SCRIPT, TopicFactory, http_request, logsql, services_cmd


def load_services_module() -> ModuleType:
    """Import scripts/services (a script without .py) to reuse its pid-file helpers."""
    loader = importlib.machinery.SourceFileLoader("pipeline_services_script", str(SERVICES_SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = module  # dataclasses look their module up here
    loader.exec_module(module)
    return module


# --------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------


def test_kafka_produce_and_consume_with_kcat(kafka_bootstrap: str, kafka_topic: TopicFactory) -> None:
    topic = kafka_topic(partitions=1)
    payload = json.dumps({"message": "hello from the smoke test", "id": uuid.uuid4().hex})

    produce = subprocess.run(
        ["kcat", "-P", "-b", kafka_bootstrap, "-t", topic, "-K", "\t", "-p", "0"],
        input=f"key-1\t{payload}\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert produce.returncode == 0, produce.stderr

    consume = subprocess.run(
        ["kcat", "-C", "-b", kafka_bootstrap, "-t", topic, "-o", "beginning", "-c", "1", "-e", "-J"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert consume.returncode == 0, consume.stderr
    record = json.loads(consume.stdout.splitlines()[0])
    assert record["topic"] == topic
    assert record["partition"] == 0
    assert record["offset"] == 0
    assert record["key"] == "key-1"
    assert record["payload"] == payload


async def test_kafka_roundtrip_with_aiokafka(kafka_bootstrap: str, kafka_topic: TopicFactory) -> None:
    # The project's own client against this broker, from an async test (the factory is
    # synchronous and usable here too): keyed produce to 3 partitions, group consume.
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = kafka_topic("events", partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(9):
            await producer.send_and_wait(topic, f"event {i}".encode(), key=f"stream-{i % 3}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received: list[tuple[bytes, bytes, int]] = []
        deadline = time.monotonic() + 30
        while len(received) < 9 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            received += [(m.key, m.value, m.partition) for msgs in batches.values() for m in msgs]
        await consumer.commit()
    finally:
        await consumer.stop()
    assert sorted(value for _, value, _ in received) == [f"event {i}".encode() for i in range(9)]
    # One key always lands on one partition: per-stream order is kept.
    partitions_of_key: dict[bytes, set[int]] = {}
    for key, _, partition in received:
        partitions_of_key.setdefault(key, set()).add(partition)
    assert len(partitions_of_key) == 3
    assert all(len(parts) == 1 for parts in partitions_of_key.values()), partitions_of_key


def test_kafka_auto_create_is_off(kafka_bootstrap: str, unique_name: str) -> None:
    # Production creates its topics explicitly; a typo must not silently create one here.
    proc = subprocess.run(
        ["kcat", "-L", "-J", "-b", kafka_bootstrap, "-t", f"{unique_name}-never-created", "-m", "5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    topics = json.loads(proc.stdout)["topics"]
    assert topics and topics[0]["topic"] == f"{unique_name}-never-created"
    assert topics[0].get("error"), topics  # Broker: Unknown topic or partition


# --------------------------------------------------------------------------------------
# Elasticsearch
# --------------------------------------------------------------------------------------


def test_elasticsearch_index_and_search(es_url: str, es_index: str) -> None:
    status, body = http_request(
        "PUT",
        f"{es_url}/{es_index}",
        {"mappings": {"properties": {"message": {"type": "text"}, "@timestamp": {"type": "date"}}}},
    )
    assert status == 200, body
    doc = {"@timestamp": "2024-05-01T12:00:00.000Z", "message": "smoke test document", "log_type": "application"}
    status, body = http_request("POST", f"{es_url}/{es_index}/_doc?refresh=true", doc)
    assert status == 201, body
    doc_id = body["_id"]

    status, body = http_request("POST", f"{es_url}/{es_index}/_search", {"query": {"match": {"message": "smoke"}}})
    assert status == 200, body
    hits = body["hits"]["hits"]
    assert [hit["_id"] for hit in hits] == [doc_id]
    assert hits[0]["_source"] == doc


def test_elasticsearch_python_client(es_url: str, es_index: str) -> None:
    # The project's client (elasticsearch 9.x) against this server: bulk, then count.
    from elasticsearch import Elasticsearch

    with Elasticsearch(es_url, request_timeout=30) as client:
        operations: list[dict[str, Any]] = []
        for i in range(3):
            operations += [{"create": {"_index": es_index}}, {"message": f"event {i}"}]
        result = client.bulk(operations=operations, refresh=True)
        assert not result["errors"], result
        assert client.count(index=es_index)["count"] == 3


# --------------------------------------------------------------------------------------
# Alertmanager
# --------------------------------------------------------------------------------------


def test_alertmanager_accepts_and_lists_alerts(alertmanager_url: str, unique_name: str) -> None:
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": "PipelineSmokeTest", "test_id": unique_name, "severity": "info"},
        "annotations": {"summary": "posted by test_services_smoke"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
    }
    status, body = http_request("POST", f"{alertmanager_url}/api/v2/alerts", [alert])
    assert status == 200, body

    # Alerts are visible right after the POST (grouping only delays notifications).
    deadline = time.monotonic() + 10
    while True:
        status, alerts = http_request("GET", f"{alertmanager_url}/api/v2/alerts?filter=test_id%3D%22{unique_name}%22")
        assert status == 200, alerts
        if alerts or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(alerts) == 1, alerts
    assert alerts[0]["labels"] == alert["labels"]
    assert alerts[0]["annotations"] == alert["annotations"]
    assert alerts[0]["status"]["state"] == "active"


# --------------------------------------------------------------------------------------
# VictoriaLogs (Loki's push API)
# --------------------------------------------------------------------------------------


def test_victorialogs_takes_a_loki_push_and_answers_logsql(victorialogs_url: str, unique_name: str) -> None:
    now_ns = time.time_ns()
    push = {"streams": [{"stream": {"job": unique_name, "level": "error"},
                         "values": [[str(now_ns), "boom"], [str(now_ns + 1), "bang", {"trace_id": "t-1"}]]}]}
    status, body = http_request("POST", f"{victorialogs_url}/insert/loki/api/v1/push", push)
    assert status == 204, body
    rows = logsql(victorialogs_url, f'job:"{unique_name}"')
    assert sorted((r["_msg"], r["level"], r.get("trace_id")) for r in rows) == [
        ("bang", "error", "t-1"), ("boom", "error", None)]
    assert {r["_stream"] for r in rows} == {f'{{job="{unique_name}",level="error"}}'}


# --------------------------------------------------------------------------------------
# ClickHouse (chDB, in process)
# --------------------------------------------------------------------------------------


def test_chdb_insert_and_select(chdb_client: Any, unique_name: str) -> None:
    table = unique_name
    chdb_client.command(
        f"CREATE TABLE {table} (ts DateTime64(3, 'UTC'), log_type LowCardinality(String), message String) "
        "ENGINE = MergeTree ORDER BY ts"
    )
    rows = [
        [datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC), "access", "GET /"],
        [datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC), "error", "boom"],
    ]
    chdb_client.insert(table, rows, column_names=["ts", "log_type", "message"])
    result = chdb_client.query(f"SELECT log_type, message FROM {table} ORDER BY ts")
    assert result.result_rows == [("access", "GET /"), ("error", "boom")]
    assert chdb_client.query(f"SELECT count() FROM {table} WHERE log_type = 'error'").result_rows == [(1,)]


# --------------------------------------------------------------------------------------
# scripts/services bookkeeping
# --------------------------------------------------------------------------------------


def test_status_reports_every_service_up_with_its_pid(
    kafka_bootstrap: str, es_url: str, alertmanager_url: str, victorialogs_url: str
) -> None:
    proc = services_cmd("status", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {line.split()[0]: line.split() for line in proc.stdout.splitlines()}
    expected = {"kafka": kafka_bootstrap, "elasticsearch": es_url, "alertmanager": alertmanager_url,
                "victorialogs": victorialogs_url}
    services = load_services_module()
    home = services.services_home()
    for name, address in expected.items():
        words = lines[name]
        assert words[1:3] == ["up", address], words
        pid = int(words[4])
        record = services.read_pid_file(home / name / f"{name}.pid")
        assert record is not None and record.pid == pid and record.alive()
        # The recorded pid leads its own process group (started with a new session), and
        # the listening process is in that group: so `down` reaches it with killpg.
        assert os.getpgid(pid) == pid
        port = int(address.rsplit(":", 1)[1])
        listeners = services.listening_pids(port)
        assert listeners, f"nobody listens on {port}"
        assert {os.getpgid(p) for p in listeners} == {pid}


def _spawn_decoy_group(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.parametrize("ignores_sigterm", [False, True], ids=["sigterm", "sigkill"])
def test_down_stops_the_whole_recorded_process_group(tmp_path: Path, ignores_sigterm: bool) -> None:
    """`down` on a private services home whose pid file points at a decoy process group
    (a shell and its background child). The real services are untouched: `down` only
    acts on the pid files of the home it is given."""
    # The shell and its background sleep are two members of one group; with the trap both
    # ignore SIGTERM (an ignored signal stays ignored across fork and exec).
    trap = "trap '' TERM; " if ignores_sigterm else ""
    decoy = _spawn_decoy_group(["sh", "-c", f"{trap}sleep 300 & wait"])
    try:
        deadline = time.monotonic() + 5
        while len(members := _group(decoy.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(members) >= 2, members

        services = load_services_module()
        home = tmp_path / "home"
        pid_file = home / "alertmanager" / "alertmanager.pid"
        pid_file.parent.mkdir(parents=True)
        services.write_pid_file(pid_file, decoy.pid, ["decoy"])

        env = dict(os.environ, PIPELINE_SERVICES_HOME=str(home))
        proc = subprocess.run(
            [sys.executable, str(SERVICES_SCRIPT), "down", "alertmanager", "--stop-timeout", "2"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.strip() == "alertmanager down"
        decoy.wait(timeout=10)
        assert not [pid for pid in members if _alive(pid)], "a member of the group survived `down`"
        assert not pid_file.exists()
        if ignores_sigterm:
            assert "SIGKILL" in proc.stderr

        # Once stopped, status says so and exits non-zero.
        status = subprocess.run(
            [sys.executable, str(SERVICES_SCRIPT), "status", "alertmanager"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        # The shared Alertmanager still answers on 9093, but not as this home's process.
        assert status.returncode == 3
        assert status.stdout.startswith("alertmanager down")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(decoy.pid, signal.SIGKILL)
        decoy.wait(timeout=10)


DECOY_COUNTING_SIGTERMS = """
import signal, sys, time
path = sys.argv[1]
def on_term(*_):
    with open(path, "a") as fh:
        fh.write("TERM\\n")
signal.signal(signal.SIGTERM, on_term)
open(path + ".ready", "w").close()
while not open(path).read():
    time.sleep(0.01)
time.sleep(1.0)  # a graceful shutdown that takes a while: a second SIGTERM would land here
"""


def test_down_signals_each_process_once(tmp_path: Path) -> None:
    """A server that takes a second SIGTERM as "quit now, skip the flush" (VictoriaLogs does)
    must get only one from `down`."""
    terms = tmp_path / "terms"
    terms.write_text("")
    decoy = _spawn_decoy_group([sys.executable, "-c", DECOY_COUNTING_SIGTERMS, str(terms)])
    try:
        deadline = time.monotonic() + 10
        while not Path(f"{terms}.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        services = load_services_module()
        home = tmp_path / "home"
        pid_file = home / "victorialogs" / "victorialogs.pid"
        pid_file.parent.mkdir(parents=True)
        services.write_pid_file(pid_file, decoy.pid, ["decoy"])
        env = dict(os.environ, PIPELINE_SERVICES_HOME=str(home))
        proc = subprocess.run([sys.executable, str(SERVICES_SCRIPT), "down", "victorialogs"],
                              capture_output=True, text=True, timeout=60, env=env, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert decoy.wait(timeout=10) == 0
        assert terms.read_text() == "TERM\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(decoy.pid, signal.SIGKILL)
        decoy.wait(timeout=10)


def _group(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members
