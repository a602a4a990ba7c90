"""Config loading: interpolation, typed models, every error named, graph checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.interpolate import interpolate
from pipeline.units import parse_duration, parse_size


class TestInterpolation:
    def test_variable_and_default(self) -> None:
        env = {"A": "x"}
        assert interpolate({"k": "${A}-${B:-y}"}, env) == {"k": "x-y"}

    def test_whole_value_keeps_scalar_type(self) -> None:
        assert interpolate({"n": "${N:-500}"}, {}) == {"n": 500}

    def test_missing_without_default_names_the_key(self) -> None:
        errors: list[str] = []
        interpolate({"sinks": {"es": {"password": "${ES_PW}"}}}, {}, errors=errors)
        assert errors == ["sinks.es.password: environment variable ES_PW is not set (use ${ES_PW:-default})"]

    def test_escaped_dollar(self) -> None:
        assert interpolate({"k": "$${HOME}"}, {"HOME": "/root"}) == {"k": "${HOME}"}


class TestUnits:
    @pytest.mark.parametrize(("raw", "secs"), [("5s", 5.0), ("250ms", 0.25), ("2m", 120.0), (3, 3.0)])
    def test_durations(self, raw: object, secs: float) -> None:
        assert parse_duration(raw) == secs

    @pytest.mark.parametrize(("raw", "size"), [("10MiB", 10 * 1024 * 1024), ("1KB", 1000), (42, 42)])
    def test_sizes(self, raw: object, size: int) -> None:
        assert parse_size(raw) == size

    def test_bad_duration(self) -> None:
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration("soon")


class TestLoadConfig:
    def test_valid_minimal(self, write_config) -> None:
        path = write_config("""
            sources:
              in: {type: stdin}
            sinks:
              out: {type: blackhole, inputs: [in]}
        """)
        cfg = load_config(path)
        assert list(cfg.sources) == ["in"] and list(cfg.sinks) == ["out"]

    def test_unknown_key_wrong_type_unknown_input_all_reported(self, write_config) -> None:
        path = write_config("""
            sources:
              in: {type: stdin, colour: red}
            sinks:
              out: {type: file, inputs: [in, nowhere], path: out.jsonl, max_open_files: many}
        """)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        problems = info.value.problems
        assert f"{path}: sources.in.colour: unknown key" in problems
        assert any(p.startswith(f"{path}: sinks.out.max_open_files: ") and "integer" in p for p in problems)
        assert f"{path}: sinks.out.inputs[1]: unknown input 'nowhere'" in problems

    def test_unknown_type_lists_known(self, write_config) -> None:
        path = write_config("""
            sources:
              in: {type: carrier_pigeon}
            sinks:
              out: {type: blackhole, inputs: [in]}
        """)
        expected = r"sources.in.type: unknown source type 'carrier_pigeon' \(known: .*stdin"
        with pytest.raises(ConfigError, match=expected):
            load_config(path)

    def test_graph_errors(self, write_config) -> None:
        path = write_config("""
            sources:
              a: {type: stdin}
              unused: {type: stdin}
            transforms:
              t1: {type: parse, inputs: [t2]}
              t2: {type: parse, inputs: [t1]}
            sinks:
              out: {type: blackhole, inputs: [a, t1]}
        """)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        text = "\n".join(info.value.problems)
        assert "sources.unused: unused source" in text
        assert "cycle" in text

    def test_sink_without_inputs(self, write_config) -> None:
        path = write_config("""
            sources:
              a: {type: stdin}
            sinks:
              used: {type: blackhole, inputs: [a]}
              lonely: {type: blackhole, inputs: []}
        """)
        with pytest.raises(ConfigError, match=r"sinks.lonely.inputs: "):
            load_config(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read config"):
            load_config(tmp_path / "nope.yaml")


class TestValidateCommand:
    def test_exit_code_2_names_file_component_key(self, write_config) -> None:
        path = write_config("""
            sources:
              in: {type: stdin, colour: red}
            sinks:
              out: {type: file, inputs: [in, nowhere], path: out.jsonl, max_open_files: many}
        """)
        proc = subprocess.run([sys.executable, "-m", "pipeline", "validate", "--config", str(path)],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert f"{path}: sources.in.colour: unknown key" in proc.stderr
        assert f"{path}: sinks.out.max_open_files:" in proc.stderr
        assert f"{path}: sinks.out.inputs[1]: unknown input 'nowhere'" in proc.stderr


class TestLazyComponents:
    def test_a_file_only_config_does_not_import_the_kafka_or_es_clients(self, write_config) -> None:
        path = write_config("""
            sources:
              in: {type: stdin}
            sinks:
              out: {type: file, inputs: [in], path: out.jsonl}
        """)
        code = ("import sys; from pipeline.config import load_config; load_config(sys.argv[1]); "
                "print(sorted(m for m in ('aiokafka', 'elasticsearch', 'clickhouse_connect') if m in sys.modules))")
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "[]"


class TestBuildErrorsNameTheKey:
    """Errors found when a component is built name its own option, not a guess from the message text."""

    @pytest.mark.parametrize(
        ("option", "expected"),
        [
            pytest.param("timezone: Mars/Olympus", "transforms.p.timezone: unknown timezone 'Mars/Olympus'", id="tz"),
            pytest.param('grok: ["%{NOPE:x}"]', "transforms.p.grok: unknown grok pattern %{NOPE}", id="grok"),
            pytest.param('date_formats: [""]', "transforms.p.date_formats: invalid date format ''", id="date"),
        ],
    )
    def test_parse_transform(self, write_config, option: str, expected: str) -> None:
        from pipeline.topology import Topology

        path = write_config(f"""
            sources:
              in: {{type: stdin}}
            transforms:
              p: {{type: parse, inputs: [in], {option}}}
            sinks:
              out: {{type: blackhole, inputs: [p]}}
        """)
        with pytest.raises(ConfigError) as err:
            Topology(load_config(path), once=True)
        assert len(err.value.problems) == 1
        assert err.value.problems[0].startswith(f"{path}: {expected}")


class TestParseEcsCompatibility:
    def test_v1_accepted_and_unknown_set_names_the_key(self, write_config) -> None:
        good = write_config("""
            sources:
              in: {type: stdin}
            transforms:
              p: {type: parse, inputs: [in], grok: ["%{SYSLOGLINE}"], ecs_compatibility: v1}
            sinks:
              out: {type: blackhole, inputs: [p]}
        """)
        assert load_config(good).transforms["p"].ecs_compatibility == "v1"  # type: ignore[union-attr]
        bad = write_config("""
            sources:
              in: {type: stdin}
            transforms:
              p: {type: parse, inputs: [in], ecs_compatibility: v8}
            sinks:
              out: {type: blackhole, inputs: [p]}
        """)
        with pytest.raises(ConfigError) as info:
            load_config(bad)
        assert any(p.startswith(f"{bad}: transforms.p.ecs_compatibility: ") for p in info.value.problems)
