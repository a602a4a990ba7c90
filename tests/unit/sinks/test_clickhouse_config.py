"""sinks/clickhouse/config.py: the config model and where a DSN points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sinks.clickhouse.config import ClickHouseSinkConfig, redact, resolve_target


def make(**overrides: Any) -> ClickHouseSinkConfig:
    return ClickHouseSinkConfig.model_validate({"type": "clickhouse", "inputs": ["src"], **overrides})


class TestResolveTarget:
    @pytest.mark.parametrize(("dsn", "expected"), [
        pytest.param("chdb:", "DATA/clickhouse", id="default-under-data-dir"),
        pytest.param("chdb://", "DATA/clickhouse", id="empty-authority"),
        pytest.param("chdb:///abs/ch", "/abs/ch", id="absolute"),
        pytest.param("chdb:rel/ch", "CWD/rel/ch", id="relative"),
        pytest.param("chdb:./rel/ch", "CWD/rel/ch", id="dot-relative"),
        pytest.param("chdb://./rel/ch", "CWD/rel/ch", id="authority-dot-relative"),
        pytest.param("chdb://rel/ch", "CWD/rel/ch", id="authority-relative"),
        pytest.param("chdb://../up/ch", "PARENT/up/ch", id="parent-relative"),
        pytest.param("chdb:///abs/ch/", "/abs/ch", id="trailing-slash"),
    ])
    def test_embedded_paths(self, dsn: str, expected: str, tmp_path: Path) -> None:
        cwd = tmp_path / "work"
        cwd.mkdir()
        data = Path("data")  # relative data_dir, as in the default config
        target = resolve_target(dsn, data, cwd=cwd)
        want = (expected.replace("DATA", str(cwd / "data")).replace("CWD", str(cwd))
                .replace("PARENT", str(tmp_path)))
        assert target.embedded and target.path == Path(want)

    @pytest.mark.parametrize("dsn", ["chdb://memory", "chdb://:memory:", "chdb:memory"])
    def test_memory(self, dsn: str) -> None:
        target = resolve_target(dsn, Path("data"))
        assert target.embedded and target.path is None

    def test_server_dsn_loses_its_database_but_keeps_the_rest(self) -> None:
        target = resolve_target("https://u:p@ch.example:8443/logs?compress=lz4", Path("data"))
        assert not target.embedded
        assert target.server_dsn == "https://u:p@ch.example:8443?compress=lz4"
        assert "p@" not in target.describe() and "***" in target.describe()


class TestModel:
    def test_defaults(self) -> None:
        config = make()
        assert (config.dsn, config.effective_database, config.table) == ("chdb:", "logs", "{log_type}_logs")
        assert config.create_tables and config.dedup and config.retention_days == 30

    def test_database_from_server_dsn(self) -> None:
        assert make(dsn="http://ch:8123/weblogs").effective_database == "weblogs"
        assert make(dsn="http://ch:8123/weblogs", database="weblogs").effective_database == "weblogs"
        assert make(dsn="http://ch:8123", database="x").effective_database == "x"

    @pytest.mark.parametrize("overrides", [
        pytest.param({"dsn": "clickhouse://x"}, id="unknown-scheme"),
        pytest.param({"dsn": "http:///db"}, id="no-host"),
        pytest.param({"dsn": "http://ch:8123/a", "database": "b"}, id="two-databases"),
        pytest.param({"database": "logs; DROP"}, id="bad-database"),
        pytest.param({"table": "{host}_logs"}, id="unsupported-placeholder"),
        pytest.param({"table": "a-b"}, id="bad-table"),
        pytest.param({"password": "x", "password_file": "/p"}, id="password-twice"),
        pytest.param({"retention_days": -1}, id="negative-retention"),
    ])
    def test_invalid(self, overrides: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            make(**overrides)


def test_redact() -> None:
    assert redact("http://user:secret@host:8123/db") == "http://user:***@host:8123/db"
    assert redact("http://host:8123") == "http://host:8123"
