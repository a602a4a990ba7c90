"""Restart resumes from the checkpoint: `pipeline run --once` twice over unchanged files.

Runs the real CLI over a copy of examples/logs with a file source (multiline) and a
container source: the first run ships every record, the second ships nothing, and after
an append the third ships exactly the new lines.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import orjson
import pytest

from tests.reliability.file_daemon import ROOT, DaemonProcess

pytestmark = pytest.mark.reliability


def _config(tmp: Path, logs: Path) -> Path:
    cfg = tmp / "pipeline.yaml"
    cfg.write_text(textwrap.dedent(f"""\
        data_dir: {tmp / "data"}
        api: {{enabled: false}}
        sources:
          apps:
            type: file
            include: ["{logs}/app/*.log"]
            exclude: ["{logs}/app/*.json.log"]
            multiline: {{preset: iso8601_start}}
            log_type: application
          json:
            type: file
            include: ["{logs}/app/*.json.log"]
          nginx:
            type: file
            include: ["{logs}/nginx/*.log"]
          k8s:
            type: container
            include: ["{logs}/containers/*.log"]
        sinks:
          out:
            type: file
            inputs: [apps, json, nginx, k8s]
            path: {tmp / "out.jsonl"}
        """))
    return cfg


def _lines(out: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()] if out.exists() else []


def test_a_second_once_run_over_unchanged_files_emits_nothing(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    shutil.copytree(ROOT / "examples" / "logs", logs, symlinks=True)
    daemon = DaemonProcess(_config(tmp_path, logs), tmp_path)
    out = tmp_path / "out.jsonl"

    assert daemon.run_once() == 0, daemon.log_tail()
    first = _lines(out)
    by_source: dict[str, int] = {}
    for e in first:
        path = str(e["source"]["path"])  # type: ignore[index]
        key = "k8s" if "kubernetes" in e else path.split("/")[-2]
        by_source[key] = by_source.get(key, 0) + 1
    # app: 80 + 45 records (stack traces joined); nginx: 110 + 28 lines; containers: 117 raw
    # lines, of which two pairs are reassembled partials -> 115 records.
    assert by_source == {"app": 80 + 45 + 70, "nginx": 138, "k8s": 115}

    assert daemon.run_once() == 0, daemon.log_tail()
    assert len(_lines(out)) == len(first)

    with open(logs / "app" / "billing-worker.log", "ab") as fh:
        fh.write(b"2024-05-14 10:00:00,000 INFO [billing.worker] appended after the restart\n"
                 b"2024-05-14 10:00:01,000 INFO [billing.worker] and the last one\n")
    assert daemon.run_once() == 0, daemon.log_tail()
    new = _lines(out)[len(first):]
    # The held-back last record of the first run ("charge succeeded ...", flushed at EOF with
    # --once) is not repeated; only the two new lines arrive.
    assert [e["message"] for e in new] == [
        "2024-05-14 10:00:00,000 INFO [billing.worker] appended after the restart",
        "2024-05-14 10:00:01,000 INFO [billing.worker] and the last one"]
