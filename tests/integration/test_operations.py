"""Operations against real services: a /metrics scrape with every component type
active passes `promtool check metrics`, and /ready follows Elasticsearch going
down and coming back."""

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

from tests.helpers import free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services"
GEOIP = ROOT / "tests" / "data" / "geoip"
ACCESS = '89.160.20.112 - - [10/Oct/2024:13:55:36 +0000] "GET /x HTTP/1.1" {status} 12 "-" "curl/8"\n'


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{want}}}")


@pytest.fixture
def run_daemon(tmp_path: Path) -> Any:
    procs: list[subprocess.Popen[bytes]] = []

    def start(config: str) -> subprocess.Popen[bytes]:
        path = tmp_path / "pipeline.yaml"
        path.write_text(config)
        log = open(tmp_path / "daemon.log", "ab")  # noqa: SIM115 (the child owns it)
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(path)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class TestMetricsExposition:
    def test_promtool_accepts_a_scrape_with_every_component_type(
        self, tmp_path: Path, run_daemon: Any, kafka_bootstrap: str, es_url: str, alertmanager_url: str,
        unique_name: str, es_index: Any,
    ) -> None:
        logs = tmp_path / "logs"
        (logs / "containers").mkdir(parents=True)
        (logs / "access.log").write_text("".join(ACCESS.format(status=s) for s in (200, 500) * 50))
        pod = f"web-1_default_nginx-{'a' * 64}.log"
        (logs / "containers" / pod).write_text(
            "".join(f'2024-10-10T13:55:36.{i:09d}Z stdout F {ACCESS.format(status=200).strip()}\n'
                    for i in range(20)))
        port = free_port()
        topic = f"{unique_name}-access"
        run_daemon(f"""
data_dir: {tmp_path}/data
api: {{address: "127.0.0.1:{port}"}}
sources:
  files: {{type: file, include: ["{logs}/*.log"], log_type: access}}
  pods: {{type: container, include: ["{logs}/containers/*.log"], log_type: access}}
  from_kafka: {{type: kafka, bootstrap_servers: "{kafka_bootstrap}", topics: ["{topic}"],
               group_id: "{unique_name}", start_from: earliest}}
  stdin_unused_guard: {{type: stdin}}
transforms:
  parsed: {{type: parse, inputs: [files, pods]}}
  geo: {{type: geoip, inputs: [parsed], database: "{GEOIP}/GeoLite2-City-Test.mmdb",
        asn_database: "{GEOIP}/GeoLite2-ASN-Test.mmdb"}}
sinks:
  kafka: {{type: kafka, inputs: [geo], bootstrap_servers: "{kafka_bootstrap}", topic: "{topic}",
          create_topics: true, topics_to_create: ["{topic}"]}}
  es: {{type: elasticsearch, inputs: [geo], hosts: ["{es_url}"], index: "{unique_name}-%Y.%m.%d",
       template: {{name: "{unique_name}", index_patterns: ["{unique_name}-*"]}}}}
  ch: {{type: clickhouse, inputs: [geo], dsn: "chdb:", retention_days: 0}}
  alerts: {{type: webhook, inputs: [geo], resolve_after: 2s,
           rules: [{{name: "{unique_name}", when: {{field: status, gte: 500}}, labels: {{path: "{{path}}"}}}}],
           targets: [{{type: alertmanager, url: "{alertmanager_url}"}}]}}
  out: {{type: file, inputs: [geo], path: "{tmp_path}/out.jsonl"}}
  console: {{type: console, inputs: [stdin_unused_guard]}}
  sink_hole: {{type: blackhole, inputs: [from_kafka]}}
""")
        base = f"http://127.0.0.1:{port}"

        def moved() -> str | None:
            code, body = http_get(base + "/metrics")
            if code != 200:
                return None
            text = body.decode()
            try:
                done = all(_metric(text, "pipeline_events_out_total", component=c) >= n
                           for c, n in (("es", 120), ("ch", 120), ("kafka", 120), ("sink_hole", 120)))
            except AssertionError:
                return None
            return text if done else None

        text = wait_until(moved, 120, "events through every sink")
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
        assert _metric(text, "pipeline_events_out_total", component="files") == 100
        assert _metric(text, "pipeline_events_out_total", component="pods") == 20
        assert "pipeline_sink_send_seconds_bucket" in text
        assert "pipeline_queue_depth" in text
        assert "pipeline_kafka_consumer_lag" in text
        assert "pipeline_file_lag_bytes" in text
        assert 'pipeline_build_info{version="' in text


