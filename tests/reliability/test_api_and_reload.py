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
