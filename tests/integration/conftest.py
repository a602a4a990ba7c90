"""Fixtures for integration tests: real Kafka, Elasticsearch, Alertmanager, VictoriaLogs and chDB.

The servers are started (or found already running) by `scripts/services up`; a fixture
fails the test, never skips it, when its service cannot be brought up. Every test in
this folder is marked `integration`.

Per-test names come from `unique_name` ("t_" + 8 hex digits), so tests never share a
topic, an index or a table, and cleanup can delete by prefix.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

HERE = Path(__file__).resolve().parent
SERVICES_SCRIPT = HERE.parents[1] / "scripts" / "services"
# A cold start downloads Kafka and Elasticsearch first; stay under pytest's 600 s timeout.
SERVICES_UP_TIMEOUT_S = 570

T = TypeVar("T")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items: mark only the ones under this folder.
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


# --------------------------------------------------------------------------------------
# Services (session scope)
# --------------------------------------------------------------------------------------


def services_cmd(*args: str, timeout: float = SERVICES_UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run scripts/services with this interpreter (it needs only the standard library)."""
    return subprocess.run(
        [sys.executable, str(SERVICES_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ensure_service(name: str) -> str:
    """`scripts/services up NAME` (fast when it is up already); returns its address."""
    return ensure_service_info(name)[name]


def ensure_service_info(name: str) -> dict[str, str]:
    """`scripts/services up NAME`; its result lines as {key: value}: `{NAME: address, "kafka-tls-ca": path, ...}`."""
    try:
        proc = services_cmd("up", name)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"scripts/services up {name} took over {exc.timeout}s", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/services up {name} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    info: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key and value:
            info[key.removesuffix(":")] = value.strip()
    if info.get(name):
        return info
    pytest.fail(f"scripts/services up {name} printed no address:\n{proc.stdout}\n{proc.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap servers of the test Kafka broker: "127.0.0.1:9092"."""
    return ensure_service("kafka")


@pytest.fixture(scope="session")
def es_url() -> str:
    """Base URL of the test Elasticsearch: "http://127.0.0.1:9200"."""
    return ensure_service("elasticsearch")


@dataclass(frozen=True)
class TlsMaterial:
    """The throw-away test CA and certificates of `scripts/services` (its `<cache>/tls/` folder)."""

    ca: Path
    client_cert: Path
    client_key: Path
    user: str = "pipeline"
    password: str = "pipeline-secret"
    token: str = "pipeline-token"


@pytest.fixture(scope="session")
def kafka_tls() -> tuple[str, str, TlsMaterial]:
    """(SASL_SSL address, mTLS address, TLS material) of the test broker's secure listeners."""
    info = ensure_service_info("kafka")
    ca = Path(info["kafka-tls-ca"])
    material = TlsMaterial(ca, ca.parent / "client.pem", ca.parent / "client.key")
    return info["kafka-sasl-ssl"], info["kafka-mtls"], material


@pytest.fixture(scope="session")
def tlsproxy() -> tuple[str, TlsMaterial]:
    """(base URL, TLS material) of the nginx TLS proxy in front of Elasticsearch and Alertmanager
    (locations in scripts/services.d/tlsproxy-nginx.conf). Elasticsearch and Alertmanager are up too."""
    ensure_service("elasticsearch")
    ensure_service("alertmanager")
    info = ensure_service_info("tlsproxy")
    ca = Path(info["tlsproxy-ca"])
    return info["tlsproxy"], TlsMaterial(ca, ca.parent / "client.pem", ca.parent / "client.key")


@pytest.fixture(scope="session")
def alertmanager_url() -> str:
    """Base URL of the test Alertmanager: "http://127.0.0.1:9093"."""
    return ensure_service("alertmanager")


@pytest.fixture(scope="session")
def victorialogs_url() -> str:
    """Base URL of the test VictoriaLogs: "http://127.0.0.1:9428".

    It takes Loki's push API at `/insert/loki/api/v1/push` (protobuf and JSON) and answers
    LogsQL: read back with `logsql(victorialogs_url, query)`."""
    return ensure_service("victorialogs")


def logsql(url: str, query: str, limit: int = 1_000_000) -> list[dict[str, str]]:
    """Run a LogsQL query on VictoriaLogs and return its rows (every field is a string).

    Flushes recently ingested rows first, so everything the server acknowledged is found."""
    with urllib.request.urlopen(f"{url}/internal/force_flush", timeout=30) as response:
        response.read()
    params = urllib.parse.urlencode({"query": query, "limit": str(limit)})
    with urllib.request.urlopen(f"{url}/select/logsql/query?{params}", timeout=60) as response:
        raw = response.read()
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------
# Per-test names and resources
# --------------------------------------------------------------------------------------


@pytest.fixture
def unique_name() -> str:
    """A short lowercase name unique to this test, e.g. "t_1a2b3c4d".

    Valid unquoted as a Kafka topic, an Elasticsearch index and a ClickHouse table name
    (hence "_", not "-", which ClickHouse would need backquoted), and as their prefix."""
    return f"t_{uuid.uuid4().hex[:8]}"


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private event loop in a helper thread.

    Lets synchronous fixtures use asyncio clients, from sync and async tests alike (an
    async test's own loop is running, so asyncio.run cannot be called on its thread)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


class TopicFactory(Protocol):
    def __call__(self, suffix: str = "", *, partitions: int = 1, config: dict[str, str] | None = None) -> str: ...


async def _create_topic(bootstrap: str, name: str, partitions: int, config: dict[str, str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=config)]
        )
        for topic_error in response.topic_errors:
            code = topic_error[1]
            if code != 0:
                raise RuntimeError(f"CreateTopics {name}: error code {code} {topic_error[2:]}")
        # CreateTopics returns once the controller committed the topic; producers need a
        # leader for every partition in the broker's metadata, which follows shortly.
        deadline = time.monotonic() + 15
        while True:
            described = await admin.describe_topics([name])
            parts = described[0]["partitions"] if described and described[0]["error_code"] == 0 else []
            if len(parts) == partitions and all(p["leader"] >= 0 for p in parts):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topic {name} has no leader for every partition: {described}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _delete_topics(bootstrap: str, names: list[str]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.delete_topics(names)
    finally:
        await admin.close()


@pytest.fixture
def created_topics(kafka_bootstrap: str) -> Iterator[list[str]]:
    """Topics a test's sink creates itself; deleted afterwards."""
    names: list[str] = []
    yield names
    if names:
        run_coroutine(lambda: _delete_topics(kafka_bootstrap, names))


@pytest.fixture
def kafka_topic(kafka_bootstrap: str, unique_name: str) -> Iterator[TopicFactory]:
    """Factory: `kafka_topic()` / `kafka_topic("dlq", partitions=3)` creates a topic named
    `<unique_name>` / `<unique_name>-dlq` (auto-creation is off on the broker), waits until
    every partition has a leader, and returns its name. All are deleted after the test.

    Synchronous, so both sync and async tests can call it."""
    created: list[str] = []

    def create(suffix: str = "", *, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"{unique_name}-{suffix}" if suffix else unique_name
        if name in created:
            raise ValueError(f"topic {name} was already created in this test")
        run_coroutine(lambda: _create_topic(kafka_bootstrap, name, partitions, config or {}))
        created.append(name)
        return name

    yield create
    if created:
        run_coroutine(lambda: _delete_topics(kafka_bootstrap, created))


def http_request(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """A small JSON-over-HTTP helper (stdlib only): returns (status, decoded JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")


@pytest.fixture
def es_index(es_url: str, unique_name: str) -> Iterator[str]:
    """An index name (`<unique_name>`) for this test. Afterwards every index, data stream,
    index template and component template matching `<unique_name>*` is deleted."""
    yield unique_name
    pattern = urllib.parse.quote(f"{unique_name}*")
    # Data streams first: their backing indices (.ds-...) do not match the pattern. The
    # integ-test distribution has no data-streams module; its 400/404/405 is fine here.
    http_request("DELETE", f"{es_url}/_data_stream/{pattern}?expand_wildcards=all")
    for path in (
        f"/{pattern}?expand_wildcards=all&ignore_unavailable=true&allow_no_indices=true",
        f"/_index_template/{pattern}",
        f"/_component_template/{pattern}",
    ):
        status, body = http_request("DELETE", es_url + path)
        assert status in (200, 404), f"cleanup DELETE {path}: HTTP {status} {body}"


@pytest.fixture
def chdb_path(tmp_path: Path) -> Path:
    """The folder of this test's embedded chDB database (DSN: f"chdb://{chdb_path}").

    chDB runs one engine per process, on one path at a time: code under test that opens
    chDB in this process must use this same path while `chdb_client` is open."""
    return tmp_path / "chdb"


@pytest.fixture
def chdb_client(chdb_path: Path) -> Iterator[Any]:
    """A clickhouse-connect client on this test's embedded chDB database (`chdb_path`).

    The same client API as a ClickHouse server over HTTP; closed after the test, so the
    next test can open its own path."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}")
    try:
        yield client
    finally:
        client.close()