class TestReadiness:
    def test_ready_is_503_while_elasticsearch_is_down(
        self, tmp_path: Path, run_daemon: Any, es_url: str, unique_name: str, es_index: Any,
    ) -> None:
        port = free_port()
        (tmp_path / "in.log").write_text("hello\n")
        run_daemon(f"""
data_dir: {tmp_path}/data
api: {{address: "127.0.0.1:{port}"}}
sources:
  files: {{type: file, include: ["{tmp_path}/*.log"]}}
sinks:
  es: {{type: elasticsearch, inputs: [files], hosts: ["{es_url}"], index: "{unique_name}-%Y.%m.%d",
       template: {{name: "{unique_name}", index_patterns: ["{unique_name}-*"]}}}}
""")
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_get(base + "/ready")[0] == 200, 60, what="/ready 200 with Elasticsearch up")
        try:
            subprocess.run([str(SERVICES), "down", "elasticsearch"], check=True, capture_output=True, timeout=120)
            _, body = wait_until(lambda: (r := http_get(base + "/ready"))[0] == 503 and r, 30, "/ready 503")
            assert "es" in json.loads(body)["reasons"]
            assert http_get(base + "/health")[0] == 200  # alive, just not ready
        finally:
            subprocess.run([str(SERVICES), "up", "elasticsearch"], check=True, capture_output=True, timeout=570,
                           env={**os.environ})
        wait_until(lambda: http_get(base + "/ready")[0] == 200, 60, "/ready 200 after Elasticsearch is back")


class TestQueryWhileRunning:
    def test_pipeline_query_goes_through_the_daemon_holding_the_embedded_store(
        self, tmp_path: Path, run_daemon: Any
    ) -> None:
        logs = tmp_path / "logs"
        logs.mkdir()
        # Today's date: the tables have a retention TTL that would drop old rows at once.
        now = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        line = ACCESS.replace("10/Oct/2024:13:55:36 +0000", now)
        (logs / "access.log").write_text("".join(line.format(status=s) for s in (200, 500, 404) * 10))
        port = free_port()
        config = f"""
data_dir: {tmp_path}/data
api: {{address: "127.0.0.1:{port}"}}
sources:
  files: {{type: file, include: ["{logs}/*.log"], log_type: access, start_at: beginning}}
transforms:
  parsed: {{type: parse, inputs: [files]}}
sinks:
  store: {{type: clickhouse, inputs: [parsed], dsn: "chdb:{tmp_path}/data/chdb", batch: {{timeout: 0.2}}}}
"""
        proc = run_daemon(config)
        path = tmp_path / "pipeline.yaml"

        def query(sql: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "pipeline", "query", "--config", str(path), sql],
                                  capture_output=True, text=True, timeout=120, cwd=ROOT)

        def counted() -> str | None:
            out = query("SELECT status, count() AS n FROM logs.access_logs GROUP BY status ORDER BY status")
            return out.stdout if out.returncode == 0 and "(3 rows)" in out.stdout else None

        table = wait_until(counted, timeout=60, what="rows through the running daemon")
        assert proc.poll() is None, "the daemon must still run (it holds the store)"
        assert table.splitlines() == [
            "status |  n", "-------+---", "   200 | 10", "   404 | 10", "   500 | 10", "(3 rows)"]
        ipv4 = query("SELECT DISTINCT toString(client_ip) FROM logs.access_logs")
        assert ipv4.returncode == 0, ipv4.stderr
        bad = query("SELECT nope FROM logs.access_logs")
        assert bad.returncode == 1
        assert bad.stderr.startswith(f"the daemon at 127.0.0.1:{port} refused the query: ")
