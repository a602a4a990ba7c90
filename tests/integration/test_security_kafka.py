"""Kafka over TLS against the real broker: SASL_SSL (SCRAM-SHA-512, 127.0.0.1:9094) and mTLS
(127.0.0.1:9095), both with a server certificate from the throw-away test CA of scripts/services.

The sink and the source deliver over each listener (`pipeline run --once` as operators run it);
a wrong password, an untrusted CA, a host-name mismatch and a missing client certificate each
end the run with exit 2 and one line naming the component and the option, never silently and
never with the password in the output. Test data goes in and out through the plaintext
listener (9092) with an independent client.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from .conftest import TlsMaterial, TopicFactory

ROOT = Path(__file__).resolve().parents[2]
WRONG_PASSWORD = "not-the-pipeline-password"


def security(kind: str, address: str, tls: TlsMaterial, **override: Any) -> dict[str, Any]:
    """Connection options of one listener, as a config mapping."""
    if kind == "sasl_ssl":
        options: dict[str, Any] = {
            "bootstrap_servers": address,
            "tls": {"ca_file": str(tls.ca)},
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": tls.user, "password": "${KAFKA_PASSWORD}"},
        }
    else:
        options = {
            "bootstrap_servers": address,
            "tls": {"ca_file": str(tls.ca), "cert_file": str(tls.client_cert), "key_file": str(tls.client_key)},
        }
    for key, value in override.items():
        if value is None:
            options["tls"].pop(key, None)
        else:
            options[key] = value
    return options


def run_once(config: dict[str, Any], tmp_path: Path, password: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--log-level", "error", "--log-format", "text", "run",
         "--config", str(path), "--once"],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT,
        env={**os.environ, "KAFKA_PASSWORD": password},
    )  # fmt: skip


def sink_config(tmp_path: Path, topic: str, options: dict[str, Any], lines: int) -> dict[str, Any]:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "app.log").write_text("".join(f"secure line {i}\n" for i in range(lines)))
    return {
        "data_dir": str(tmp_path / "data"),
        "api": {"enabled": False},
        "sources": {"app": {"type": "file", "include": [str(tmp_path / "in" / "*.log")], "log_type": "application"}},
        "sinks": {"out": {"type": "kafka", "inputs": ["app"], "topic": topic, "create_topics": False, **options}},
    }


def source_config(tmp_path: Path, topic: str, group: str, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "data_dir": str(tmp_path / "data"),
        "api": {"enabled": False},
        "sources": {"in": {"type": "kafka", "topics": [topic], "group_id": group, **options}},
        "sinks": {"out": {"type": "file", "inputs": ["in"], "path": str(tmp_path / "out.jsonl")}},
    }


async def consume_all(bootstrap: str, topic: str, expected: int) -> list[str]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        messages: list[str] = []
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=500)
            messages += [json.loads(m.value)["message"] for records in batch.values() for m in records]
            if len(messages) >= expected:
                break
        return messages
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, json.dumps({"message": f"from kafka {i}", "log_type": "application"}).encode())
        await producer.flush()
    finally:
        await producer.stop()


LISTENERS = [pytest.param("sasl_ssl", id="sasl_ssl-scram-sha-512"), pytest.param("mtls", id="mtls")]


class TestDelivery:
    @pytest.mark.parametrize("kind", LISTENERS)
    async def test_sink_delivers(self, kind: str, tmp_path: Path, kafka_bootstrap: str,
                                 kafka_tls: tuple[str, str, TlsMaterial], kafka_topic: TopicFactory) -> None:
        sasl, mtls, tls = kafka_tls
        topic = kafka_topic()
        options = security(kind, sasl if kind == "sasl_ssl" else mtls, tls)
        proc = await asyncio.to_thread(run_once, sink_config(tmp_path, topic, options, 200), tmp_path, tls.password)
        assert proc.returncode == 0, proc.stderr[-3000:]
        messages = await consume_all(kafka_bootstrap, topic, 200)
        assert sorted(messages) == sorted(f"secure line {i}" for i in range(200))

    @pytest.mark.parametrize("kind", LISTENERS)
    async def test_source_delivers(self, kind: str, tmp_path: Path, kafka_bootstrap: str, unique_name: str,
                                   kafka_tls: tuple[str, str, TlsMaterial], kafka_topic: TopicFactory) -> None:
        sasl, mtls, tls = kafka_tls
        topic = kafka_topic()
        await produce(kafka_bootstrap, topic, 200)
        options = security(kind, sasl if kind == "sasl_ssl" else mtls, tls)
        config = source_config(tmp_path, topic, f"{unique_name}-group", options)
        proc = await asyncio.to_thread(run_once, config, tmp_path, tls.password)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = [json.loads(line)["message"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        assert sorted(out) == sorted(f"from kafka {i}" for i in range(200))

    async def test_server_name_lets_a_client_dial_another_name(
        self, tmp_path: Path, kafka_bootstrap: str, kafka_tls: tuple[str, str, TlsMaterial], kafka_topic: TopicFactory
    ) -> None:
        # The certificate is for 127.0.0.1; dialling `localhost` works when the expected name is given.
        sasl, _, tls = kafka_tls
        topic = kafka_topic()
        port = sasl.rpartition(":")[2]
        options = security("sasl_ssl", f"localhost:{port}", tls)
        options["tls"]["server_name"] = "127.0.0.1"
        proc = await asyncio.to_thread(run_once, sink_config(tmp_path, topic, options, 10), tmp_path, tls.password)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(await consume_all(kafka_bootstrap, topic, 10)) == 10


def refusal_cases() -> list[Any]:
    return [
        pytest.param("sasl_ssl", {}, WRONG_PASSWORD, "sasl.password",
                     "authentication refused for user 'pipeline' (SCRAM-SHA-512): wrong user name or password",
                     id="wrong-password"),
        pytest.param("sasl_ssl", {"ca_file": None}, None, "tls.ca_file",
                     "the server's certificate is not trusted: unable to get local issuer certificate",
                     id="untrusted-ca-system-store"),
        pytest.param("sasl_ssl", {"ca_file": "OTHER_CA"}, None, "tls.ca_file",
                     "the server's certificate is not trusted", id="untrusted-ca-other-ca"),
        pytest.param("sasl_ssl", {"host": "localhost"}, None, "tls.server_name",
                     "does not match the host name: Hostname mismatch, certificate is not valid for 'localhost'",
                     id="host-name-mismatch"),
        pytest.param("mtls", {"cert_file": None, "key_file": None}, None, "tls.cert_file",
                     "it requires a valid client certificate", id="mtls-without-client-certificate"),
    ]


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing the broker uses."""
    folder = tmp_path_factory.mktemp("other-ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "ca.key"),
                    "-out", str(folder / "ca.pem"), "-days", "1", "-subj", "/CN=some other CA"],
                   check=True, capture_output=True)  # fmt: skip
    return folder / "ca.pem"


