"""Fuzzing the config loader: any bytes, any YAML shape, any values under any key.

`load_config` and `parse_config` either return a config or raise ConfigError with problems
that name the file; nothing else escapes (no TypeError from a list where a mapping was
expected, no RecursionError from YAML aliases, no traceback). Secrets given through `${VAR}`
never appear in the problems, whatever the key they land under. Hypothesis runs with
`deadline=None` on bounded sizes (see tests/unit/parsers/test_fuzz.py on timing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import load_config, parse_config
from pipeline.errors import ConfigError

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SECRET = "s3cret-FUZZ-value"

KEYS = ["type", "inputs", "include", "path", "hosts", "dsn", "bootstrap_servers", "tls", "sasl", "password_file",
        "api", "address", "data_dir", "batch", "max_events", "rules", "targets", "when", "log_type", "multiline",
        "pattern", "grok", "index", "topic", "ca_file", "verify", "mode", "username"]  # fmt: skip
# Secrets are held under these keys (SecretStr): wherever they are, no problem message may show them.
SECRET_VALUES = st.sampled_from(["${PASSWORD}", SECRET, "${PASSWORD}${PASSWORD}", 12345])
secret_entries = st.fixed_dictionaries(
    {},
    optional={
        "password": SECRET_VALUES, "token": SECRET_VALUES, "api_key": SECRET_VALUES, "bearer_token": SECRET_VALUES,
        "url": SECRET_VALUES, "secret": SECRET_VALUES,
        "sasl": st.fixed_dictionaries({"password": SECRET_VALUES}, optional={"username": st.text(max_size=3)}),
        "tls": st.fixed_dictionaries({"key_password": SECRET_VALUES}, optional={"cert_file": st.just("/nope")}),
    },
)  # fmt: skip
TYPES = ["file", "kafka", "stdin", "container", "parse", "geoip", "elasticsearch", "clickhouse", "webhook",
         "console", "blackhole", "nope", ""]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=30),
    st.sampled_from(TYPES), st.just("${MISSING}"), st.just("${X:-d}"),
    st.just("10MiB"), st.just("5s"), st.just("-1s"), st.just("127.0.0.1:9092"), st.just("https://h:1/"),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=25,
)
component = st.tuples(st.dictionaries(st.sampled_from(KEYS), values, max_size=6), secret_entries).map(
    lambda pair: {**pair[0], **pair[1], "type": pair[0].get("type", "file")}
)
documents = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "sources": st.dictionaries(st.text(min_size=1, max_size=6), st.one_of(component, values), max_size=3),
            "transforms": st.dictionaries(st.text(min_size=1, max_size=6), st.one_of(component, values), max_size=2),
            "sinks": st.dictionaries(st.text(min_size=1, max_size=6), st.one_of(component, values), max_size=3),
            "api": st.one_of(
                values,
                st.tuples(st.dictionaries(st.sampled_from(["address", "tls", "enabled"]), values), secret_entries).map(
                    lambda pair: {**pair[0], **{k: v for k, v in pair[1].items() if k in ("token", "tls")}}
                ),
            ),
            "data_dir": values,
        },
    ),
)


def outcome(load: Any) -> list[str] | None:
    """None when the config loaded; its problems when it did not. Anything else propagates."""
    try:
        load()
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must say what is wrong"
        return exc.problems
    return None


class TestConfigLoader:
    @FUZZ
    @given(doc=documents)
    def test_any_document_loads_or_is_a_config_error(self, doc: Any) -> None:
        problems = outcome(lambda: parse_config(doc, "fuzz.yaml", {"PASSWORD": SECRET}))
        for problem in problems or []:
            assert problem.startswith("fuzz.yaml: ")
            assert SECRET not in problem and "12345" not in problem, problem

    @FUZZ
    @given(raw=st.one_of(st.binary(max_size=2048), st.text(max_size=1024).map(str.encode)))
    def test_any_bytes_on_disk_load_or_are_a_config_error(self, tmp_path: Path, raw: bytes) -> None:
        path = tmp_path / "fuzz.yaml"
        path.write_bytes(raw)
        problems = outcome(lambda: load_config(path, env={}))
        assert problems is None or all(p.startswith(str(path)) for p in problems)

    def test_yaml_alias_bombs_are_bounded(self, tmp_path: Path) -> None:
        # The "billion laughs": nested aliases that expand exponentially if walked naively.
        lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
        for i in range(1, 9):
            prev = chr(ord("a") + i - 1)
            cur = chr(ord("a") + i)
            lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]")
        lines.append("sinks: {x: {type: console, inputs: *i}}")
        path = tmp_path / "bomb.yaml"
        path.write_text("\n".join(lines) + "\n")
        problems = outcome(lambda: load_config(path, env={}))
        assert problems and all(p.startswith(str(path)) for p in problems)
