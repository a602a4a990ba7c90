"""The running daemon as an operator sees it: HTTP API, SIGHUP reload, no secrets shown.

Each test starts `pipeline run` as a subprocess over real files.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, http_get, port_open, wait_until

pytestmark = pytest.mark.reliability


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _config(tmp_path: Path, port: int, extra_sink: str = "", secret: str = "") -> str:
    return f"""
data_dir: {tmp_path}/data
api: {{address: "127.0.0.1:{port}"}}
shutdown_timeout: 10s
sources:
  logs:
    type: file
    include: ["{tmp_path}/in/*.log"]
    scan_interval: 200ms
    poll_interval: 50ms
    checkpoint_interval: 200ms
transforms:
  parsed: {{type: parse, inputs: [logs], log_type: application}}
sinks:
  first: {{type: file, inputs: [parsed], path: "{tmp_path}/out/first.jsonl", batch: {{timeout: 50ms}}}}
{extra_sink}
{secret}
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Any:
    procs: list[subprocess.Popen[bytes]] = []

    def start(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--log-format", "json", "run", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=open(tmp_path / "daemon.log", "ab"),  # noqa: SIM115
            env={**os.environ, **(env or {})},
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class TestApi:
    def test_health_ready_metrics_status(self, tmp_path: Path, daemon: Any) -> None:
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "a.log").write_text("".join(f"2024-01-02 03:04:05,000 ERROR app - line {i}\n"
                                                        for i in range(100)))
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(_config(tmp_path, port))
        proc = daemon(config)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_get(base + "/ready")[0] == 200 if port_open(port) else False, what="/ready 200")
        assert http_get(base + "/health") == (200, b'{"status": "ok"}')
        wait_until(lambda: len(_lines(tmp_path / "out" / "first.jsonl")) == 100, what="100 events")
        code, body = http_get(base + "/metrics")
        text = body.decode()
        assert code == 200
        assert 'pipeline_events_out_total{component="logs",kind="source",type="file"} 100.0' in text
        assert 'pipeline_events_out_total{component="first",kind="sink",type="file"} 100.0' in text
        assert "pipeline_sink_send_seconds_bucket" in text and "pipeline_queue_depth" in text
        status = json.loads(http_get(base + "/status")[1])
        names = {c["name"]: c for c in status["components"]}
        assert names["first"]["events_in"] == 100 and names["first"]["last_error"] is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


