"""The README's first command: the embedded default over the sample logs, end to end.

Runs in a copy of config/ and examples/ (relative paths, as a user runs it), so it
also guards against anything changing the working directory under the sources
(chDB's first import once did, and some sources then read nothing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "GEOIP_", "ALERTMANAGER_"))}
    return subprocess.run([sys.executable, "-m", "pipeline", "--log-level", "warning", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


class TestLocalDefault:
    def test_once_reads_every_sample_and_stores_it(self, tmp_path: Path) -> None:
        shutil.copytree(ROOT / "config", tmp_path / "config")
        shutil.copytree(ROOT / "examples", tmp_path / "examples")
        proc = _run(tmp_path, "run", "--config", "config/local.yaml", "--once")
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = {m.group(1): (m.group(2), int(m.group(3)))
                for m in re.finditer(r"^(\S+)\s+(source|transform|sink)\s+\S+\s+\S+\s+(\d+)", proc.stdout, re.M)}
        sources = {n: out for n, (kind, out) in rows.items() if kind == "source"}
        assert set(sources) == {"app_json", "app_text", "nginx_access", "nginx_error", "containers"}
        assert all(out > 0 for out in sources.values()), sources
        total = sum(sources.values())
        for sink in ("clickhouse", "files", "alerts"):
            assert rows[sink] == ("sink", total)

        written = sum(len(p.read_text().splitlines()) for p in (tmp_path / "data" / "out").glob("*.jsonl"))
        assert written == total
        alerts = [json.loads(line) for line in (tmp_path / "data" / "alerts.jsonl").read_text().splitlines()]
        assert {a["rule"] for a in alerts} >= {"ApplicationError", "HttpServerError"}

        query = _run(tmp_path, "query", "--config", "config/local.yaml",
                     "SELECT count() AS n FROM logs.access_logs WHERE status >= 500")
        assert query.returncode == 0, query.stderr
        assert re.search(r"^\s*\d+\s*$", query.stdout, re.M), query.stdout

        again = _run(tmp_path, "run", "--config", "config/local.yaml", "--once")
        assert again.returncode == 0
        assert re.search(r"summary: 0 events read", again.stdout), "a second run re-read checkpointed files"