class TestRefusals:
    """Each permanent refusal: exit 2 and one line `FILE: <section>.<name>.<key>: <address>: <why>`."""

    @pytest.mark.parametrize("role", ["sink", "source"])
    @pytest.mark.parametrize(("kind", "change", "password", "key", "why"), refusal_cases())
    async def test_refused_once_is_exit_2_with_one_clear_line(
        self, role: str, kind: str, change: dict[str, Any], password: str | None, key: str, why: str,
        tmp_path: Path, unique_name: str, other_ca: Path, kafka_tls: tuple[str, str, TlsMaterial],
        kafka_topic: TopicFactory,
    ) -> None:
        sasl, mtls, tls = kafka_tls
        address = sasl if kind == "sasl_ssl" else mtls
        if "host" in change:
            address = f"{change['host']}:{address.rpartition(':')[2]}"
        options = security(kind, address, tls)
        for option, value in change.items():
            if option == "host":
                continue
            if value is None:
                options["tls"].pop(option)
            else:
                options["tls"][option] = str(other_ca)
        topic = kafka_topic()
        if role == "sink":
            config, section, name = sink_config(tmp_path, topic, options, 5), "sinks", "out"
        else:
            config, section, name = source_config(tmp_path, topic, f"{unique_name}-g", options), "sources", "in"
        proc = await asyncio.to_thread(run_once, config, tmp_path, password or tls.password)
        assert proc.returncode == 2, proc.stderr[-3000:]
        problem = [line for line in proc.stderr.splitlines() if line.startswith(str(tmp_path / "pipeline.yaml"))]
        assert len(problem) == 1, proc.stderr
        assert problem[0].startswith(f"{tmp_path / 'pipeline.yaml'}: {section}.{name}.{key}: {address}: "), problem
        assert why in problem[0]
        assert "Traceback" not in proc.stderr
        for secret in (tls.password, WRONG_PASSWORD):
            assert secret not in proc.stderr + proc.stdout
