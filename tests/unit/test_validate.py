"""`pipeline validate`: every problem in one pass (load, schema, addresses, builds), exit 2, warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.validate import validate

ROOT = Path(__file__).resolve().parents[2]


def run_validate(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "LOGS_DIR"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full_env,
        timeout=120,
    )


class TestOnePass:
    def test_unset_variable_url_time_zone_and_geoip_file_in_one_run(
        self, write_config: Callable[[str], Path], tmp_path: Path
    ) -> None:
        path = write_config(f"""
            data_dir: {tmp_path}/data
            sources:
              app: {{type: file, include: ["${{LOGS_DIR}}/*.log"]}}
            transforms:
              parsed: {{type: parse, inputs: [app], timezone: Mars/Olympus}}
              geo: {{type: geoip, inputs: [parsed], database: {tmp_path}/nope/GeoLite2-City.mmdb}}
            sinks:
              es: {{type: elasticsearch, inputs: [geo], hosts: ["localhost:9200"]}}
        """)
        proc = run_validate(path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1] == "configuration invalid: 4 problem(s)"
        assert lines[:-1] == [
            f"{path}: sources.app.include[0]: environment variable LOGS_DIR is not set (use ${{LOGS_DIR:-default}})",
            f"{path}: sinks.es.hosts[0]: must be a URL with a scheme (http:// or https://host[:port])",
            f"{path}: transforms.parsed.timezone: unknown timezone 'Mars/Olympus'",
            f"{path}: transforms.geo.database: GeoIP database '{tmp_path}/nope/GeoLite2-City.mmdb': file not found",
        ]

    def test_root_errors_do_not_hide_component_errors(self, write_config: Callable[[str], Path]) -> None:
        path = write_config("""
            queue_capacity: -1
            sources:
              in: {type: stdin, bogus: 1}
            sinks:
              out: {type: blackhole, inputs: [in]}
        """)
        report = validate(path)
        assert any(p.endswith("queue_capacity: Input should be greater than 0") for p in report.problems)
        assert any(p.endswith("sources.in.bogus: unknown key") for p in report.problems)

    def test_logstash_default_syntax_gets_a_hint(self, write_config: Callable[[str], Path]) -> None:
        path = write_config("""
            sources:
              in: {type: stdin, log_type: "${LOG_KIND:application}"}
            sinks:
              out: {type: blackhole, inputs: [in]}
        """)
        report = validate(path, env={})
        assert report.problems == [
            f"{path}: sources.in.log_type: ${{LOG_KIND:application}} is not a default here; "
            "did you mean ${LOG_KIND:-application}? (write $${ for a literal ${)"
        ]

    def test_a_valid_config_says_ok(self, write_config: Callable[[str], Path]) -> None:
        path = write_config("""
            sources:
              in: {type: stdin}
            sinks:
              out: {type: blackhole, inputs: [in]}
        """)
        proc = run_validate(path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"{path}: ok (1 sources, 0 transforms, 1 sinks)"


class TestAddresses:
    def test_urls_and_host_ports(self, write_config: Callable[[str], Path]) -> None:
        path = write_config("""
            sources:
              k: {type: kafka, bootstrap_servers: "broker:9092,broker2", topics: [t], group_id: g}
            sinks:
              es: {type: elasticsearch, inputs: [k], hosts: ["http://ok:9200", "ftp://x", "http://h:99999"]}
              ch: {type: clickhouse, inputs: [k], dsn: "http://:8123"}
        """)
        problems = validate(path).problems
        assert f"{path}: sources.k.bootstrap_servers[1]: 'broker2' must be host:port" in problems
        assert f"{path}: sinks.es.hosts[1]: unsupported scheme 'ftp' (use http or https)" in problems
        assert f"{path}: sinks.es.hosts[2]: the URL's port must be a number from 1 to 65535" in problems
        assert f"{path}: sinks.ch.dsn: the URL has no host" in problems


class TestWarnings:
    def test_a_source_emitting_more_than_a_sink_accepts_is_a_warning_not_an_error(
        self, write_config: Callable[[str], Path], tmp_path: Path
    ) -> None:
        path = write_config(f"""
            data_dir: {tmp_path}/data
            sources:
              app: {{type: file, include: ["{tmp_path}/*.log"], max_line_bytes: 2MiB}}
              small: {{type: file, include: ["{tmp_path}/*.txt"]}}
            transforms:
              parsed: {{type: parse, inputs: [app, small]}}
            sinks:
              kafka: {{type: kafka, inputs: [parsed], bootstrap_servers: "127.0.0.1:9092"}}
              out: {{type: file, inputs: [parsed], path: "{tmp_path}/out.jsonl"}}
        """)
        proc = run_validate(path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"warning: {path}: sinks.kafka: accepts events up to 1 MiB, but sources.app can emit 2 MiB; larger "
            "events are cut to fit and tagged _truncated where the sink can, dead-lettered otherwise"
        ]
        assert proc.stdout.strip().endswith("1 warning(s))")
