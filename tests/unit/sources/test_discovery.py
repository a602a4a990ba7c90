"""Glob expansion, excludes and watch targets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.sources.discovery import Discovery, base_dir, glob_to_regex, needs_recursive_watch


class TestGlobRegex:
    @pytest.mark.parametrize(("pattern", "path", "expected"), [
        pytest.param("/a/*.log", "/a/x.log", True, id="star"),
        pytest.param("/a/*.log", "/a/b/x.log", False, id="star-does-not-cross-slash"),
        pytest.param("/a/**/*.log", "/a/x.log", True, id="globstar-zero-dirs"),
        pytest.param("/a/**/*.log", "/a/b/c/x.log", True, id="globstar-many-dirs"),
        pytest.param("/a/*.log.[0-9]", "/a/x.log.3", True, id="class"),
        pytest.param("/a/*.log.[!0-9]", "/a/x.log.3", False, id="negated-class"),
        pytest.param("/a/x?.log", "/a/x1.log", True, id="question"),
        pytest.param("*.gz", "/a/x.gz", False, id="relative-pattern-is-anchored"),
        pytest.param("**/*.gz", "/a/x.gz", True, id="globstar-prefix"),
    ])
    def test_matches_like_a_shell_glob(self, pattern: str, path: str, expected: bool) -> None:
        assert bool(glob_to_regex(pattern).match(path)) is expected


class TestBaseDir:
    @pytest.mark.parametrize(("pattern", "base", "recursive"), [
        pytest.param("/var/log/containers/*.log", "/var/log/containers", False, id="flat"),
        pytest.param("/var/log/pods/*/*/*.log", "/var/log/pods", True, id="nested"),
        pytest.param("/var/log/**/*.log", "/var/log", True, id="globstar"),
        pytest.param("/var/log/app.log", "/var/log", False, id="plain-file"),
        pytest.param("logs/*.log", "logs", False, id="relative"),
    ])
    def test_base_and_recursion(self, pattern: str, base: str, recursive: bool) -> None:
        assert base_dir(pattern) == base
        assert needs_recursive_watch(pattern) is recursive


class TestScan:
    def test_include_recursive_and_exclude(self, tmp_path: Path) -> None:
        for rel in ["a.log", "b.log.1", "sub/c.log", "sub/deep/d.log", "sub/e.txt", "old.log.gz"]:
            p = tmp_path / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x\n")
        d = Discovery([f"{tmp_path}/**/*.log*"], exclude=[f"{tmp_path}/**/*.gz"])
        found = {os.path.relpath(p, tmp_path) for p in d.scan()}
        assert found == {"a.log", "b.log.1", "sub/c.log", "sub/deep/d.log"}

    def test_overlapping_includes_yield_each_path_once(self, tmp_path: Path) -> None:
        (tmp_path / "a.log").write_text("x\n")
        d = Discovery([f"{tmp_path}/*.log", f"{tmp_path}/a.*"])
        assert d.scan() == [f"{tmp_path}/a.log"]

    def test_watch_targets_are_existing_base_dirs(self, tmp_path: Path) -> None:
        (tmp_path / "x").mkdir()
        d = Discovery([f"{tmp_path}/x/*.log", f"{tmp_path}/missing/*.log", f"{tmp_path}/**/*.log"])
        dirs, recursive = d.watch_targets()
        assert dirs == [str(tmp_path)]  # x is inside tmp_path, missing does not exist
        assert recursive
