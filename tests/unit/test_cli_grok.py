"""`pipeline grok`: every built-in name of both pattern sets is accepted, and --ecs-compatibility picks the set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from parsers.patterns import builtin_pattern_names, builtin_patterns

from .parsers.test_patterns import ALL_SAMPLES

ROOT = Path(__file__).resolve().parents[2]


def _grok(*args: str, stdin: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--log-level", "warning", "grok", *args],
        input=stdin.encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


class TestGrokCommand:
    @pytest.mark.parametrize("ecs", ["disabled", "v1"])
    def test_every_builtin_name_is_accepted_and_matches_its_sample(self, ecs: str) -> None:
        names = builtin_pattern_names(ecs)
        defs = builtin_patterns(ecs)
        # One expression per name, each tied to its own sample line by a "<i>" marker, so line i
        # is matched by expression i and by no earlier one (a name anchored with "^" takes its line bare).
        anchored = {name for name in names if defs[name].startswith("^")}
        exprs = [f"%{{{n}:m}}" if n in anchored else rf"^<{i}>.*?%{{{n}:m}}" for i, n in enumerate(names)]
        lines = "".join(
            (ALL_SAMPLES[n][0] if n in anchored else f"<{i}> {ALL_SAMPLES[n][0]}").replace("\n", " ") + "\n"
            for i, n in enumerate(names)
        )
        proc = _grok("--ecs-compatibility", ecs, *exprs, stdin=lines)
        assert proc.returncode == 0, proc.stderr.decode()
        results = [orjson.loads(line) for line in proc.stdout.splitlines()]
        assert len(results) == len(names)
        unmatched = [name for name, got in zip(names, results, strict=True) if got is None]
        assert unmatched == []

    def test_ecs_flag_selects_ecs_names(self) -> None:
        line = "Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8\n"
        legacy = _grok("%{SYSLOGBASE}", stdin=line)
        ecs = _grok("--ecs-compatibility", "v1", "%{SYSLOGBASE}", stdin=line)
        assert orjson.loads(legacy.stdout) == {"timestamp": "Oct 11 22:14:15", "logsource": "mymachine",
                                               "program": "su", "pid": "230"}  # fmt: skip
        assert orjson.loads(ecs.stdout) == {"timestamp": "Oct 11 22:14:15", "host": {"hostname": "mymachine"},
                                            "process": {"name": "su", "pid": 230}}  # fmt: skip

    def test_unknown_set_is_a_usage_error(self) -> None:
        proc = _grok("--ecs-compatibility", "v8", "%{WORD}", stdin="x\n")
        assert proc.returncode == 2
        assert b"--ecs-compatibility" in proc.stderr
