"""The multiline config model of the file/container sources (pipeline/sources/file_config.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.unit.sources.harness import file_config, run_once

CONTAINERS = Path(__file__).resolve().parents[2] / "data" / "containers"


class TestModel:
    @pytest.mark.parametrize(
        ("multiline", "message"),
        [
            pytest.param({"type": "count"}, "needs `count_lines`", id="count-without-n"),
            pytest.param({"type": "count", "count_lines": 2, "pattern": "^a"}, "takes no", id="count-with-pattern"),
            pytest.param({"type": "count", "count_lines": 0}, "greater than 0", id="count-zero"),
            pytest.param({"pattern": "^a", "count_lines": 2}, "only for type `count`", id="n-without-count"),
            pytest.param({"type": "while_pattern", "preset": "go_panic"}, "presets are of type", id="while-preset"),
            pytest.param({"type": "while_pattern"}, "exactly one of", id="while-nothing"),
            pytest.param({"pattern": "^%{NOT_A_PATTERN}"}, "NOT_A_PATTERN", id="unknown-grok"),
            pytest.param({"preset": "cobol_dump"}, "python_traceback", id="unknown-preset"),
        ],
    )
    def test_bad_settings_are_config_errors(self, multiline: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            file_config(include=["/x"], multiline=multiline)

    @pytest.mark.parametrize(
        ("multiline", "mode"),
        [
            pytest.param({"type": "count", "count_lines": 3}, "count", id="count"),
            pytest.param({"type": "while_pattern", "pattern": r"^\s"}, "while_pattern", id="while"),
            pytest.param({"pattern": "^%{TIMESTAMP_ISO8601} ", "negate": True}, "pattern", id="grok"),
            pytest.param({"preset": "go_panic"}, "pattern", id="go-preset"),
            pytest.param({"preset": "ruby_backtrace", "max_lines": 9}, "pattern", id="ruby-preset-override"),
        ],
    )
    def test_builds(self, multiline: dict[str, Any], mode: str) -> None:
        cfg = file_config(include=["/x"], multiline=multiline).multiline
        assert cfg is not None
        joiner = cfg.build()
        assert joiner.mode == mode
        assert joiner.max_lines == multiline.get("max_lines", 500)


class TestThroughTheFileSource:
    async def test_go_panic_preset_reads_a_real_trace(self, logs: Path, data_dir: Path) -> None:
        path = logs / "worker.log"
        shutil.copy(CONTAINERS / "go-panic.log", path)
        h = await run_once(file_config(include=[str(path)], multiline={"preset": "go_panic"}), data_dir)
        heads = [e["message"].split("\n", 1)[0] for e in h.events]
        assert heads.count("SIGQUIT: quit") == 1
        assert "panic: runtime error: invalid memory address or nil pointer dereference" in heads
        assert h.offsets()[str(path)] == path.stat().st_size

    async def test_count_type(self, logs: Path, data_dir: Path) -> None:
        path = logs / "pairs.log"
        path.write_text("k1\nv1\nk2\nv2\n")
        h = await run_once(file_config(include=[str(path)], multiline={"type": "count", "count_lines": 2}), data_dir)
        assert [e["message"] for e in h.events] == ["k1\nv1", "k2\nv2"]
