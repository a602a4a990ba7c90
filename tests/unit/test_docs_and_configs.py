"""The shipped configs validate, and the config reference is current."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.schema import render_reference

ROOT = Path(__file__).resolve().parents[2]
# The shipped configs and the examples; `*.test.yaml` are `pipeline test` files, not configs.
CONFIGS = sorted(p for p in [*(ROOT / "config").glob("*.yaml"), *(ROOT / "config" / "examples").glob("*.yaml")]
                 if not p.name.endswith(".test.yaml"))
GEOIP = ROOT / "tests" / "data" / "geoip"
# The agent and processor configs point at /usr/share/GeoIP by default (the DaemonSet mounts it);
# here the test databases stand in, through the same variables an operator would set.
ENV = {**os.environ, "GEOIP_CITY_DB": str(GEOIP / "GeoLite2-City-Test.mmdb"),
       "GEOIP_ASN_DB": str(GEOIP / "GeoLite2-ASN-Test.mmdb"),
       # config/examples/ take their paths and URLs from the environment.
       "LOGS_DIR": "/var/log", "DATA_DIR": "/tmp/pipeline-validate", "OUT_DIR": "/tmp/pipeline-validate/out",
       "WEBHOOK_URL": "http://127.0.0.1:9093/api/v2/alerts"}


class TestShippedConfigs:
    def test_there_are_configs(self) -> None:
        assert {p.name for p in CONFIGS} >= {
            "local.yaml", "agent.yaml", "processor.yaml", "seed-alerts.yaml", "seed-logstash.yaml", "docker-host.yaml"}

    @pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(ROOT / "config")) for p in CONFIGS])
    def test_validates(self, path: Path) -> None:
        proc = subprocess.run([sys.executable, "-m", "pipeline", "validate", "--config", str(path)],
                              capture_output=True, text=True, cwd=ROOT, env=ENV)
        assert proc.returncode == 0, proc.stderr


class TestReference:
    def test_committed_reference_is_current(self) -> None:
        committed = (ROOT / "docs" / "configuration.md").read_text()
        assert committed == render_reference(), (
            "docs/configuration.md is stale: run `python -m pipeline.schema > docs/configuration.md`")

    def test_every_component_is_documented(self) -> None:
        text = render_reference()
        for name in ("stdin", "file", "container", "kafka", "parse", "geoip", "mutate", "filter", "route", "sample",
                     "throttle", "dedupe", "log_to_metric", "elasticsearch", "clickhouse", "webhook", "console",
                     "blackhole"):
            assert f"### `{name}`" in text
