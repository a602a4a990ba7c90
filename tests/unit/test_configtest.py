"""`pipeline test` (pipeline/configtest.py): config unit tests, their diff, their exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.configtest import main
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "examples" / "seed-logstash.yaml"
GEOIP = ROOT / "tests" / "data" / "geoip" / "GeoLite2-City-Test.mmdb"

CONFIG = """
sources:
  app: {type: stdin, log_type: application, fields: {service: api}}
transforms:
  parsed: {type: parse, inputs: [app]}
  router: {type: route, inputs: [parsed], routes: {errors: {field: level, equals: ERROR}}}
  tagged: {type: mutate, inputs: [router.errors], operations: [{add_tags: [error]}, {set: {env: "${ENV_NAME:-dev}"}}]}
  sampled: {type: sample, inputs: [router._unmatched], rate: 0.5}
sinks:
  out: {type: blackhole, inputs: [tagged, sampled]}
"""


def write(tmp_path: Path, tests: str, config: str = CONFIG) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(config))
    (tmp_path / "pipeline.test.yaml").write_text(textwrap.dedent(tests))
    return path


def run(path: Path, *tests: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(str(path), list(tests), out=out)
    return code, out.getvalue()


class TestPassing:
    def test_lines_at_a_source_through_routes_to_a_sink(self, tmp_path: Path) -> None:
        path = write(tmp_path, """
            env: {ENV_NAME: staging}
            tests:
              - name: errors are tagged, the rest sampled
                inputs:
                  - insert_at: app
                    lines: ["2024-10-10 13:55:36,123 ERROR app.db - refused", "2024-10-10 13:55:37,000 INFO a - x",
                            "2024-10-10 13:55:38,000 INFO a - y"]
                outputs:
                  - extract_from: router.errors
                    events: [{level: ERROR, fields: {service: api}, tags: null}]
                  - extract_from: tagged
                    events: [{level: ERROR, tags: [error], env: staging}]
                  - extract_from: out
                    events: [{message: refused}, {message: x}]
                    conditions: [{field: log_type, equals: application}]
              - name: state starts afresh in each test (the sampler keeps the first event again)
                inputs: [{insert_at: sampled, events: [{message: first}, {message: second}]}]
                outputs: [{extract_from: sampled, events: [{message: first}]}]
        """)
        code, out = run(path)
        assert code == 0, out
        assert "2 passed, 0 failed" in out

    def test_the_shipped_example_and_its_tests_pass(self) -> None:
        env = {**os.environ, "GEOIP_CITY_DB": str(GEOIP)}
        proc = subprocess.run([sys.executable, "-m", "pipeline", "test", "--config", str(EXAMPLE)],
                              capture_output=True, text=True, cwd=ROOT, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert " 0 failed" in proc.stdout and "FAIL" not in proc.stdout


class TestFailing:
    def test_a_mismatch_exits_1_with_a_readable_diff(self, tmp_path: Path) -> None:
        path = write(tmp_path, """
            tests:
              - name: wrong expectations
                inputs: [{insert_at: app, lines: ["2024-10-10 13:55:36,123 ERROR app.db - refused"]}]
                outputs:
                  - extract_from: tagged
                    events: [{level: "WARN", tags: [error, x], fields: {service: "500"}, env: null, nothere: 1}]
                  - extract_from: sampled
                    events: [{message: anything}]
                  - extract_from: tagged
                    conditions: [{field: env, equals: prod}]
        """)
        code, out = run(path)
        assert code == 1
        assert "FAIL  wrong expectations" in out and "0 passed, 1 failed" in out
        assert 'level: expected "WARN" (str), got "ERROR" (str)' in out
        assert 'tags: expected ["error","x"], got ["error"]' in out
        assert 'env: expected null (NoneType), got "dev" (str)' in out
        assert "nothere: expected 1 (int), got nothing (absent)" in out
        assert "at sampled: expected 1 event(s), got 0" in out
        assert 'at tagged, event 1 of 1: does not meet {"equals":"prod","field":"env"}' in out
        assert '      got: {"@timestamp":"2024-10-10T13:55:36.123Z"' in out

    @pytest.mark.parametrize(("expected", "actual"), [("'500'", 500), ("true", 1), ("1", True)])
    def test_types_matter(self, tmp_path: Path, expected: str, actual: object) -> None:
        path = write(tmp_path, f"""
            tests:
              - name: t
                inputs: [{{insert_at: sampled, events: [{{v: {actual!r}}}]}}]
                outputs: [{{extract_from: sampled, events: [{{v: {expected}}}]}}]
        """.replace("True", "true"))
        assert run(path)[0] == 1


class TestInvalid:
    @pytest.mark.parametrize(("tests", "problem"), [
        pytest.param("tests: [{name: t, inputs: [{insert_at: nope, lines: [x]}], outputs: [{extract_from: out, "
                     "events: []}]}]", "tests[0].inputs[0].insert_at: no source or transform 'nope'", id="insert"),
        pytest.param("tests: [{name: t, inputs: [{insert_at: app, lines: [x]}], outputs: [{extract_from: router, "
                     "events: []}]}]", "'router' has named outputs", id="route-output"),
        pytest.param("tests: [{name: t, inputs: [{insert_at: app, lines: [x], events: []}], outputs: "
                     "[{extract_from: out, events: []}]}]", "exactly one of `lines` or `events`", id="both"),
        pytest.param("tests: [{name: t, inputs: [{insert_at: app, lines: [x]}], outputs: [{extract_from: out}]}]",
                     "checks `events`, `conditions` or both", id="nothing-checked"),
        pytest.param("tests: [{name: t, colour: red, inputs: [], outputs: []}]", "tests[0].colour: Extra inputs",
                     id="unknown-key"),
    ])
    def test_invalid_test_files_name_the_key(self, tmp_path: Path, tests: str, problem: str) -> None:
        path = write(tmp_path, tests)
        with pytest.raises(ConfigError) as info:
            run(path)
        assert any(problem in p for p in info.value.problems), info.value.problems

    def test_cli_exit_2_without_a_test_file_or_with_an_invalid_config(self, tmp_path: Path) -> None:
        config = tmp_path / "lonely.yaml"
        config.write_text(CONFIG)
        proc = subprocess.run([sys.executable, "-m", "pipeline", "test", "--config", str(config)],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and "no test file given" in proc.stderr
        config.write_text(CONFIG.replace("rate: 0.5", "rate: 5"))
        (tmp_path / "lonely.test.yaml").write_text("tests: [{name: t, inputs: [{insert_at: app, lines: [x]}], "
                                                   "outputs: [{extract_from: out, events: []}]}]")
        proc = subprocess.run([sys.executable, "-m", "pipeline", "test", "--config", str(config)],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and "transforms.sampled.rate" in proc.stderr
