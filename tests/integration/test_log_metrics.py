"""Metrics from logs, end to end: the seeds' alert rules work unchanged on series derived from an access log.

The daemon runs the shipped config/examples/seed-logstash.yaml over an nginx access log that grows
one "minute" of traffic at a time; after each minute /metrics is scraped. The scrapes become
`promtool test rules` input series (one sample per minute), and the seeds' HighErrorRate and
HighAPILatency rules, copied unchanged into tests/data/prometheus/seed-rules.yml, must stay quiet
over 15 healthy minutes and fire over 15 degraded ones (10% 503s, GETs taking 0.8 s). The last
scrape must also pass `promtool check metrics`. promtool is Prometheus' own tool (Debian
`prometheus`, installed by scripts/services), independent of our code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port, http_get, wait_until

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "examples" / "seed-logstash.yaml"
RULES = ROOT / "tests" / "data" / "prometheus" / "seed-rules.yml"
GEOIP = ROOT / "tests" / "data" / "geoip" / "GeoLite2-City-Test.mmdb"
LINE = ('89.160.20.112 - - [10/Oct/2024:13:{m:02d}:{s:02d} +0000] "{method} /api/v1/documents HTTP/1.1" '
        '{status} 512 "-" "k6/0.50" {rt}\n')
HEALTHY, DEGRADED = 15, 15  # minutes of each


def minute_of_traffic(minute: int) -> str:
    """60 requests: 50 GET and 10 POST; once degraded, 6 GETs fail with 503 and GETs take 0.8 s."""
    bad = minute >= HEALTHY
    lines = []
    for s in range(60):
        method = "POST" if s % 6 == 5 else "GET"
        status = 503 if bad and method == "GET" and s % 10 == 0 else 200
        rt = 0.8 if bad and method == "GET" else 0.05
        lines.append(LINE.format(m=minute % 60, s=s, method=method, status=status, rt=rt))
    return "".join(lines)


def http_samples(text: str) -> dict[str, float]:
    """The derived http_* samples of one scrape, as promtool series strings."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("http_request"):
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def events_through(text: str, component: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pipeline_events_out_total" and sample.labels.get("component") == component:
                return sample.value
    return 0.0


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    logs = tmp_path / "logs"
    (logs / "nginx").mkdir(parents=True)
    (logs / "application").mkdir()
    (logs / "nginx" / "access.log").write_text("")
    port = free_port()
    env = {**os.environ, "LOGS_DIR": str(logs), "DATA_DIR": str(tmp_path / "data"), "OUT_DIR": str(tmp_path / "out"),
           "GEOIP_CITY_DB": str(GEOIP), "API_ADDRESS": f"127.0.0.1:{port}"}
    with open(tmp_path / "daemon.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "--config", str(CONFIG)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=ROOT)
    try:
        yield logs / "nginx" / "access.log", f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class TestSeedAlertRules:
    def test_high_error_rate_and_latency_fire_only_when_degraded(
        self, daemon: tuple[Path, str], tmp_path: Path
    ) -> None:
        access_log, url = daemon
        scrapes: list[dict[str, float]] = []
        text = ""
        for minute in range(HEALTHY + DEGRADED):
            with access_log.open("a") as fh:
                fh.write(minute_of_traffic(minute))
            expected = 60 * (minute + 1)

            def scraped(expected: int = expected) -> str | None:
                code, body = http_get(url)
                return body.decode() if code == 200 and events_through(body.decode(), "http_metrics") >= expected \
                    else None

            text = wait_until(scraped, 60, f"minute {minute} through http_metrics")
            scrapes.append(http_samples(text))

        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()
        last = scrapes[-1]
        assert last['http_requests_total{method="GET",status="503"}'] == 6 * DEGRADED
        assert last['http_requests_total{method="POST",status="200"}'] == 10 * (HEALTHY + DEGRADED)
        assert last['http_request_duration_seconds_count{method="GET"}'] == 50 * (HEALTHY + DEGRADED)

        series = sorted({name for scrape in scrapes for name in scrape})
        input_series = [
            {"series": name, "values": " ".join(repr(s[name]) if name in s else "_" for s in scrapes)}
            for name in series
        ]

        def alerts(name: str, **labels: str) -> list[dict[str, object]]:
            summary = "High error rate on " if name == "HighErrorRate" else "High API latency on "
            description = ("Error rate is above 1% for more than 5 minutes on ." if name == "HighErrorRate"
                           else "95th percentile latency is above 500ms for more than 5 minutes on .")
            return [{"exp_labels": {"severity": "warning", **labels},
                     "exp_annotations": {"summary": summary, "description": description}}]

        healthy_end, degraded_end = f"{HEALTHY - 1}m", f"{HEALTHY + DEGRADED - 1}m"
        tests = {
            "rule_files": [str(RULES)],
            "evaluation_interval": "1m",
            "tests": [{
                "interval": "1m",
                "input_series": input_series,
                "alert_rule_test": [
                    {"eval_time": healthy_end, "alertname": "HighErrorRate", "exp_alerts": []},
                    {"eval_time": healthy_end, "alertname": "HighAPILatency", "exp_alerts": []},
                    {"eval_time": degraded_end, "alertname": "HighErrorRate",
                     "exp_alerts": alerts("HighErrorRate", method="GET", status="503")},
                    # Only GETs are slow: POST's 95th percentile stays under 0.5 s.
                    {"eval_time": degraded_end, "alertname": "HighAPILatency",
                     "exp_alerts": alerts("HighAPILatency", method="GET")},
                ],
            }],
        }
        test_file = tmp_path / "rules.test.yml"
        test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
        proc = subprocess.run(["promtool", "test", "rules", str(test_file)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
