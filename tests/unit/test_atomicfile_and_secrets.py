"""pipeline/atomicfile.py (crash-safe, owner-only writes) and pipeline/secrets.py (the *_file rule)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.atomicfile import tmp_path, write_atomic
from pipeline.errors import ConfigError
from pipeline.secrets import read_secret_file, secret_value


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(old)


class TestWriteAtomic:
    def test_replaces_and_keeps_a_backup(self, tmp_path: Path) -> None:
        target = tmp_path / "state" / "s.json"
        write_atomic(target, b"one")
        write_atomic(target, b"two", backup=target.with_suffix(".bak"))
        assert target.read_bytes() == b"two"
        assert target.with_suffix(".bak").read_bytes() == b"one"
        assert not tmp_path_exists(target)

    def test_owner_only_even_under_a_permissive_umask(self, tmp_path: Path, permissive_umask: None) -> None:
        target = tmp_path / "new-dir" / "s.json"
        write_atomic(target, b"x")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700

    def test_a_leftover_temp_file_is_overwritten(self, tmp_path: Path) -> None:
        target = tmp_path / "s.json"
        tmp_path_of = tmp_path / "s.json.tmp"
        tmp_path_of.write_bytes(b"torn garbage from a crash" * 100)
        write_atomic(target, b"ok")
        assert target.read_bytes() == b"ok"
        assert not tmp_path_of.exists()


def tmp_path_exists(target: Path) -> bool:
    return tmp_path(target).exists()


class TestSecrets:
    def test_value_wins(self, tmp_path: Path) -> None:
        assert secret_value(SecretStr("s3cret"), None, "password") == "s3cret"

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            pytest.param("s3cret\n", "s3cret", id="newline"),
            pytest.param("s3cret\r\n", "s3cret", id="crlf"),
            pytest.param("  spaced secret \n", "  spaced secret ", id="inner-and-outer-spaces-kept"),
            pytest.param("s3cret", "s3cret", id="no-newline"),
        ],
    )
    def test_file_strips_trailing_line_endings_only(self, tmp_path: Path, content: str, expected: str) -> None:
        path = tmp_path / "secret"
        path.write_text(content)
        assert secret_value(None, path, "password") == expected

    def test_unreadable_file_names_the_key_not_the_content(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError) as err:
            read_secret_file(tmp_path / "missing", "sasl.password_file")
        assert err.value.problems == [
            f"sasl.password_file: cannot read {tmp_path / 'missing'}: No such file or directory"
        ]

    def test_neither_is_none(self) -> None:
        assert secret_value(None, None, "api_key") is None