class TestReload:
    def test_sighup_adds_a_sink_without_loss_or_duplicates(self, tmp_path: Path, daemon: Any) -> None:
        (tmp_path / "in").mkdir()
        log = tmp_path / "in" / "a.log"
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(_config(tmp_path, port))
        proc = daemon(config)
        first = tmp_path / "out" / "first.jsonl"
        with open(log, "a") as fh:
            for i in range(2000):
                fh.write(f"line {i}\n")
        wait_until(lambda: len(_lines(first)) == 2000, what="first 2000 events")
        config.write_text(_config(tmp_path, port, extra_sink=(
            f'  second: {{type: file, inputs: [parsed], path: "{tmp_path}/out/second.jsonl"}}')))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: json.loads(http_get(f"http://127.0.0.1:{port}/status")[1])["reloads"] == 1
                  if port_open(port) else False, what="reload")
        with open(log, "a") as fh:
            for i in range(2000, 4000):
                fh.write(f"line {i}\n")
        wait_until(lambda: len(_lines(first)) >= 4000 and len(_lines(tmp_path / "out" / "second.jsonl")) >= 2000,
                  what="events after reload")
        time.sleep(0.5)
        numbers = [int(e["message"].split()[1]) for e in _lines(first)]
        assert sorted(numbers) == list(range(4000)), "first sink lost or duplicated events across the reload"
        second = [int(e["message"].split()[1]) for e in _lines(tmp_path / "out" / "second.jsonl")]
        assert sorted(second) == list(range(2000, 4000))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    def test_sighup_with_invalid_config_keeps_running(self, tmp_path: Path, daemon: Any) -> None:
        (tmp_path / "in").mkdir()
        log = tmp_path / "in" / "a.log"
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(_config(tmp_path, port))
        proc = daemon(config)
        wait_until(lambda: port_open(port), what="api")
        config.write_text(_config(tmp_path, port, extra_sink="  broken: {type: file, inputs: [nowhere]}"))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b"reload rejected" in (tmp_path / "daemon.log").read_bytes(), what="reload rejected log")
        logged = (tmp_path / "daemon.log").read_text()
        assert "sinks.broken.inputs[0]: unknown input 'nowhere'" in logged
        log.write_text("still here\n")
        wait_until(lambda: [e["message"] for e in _lines(tmp_path / "out" / "first.jsonl")] == ["still here"],
                  what="old topology still delivering")
        assert json.loads(http_get(f"http://127.0.0.1:{port}/status")[1])["reloads"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


class TestSecrets:
    def test_secret_never_in_logs_status_or_errors(self, tmp_path: Path, daemon: Any) -> None:
        secret = "hunter2-s3cr3t-value"
        (tmp_path / "in").mkdir()
        port = free_port()
        config = tmp_path / "c.yaml"
        # An Elasticsearch sink that cannot connect: its errors are logged and shown in /status.
        config.write_text(_config(tmp_path, port, extra_sink=(
            "  es:\n    type: elasticsearch\n    inputs: [parsed]\n    hosts: ['http://127.0.0.1:1']\n"
            "    username: elastic\n    password: ${ES_PASSWORD}\n")))
        proc = daemon(config, env={"ES_PASSWORD": secret})
        wait_until(lambda: port_open(port), what="api")
        (tmp_path / "in" / "a.log").write_text("boom\n")
        time.sleep(3)
        ready = http_get(f"http://127.0.0.1:{port}/ready")
        assert ready[0] == 503
        status = http_get(f"http://127.0.0.1:{port}/status")[1]
        metrics = http_get(f"http://127.0.0.1:{port}/metrics")[1]
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        logged = (tmp_path / "daemon.log").read_bytes()
        for blob in (ready[1], status, metrics, logged):
            assert secret.encode() not in blob
        # A config error naming the key must not echo the value either.
        bad = tmp_path / "bad.yaml"
        bad.write_text(_config(tmp_path, port, extra_sink=(
            "  es:\n    type: elasticsearch\n    inputs: [parsed]\n    hosts: ['http://127.0.0.1:1']\n"
            "    username: elastic\n    password: ${ES_PASSWORD}\n    colour: ${ES_PASSWORD}\n")))
        out = subprocess.run([sys.executable, "-m", "pipeline", "validate", "--config", str(bad)],
                             capture_output=True, env={**os.environ, "ES_PASSWORD": secret})
        assert out.returncode == 2 and b"sinks.es.colour: unknown key" in out.stderr
        assert secret.encode() not in out.stderr + out.stdout


API_TOKEN = "api-t0ken-never-shown"


def _https_get(url: str, ca: Path, token: str | None = None) -> tuple[int, bytes]:
    import ssl
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10, context=context) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _get(url: str, token: str | None = None, source: str | None = None, method: str = "GET",
         body: bytes | None = None) -> tuple[int, bytes]:
    """A plain HTTP request, optionally from another loopback source address (127.0.0.2 is not 127.0.0.1)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10,
                                      source_address=(source, 0) if source else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, parts.path, body=body, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def _api_config(tmp_path: Path, address: str, api_extra: str = "", sinks: str = "") -> str:
    return f"""
data_dir: {tmp_path}/data
api: {{address: "{address}"{api_extra}}}
shutdown_timeout: 10s
sources:
  logs: {{type: file, include: ["{tmp_path}/in/*.log"], scan_interval: 200ms, poll_interval: 50ms}}
