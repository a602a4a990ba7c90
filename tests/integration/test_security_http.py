"""HTTPS and authentication of the HTTP destinations, through a real TLS-terminating proxy.

`scripts/services up tlsproxy` runs Debian's nginx on 127.0.0.1:9443 with a certificate from
the throw-away test CA (for the IP 127.0.0.1 only: `localhost` is a host-name mismatch), in
front of the real Elasticsearch and Alertmanager, with one location per authentication:
basic auth, a bearer token, a client certificate (scripts/services.d/tlsproxy-nginx.conf).
On 9444 the same for ClickHouse clients, with no ClickHouse server behind it (chDB runs
in-process): a client that got through TLS and auth gets nginx's 502.

Delivery is checked on the destination itself (Elasticsearch's count over plain HTTP,
Alertmanager's alert list); refusals end `pipeline run --once` with exit 2 and one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.errors import StartError, TransientError
from pipeline.metrics import Metrics
from sinks.clickhouse import ClickHouseSink, ClickHouseSinkConfig
from sinks.webhook import WebhookSink, WebhookSinkConfig

from .conftest import TlsMaterial, http_request

ROOT = Path(__file__).resolve().parents[2]
WRONG = "not-the-proxy-password"


def run_once(config: dict[str, Any], tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--log-level", "warning", "--log-format", "json", "run",
         "--config", str(path), "--once"],
        capture_output=True, text=True, timeout=180, check=False, cwd=ROOT, env={**os.environ, **env},
    )  # fmt: skip


def es_config(tmp_path: Path, index: str, es: dict[str, Any], lines: int = 20) -> dict[str, Any]:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "app.log").write_text("".join(f"over tls {i}\n" for i in range(lines)))
    return {
        "data_dir": str(tmp_path / "data"),
        "api": {"enabled": False},
        "sources": {"app": {"type": "file", "include": [str(tmp_path / "in" / "*.log")], "log_type": "application"}},
        "sinks": {
            "es": {
                "type": "elasticsearch", "inputs": ["app"], "index": index,
                "template": {"name": index, "index_patterns": [f"{index}*"]}, **es,
            }
        },
    }  # fmt: skip


def count(es_url: str, index: str) -> int:
    http_request("POST", f"{es_url}/{index}/_refresh")
    status, body = http_request("GET", f"{es_url}/{index}/_count")
    return int(body["count"]) if status == 200 else -1


def problem_lines(proc: subprocess.CompletedProcess[str], tmp_path: Path) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith(str(tmp_path / "pipeline.yaml"))]


class TestElasticsearch:
    @pytest.mark.parametrize(
        ("location", "auth"),
        [
            pytest.param("es-basic", {"username": "pipeline", "password": "${PROXY_PASSWORD}"}, id="basic-auth"),
            pytest.param("es-token", {"bearer_token": "${PROXY_TOKEN}"}, id="bearer-token"),
            pytest.param("es-mtls", {"tls": {"cert_file": "CLIENT", "key_file": "KEY"}}, id="client-certificate"),
        ],
    )
    def test_delivers_through_the_tls_proxy(
        self, location: str, auth: dict[str, Any], tmp_path: Path, es_url: str, es_index: str,
        tlsproxy: tuple[str, TlsMaterial],
    ) -> None:  # fmt: skip
        base, tls = tlsproxy
        options = {k: v for k, v in auth.items() if k != "tls"}
        options["tls"] = {"ca_file": str(tls.ca)}
        if "tls" in auth:
            options["tls"].update({"cert_file": str(tls.client_cert), "key_file": str(tls.client_key)})
        config = es_config(tmp_path, es_index, {"hosts": [f"{base}/{location}"], **options})
        proc = run_once(config, tmp_path, {"PROXY_PASSWORD": tls.password, "PROXY_TOKEN": tls.token})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert count(es_url, es_index) == 20
        assert tls.password not in proc.stderr + proc.stdout and tls.token not in proc.stderr + proc.stdout

    def test_without_template_install_start_still_checks_credentials(
        self, tmp_path: Path, es_index: str, tlsproxy: tuple[str, TlsMaterial]
    ) -> None:
        base, tls = tlsproxy
        es = {"hosts": [f"{base}/es-basic"], "username": "pipeline", "password": "${PROXY_PASSWORD}",
              "tls": {"ca_file": str(tls.ca)}, "template": {"install": False}}  # fmt: skip
        config = es_config(tmp_path, es_index, es)
        proc = run_once(config, tmp_path, {"PROXY_PASSWORD": WRONG})
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert problem_lines(proc, tmp_path) == [
            f"{tmp_path / 'pipeline.yaml'}: sinks.es.password: {base}/es-basic: HTTP 401: credentials refused"
        ]

    @pytest.mark.parametrize(
        ("change", "key", "why"),
        [
            pytest.param({"password": WRONG}, "password", "HTTP 401: credentials refused", id="wrong-password"),
            pytest.param({"ca_file": None}, "tls.ca_file",
                         "the server's certificate is not trusted: unable to get local issuer certificate",
                         id="untrusted-ca"),
            pytest.param({"host": "localhost"}, "tls.server_name",
                         "Hostname mismatch, certificate is not valid for 'localhost'", id="host-name-mismatch"),
        ],
    )  # fmt: skip
    def test_refusals_are_exit_2_with_one_line(
        self, change: dict[str, Any], key: str, why: str, tmp_path: Path, es_index: str,
        tlsproxy: tuple[str, TlsMaterial],
    ) -> None:  # fmt: skip
        base, tls = tlsproxy
        host = f"{base}/es-basic".replace("127.0.0.1", change.get("host", "127.0.0.1"))
        es: dict[str, Any] = {"hosts": [host], "username": "pipeline", "password": "${PROXY_PASSWORD}",
                              "tls": {"ca_file": str(tls.ca)}}  # fmt: skip
        if "ca_file" in change:
            del es["tls"]
        proc = run_once(es_config(tmp_path, es_index, es), tmp_path, {"PROXY_PASSWORD": change.get("password",
                                                                                                   tls.password)})
        assert proc.returncode == 2, proc.stderr[-3000:]
        lines = problem_lines(proc, tmp_path)
        assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 'pipeline.yaml'}: sinks.es.{key}: {host}: ")
        assert why in lines[0]
        assert "Traceback" not in proc.stderr
        assert WRONG not in proc.stderr and tls.password not in proc.stderr

    def test_verify_false_delivers_and_is_loudly_warned(
        self, tmp_path: Path, es_url: str, es_index: str, tlsproxy: tuple[str, TlsMaterial]
    ) -> None:
        base, tls = tlsproxy
        es = {"hosts": [f"{base}/es-basic"], "username": "pipeline", "password": "${PROXY_PASSWORD}",
              "tls": {"verify": False}}  # fmt: skip
        proc = run_once(es_config(tmp_path, es_index, es), tmp_path, {"PROXY_PASSWORD": tls.password})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert count(es_url, es_index) == 20
        warnings = [json.loads(line) for line in proc.stderr.splitlines() if "verification is OFF" in line]
        assert len(warnings) == 1
        assert warnings[0]["level"] == "warning" and warnings[0]["component"] == "es"


def webhook_config(url: str, test_id: str, **target: Any) -> WebhookSinkConfig:
    return WebhookSinkConfig.model_validate({
        "type": "webhook", "inputs": ["in"],
        "rules": [{"name": "TlsProxyAlert", "when": {"field": "level", "equals": "ERROR"},
                   "labels": {"test_id": test_id}, "annotations": {"summary": "{message}"}}],
        "targets": [{"type": "alertmanager", "url": url, "timeout": "3s", **target}],
        "group_wait": "100ms", "resolve_after": "30s",
        "retry": {"initial_backoff": "100ms", "max_backoff": "500ms"},
    })  # fmt: skip


async def alerts_of(am_url: str, test_id: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(
        f"{am_url}/api/v2/alerts", params=[("filter", f'test_id="{test_id}"')]
    ) as resp:
        return list(await resp.json())


class TestAlertmanager:
    @pytest.mark.parametrize(
        ("location", "auth"),
        [
            pytest.param("am-basic", {"username": "pipeline", "password": "PASSWORD"}, id="basic-auth"),
            pytest.param("am-token", {"bearer_token": "TOKEN"}, id="bearer-token"),
        ],
    )
    async def test_alert_arrives_through_the_tls_proxy(
        self, location: str, auth: dict[str, str], tmp_path: Path, unique_name: str, alertmanager_url: str,
        tlsproxy: tuple[str, TlsMaterial],
    ) -> None:  # fmt: skip
        base, tls = tlsproxy
        secrets = {"PASSWORD": tls.password, "TOKEN": tls.token}
        target = {k: secrets.get(v, v) for k, v in auth.items()}
        sink = WebhookSink("alerts", webhook_config(f"{base}/{location}", unique_name, tls={"ca_file": str(tls.ca)},
                                                    **target), data_dir=tmp_path)  # fmt: skip
        await sink.start()
        try:
            await sink.send([{"@timestamp": "2024-05-01T12:00:00.000Z", "level": "ERROR", "message": "boom"}])
            deadline = time.monotonic() + 20
            found = await alerts_of(alertmanager_url, unique_name)
            for _ in range(100):
                if found or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
                found = await alerts_of(alertmanager_url, unique_name)
        finally:
            await sink.aclose()
        assert [a["labels"]["alertname"] for a in found] == ["TlsProxyAlert"]
        assert found[0]["annotations"]["summary"] == "boom"

    @pytest.mark.parametrize(
        ("change", "key", "why"),
        [
            pytest.param({"password": WRONG}, "password", "HTTP 401", id="wrong-password"),
            pytest.param({"tls": None}, "tls.ca_file", "the server's certificate is not trusted", id="untrusted-ca"),
            pytest.param({"host": "localhost"}, "tls.server_name", "Hostname mismatch", id="host-name-mismatch"),
        ],
    )
    async def test_refused_at_start(
        self, change: dict[str, Any], key: str, why: str, tmp_path: Path, unique_name: str,
        tlsproxy: tuple[str, TlsMaterial],
    ) -> None:  # fmt: skip
        base, tls = tlsproxy
        url = f"{base}/am-basic".replace("127.0.0.1", change.pop("host", "127.0.0.1"))
        target: dict[str, Any] = {"username": "pipeline", "password": tls.password, "tls": {"ca_file": str(tls.ca)}}
        target.update(change)
        if target["tls"] is None:
            del target["tls"]
        sink = WebhookSink("alerts", webhook_config(url, unique_name, **target), data_dir=tmp_path)
        try:
            with pytest.raises(StartError) as info:
                await sink.start()
        finally:
            await sink.aclose()
        assert info.value.key == f"targets.alertmanager.{key}"
        assert why in info.value.message and WRONG not in str(info.value) and tls.password not in str(info.value)


class TestClickHouse:
    """No ClickHouse server here: through TLS and auth, nginx answers 502 (a transient failure)."""

    def sink(self, tmp_path: Path, dsn: str, **options: Any) -> ClickHouseSink:
        config = ClickHouseSinkConfig.model_validate(
            {"type": "clickhouse", "inputs": ["x"], "dsn": dsn, "connect_timeout": "3s", **options}
        )
        return ClickHouseSink("ch", config, data_dir=tmp_path, metrics=Metrics())

    async def test_tls_and_password_accepted_reach_the_upstream(
        self, tmp_path: Path, tlsproxy: tuple[str, TlsMaterial]
    ) -> None:
        _, tls = tlsproxy
        sink = self.sink(tmp_path, "https://pipeline@127.0.0.1:9444", password=tls.password,
                         tls={"ca_file": str(tls.ca)})  # fmt: skip
        try:
            with pytest.raises(TransientError, match="HTTP status 502"):
                await sink.start()
        finally:
            await sink.aclose()

    @pytest.mark.parametrize(
        ("options", "key", "why"),
        [
            pytest.param({"password": WRONG, "tls": "CA"}, "password", "credentials refused (HTTP 401)",
                         id="wrong-password"),
            pytest.param({"password": "RIGHT"}, "tls.ca_file", "the server's certificate is not trusted",
                         id="untrusted-ca"),
        ],
    )  # fmt: skip
    async def test_refused_at_start(
        self, options: dict[str, Any], key: str, why: str, tmp_path: Path, tlsproxy: tuple[str, TlsMaterial]
    ) -> None:
        _, tls = tlsproxy
        resolved = {"password": tls.password if options["password"] == "RIGHT" else options["password"]}
        if options.get("tls") == "CA":
            resolved["tls"] = {"ca_file": str(tls.ca)}
        sink = self.sink(tmp_path, "https://pipeline@127.0.0.1:9444", **resolved)
        try:
            with pytest.raises(StartError) as info:
                await sink.start()
        finally:
            await sink.aclose()
        assert info.value.key == key and why in info.value.message
        assert WRONG not in str(info.value) and tls.password not in str(info.value)