sinks:
  out: {{type: file, inputs: [logs], path: "{tmp_path}/out/out.jsonl", batch: {{timeout: 50ms}}}}
{sinks}
"""


@pytest.fixture(scope="module")
def api_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("api-tls")
    cert, key = folder / "api.pem", folder / "api.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=api",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class TestApiProtection:
    """api.token guards everything but /health; api.tls serves HTTPS; non-loopback binds are warned about."""

    def test_token_guards_every_endpoint_but_health(self, tmp_path: Path, daemon: Any) -> None:
        (tmp_path / "in").mkdir()
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(_api_config(tmp_path, f"127.0.0.1:{port}", ", token: \"${API_TOKEN}\""))
        proc = daemon(config, env={"API_TOKEN": API_TOKEN})
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: port_open(port), what="api")
        assert _get(base + "/health") == (200, b'{"status": "ok"}')
        for path in ("/status", "/metrics", "/ready"):
            code, body = _get(base + path)
            assert code == 401 and b"bearer token" in body, path
            assert _get(base + path, token="wrong-token")[0] == 401
            assert wait_until(lambda p=path: _get(base + p, token=API_TOKEN)[0] == 200, what=f"{path} 200")
        assert _get(base + "/query", method="POST", body=b'{"sql": "SELECT 1"}')[0] == 401
        status = _get(base + "/status", token=API_TOKEN)[1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert API_TOKEN.encode() not in (tmp_path / "daemon.log").read_bytes() + status

    def test_token_from_file(self, tmp_path: Path, daemon: Any) -> None:
        (tmp_path / "in").mkdir()
        (tmp_path / "token").write_text(API_TOKEN + "\n")
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(_api_config(tmp_path, f"127.0.0.1:{port}", f", token_file: {tmp_path}/token"))
        proc = daemon(config)
        wait_until(lambda: port_open(port), what="api")
        assert _get(f"http://127.0.0.1:{port}/status")[0] == 401
        assert _get(f"http://127.0.0.1:{port}/status", token=API_TOKEN)[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    def test_tls_serves_https_only(self, tmp_path: Path, daemon: Any, api_cert: tuple[Path, Path]) -> None:
        (tmp_path / "in").mkdir()
        cert, key = api_cert
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(_api_config(tmp_path, f"127.0.0.1:{port}",
                                      f", token: \"${{API_TOKEN}}\", tls: {{cert_file: {cert}, key_file: {key}}}"))
        proc = daemon(config, env={"API_TOKEN": API_TOKEN})
        wait_until(lambda: port_open(port), what="api")
        assert _https_get(f"https://127.0.0.1:{port}/health", cert) == (200, b'{"status": "ok"}')
        assert _https_get(f"https://127.0.0.1:{port}/status", cert)[0] == 401
        assert _https_get(f"https://127.0.0.1:{port}/status", cert, API_TOKEN)[0] == 200
        # Plain HTTP on the TLS port gets nothing useful.
        assert http_get(f"http://127.0.0.1:{port}/status")[0] in (0, 400)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    def test_non_loopback_without_token_is_warned(self, tmp_path: Path, daemon: Any) -> None:
        (tmp_path / "in").mkdir()
        port = free_port()
        config = tmp_path / "c.yaml"
        config.write_text(_api_config(tmp_path, f"0.0.0.0:{port}"))
        proc = daemon(config)
        wait_until(lambda: port_open(port), what="api")
        wait_until(lambda: b"without api.token" in (tmp_path / "daemon.log").read_bytes(), what="warning")
        warnings = [json.loads(line) for line in (tmp_path / "daemon.log").read_text().splitlines()
                    if "without api.token" in line]
        assert len(warnings) == 1 and warnings[0]["level"] == "warning"
        assert f"0.0.0.0:{port} (not loopback)" in warnings[0]["msg"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    def test_query_from_another_address_needs_the_token(self, tmp_path: Path, daemon: Any) -> None:
        (tmp_path / "in").mkdir()
        port = free_port()
        ch = "  ch: {type: clickhouse, inputs: [logs], dsn: 'chdb:', batch: {timeout: 50ms}}"
        config = tmp_path / "c.yaml"
        config.write_text(_api_config(tmp_path, f"0.0.0.0:{port}", sinks=ch))
        proc = daemon(config)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: port_open(port), what="api")
        query = b'{"sql": "SELECT 40 + 2 AS answer"}'
        # Without a token: this machine (127.0.0.1) only; 127.0.0.2 counts as another peer.
        assert wait_until(lambda: _get(base + "/query", method="POST", body=query)[0] == 200, what="query")
        code, body = _get(base + "/query", method="POST", body=query, source="127.0.0.2")
        assert code == 403 and b"this machine only" in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

        config.write_text(_api_config(tmp_path, f"0.0.0.0:{port}", ", token: \"${API_TOKEN}\"", sinks=ch))
        proc = daemon(config, env={"API_TOKEN": API_TOKEN})
        wait_until(lambda: port_open(port), what="api")
        assert _get(base + "/query", method="POST", body=query, source="127.0.0.2")[0] == 401
        code, body = wait_until(lambda: (r := _get(base + "/query", method="POST", body=query, source="127.0.0.2",
                                                    token=API_TOKEN))[0] == 200 and r, what="query with token")
        assert json.loads(body)["rows"] == [[42]]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert API_TOKEN.encode() not in (tmp_path / "daemon.log").read_bytes()

    def test_pipeline_query_reaches_a_daemon_behind_token_and_tls(
        self, tmp_path: Path, daemon: Any, api_cert: tuple[Path, Path]
    ) -> None:
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "a.log").write_text("".join(f"line {i}\n" for i in range(7)))
        cert, key = api_cert
        port = free_port()
        ch = "  ch: {type: clickhouse, inputs: [logs], dsn: 'chdb:', batch: {timeout: 50ms}}"
        config = tmp_path / "c.yaml"
        config.write_text(_api_config(tmp_path, f"127.0.0.1:{port}",
                                      f", token: \"${{API_TOKEN}}\", tls: {{cert_file: {cert}, key_file: {key}}}",
                                      sinks=ch))
        proc = daemon(config, env={"API_TOKEN": API_TOKEN})
        wait_until(lambda: port_open(port), what="api")
        env = {**os.environ, "API_TOKEN": API_TOKEN}

        def query() -> str:
            sql = "SELECT count() AS n FROM logs.application_logs"
            out = subprocess.run([sys.executable, "-m", "pipeline", "query", "--config", str(config), sql],
                                 capture_output=True, text=True, env=env)
            return out.stdout if out.returncode == 0 and "7" in out.stdout else ""

        assert "7" in wait_until(query, what="pipeline query through the daemon", every=0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
