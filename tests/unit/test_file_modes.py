"""Files the daemon writes: owner-only state (checkpoints, dead letters, alert state and
notifications, the embedded ClickHouse folder), and the file sink's `mode` for output meant
for other readers. All under umask 000, where anything left to defaults is world-writable.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.atomicfile import ensure_dir, make_dirs, write_atomic
from pipeline.checkpoint import CheckpointStore
from pipeline.dlq import DeadLetterQueue
from sinks.file import FileSink, FileSinkConfig
from sinks.webhook.state import StateStore

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
class TestOwnerOnlyUnderUmask000:
    def test_write_atomic_creates_every_missing_folder_owner_only(self, tmp_path: Path) -> None:
        target = tmp_path / "a" / "b" / "state.json"
        write_atomic(target, b"{}", backup=tmp_path / "a" / "b" / "state.json.bak")
        write_atomic(target, b"{}", backup=tmp_path / "a" / "b" / "state.json.bak")
        assert mode(target) == 0o600 and mode(target.with_name("state.json.bak")) == 0o600
        assert mode(tmp_path / "a") == 0o700 and mode(tmp_path / "a" / "b") == 0o700

    def test_an_existing_folder_is_left_alone(self, tmp_path: Path) -> None:
        (tmp_path / "shared").mkdir(mode=0o755)
        ensure_dir(tmp_path / "shared" / "mine")
        assert mode(tmp_path / "shared") == 0o755 and mode(tmp_path / "shared" / "mine") == 0o700

    def test_checkpoints(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "data" / "checkpoints" / "app.json", "app")
        store.flush()
        store.flush()
        files = list((tmp_path / "data" / "checkpoints").iterdir())
        assert files and all(mode(f) == 0o600 for f in files)
        assert mode(tmp_path / "data") == 0o700 and mode(tmp_path / "data" / "checkpoints") == 0o700

    def test_dead_letters(self, tmp_path: Path) -> None:
        dlq = DeadLetterQueue(tmp_path / "data" / "dead_letter")
        dlq.write("es", [{"message": "raw line"}], "mapping error")
        (written,) = (tmp_path / "data" / "dead_letter").iterdir()
        assert mode(written) == 0o600
        assert mode(tmp_path / "data") == 0o700 and mode(tmp_path / "data" / "dead_letter") == 0o700

    def test_alert_state(self, tmp_path: Path) -> None:
        store = StateStore(tmp_path / "data" / "webhook" / "alerts.json")
        store.save(b"{\"version\": 1}")
        assert mode(store.path) == 0o600 and mode(store.path.parent) == 0o700

    async def test_alert_notification_file(self, tmp_path: Path) -> None:
        from sinks.webhook.config_targets import FileTarget
        from sinks.webhook.targets import FileDelivery

        config = FileTarget.model_validate({"type": "file", "path": str(tmp_path / "a" / "n.jsonl")})
        target = FileDelivery("file", config)
        await target.deliver([{"status": "firing", "labels": {"alertname": "X"}}])
        assert mode(tmp_path / "a" / "n.jsonl") == 0o600 and mode(tmp_path / "a") == 0o700


@pytest.mark.usefixtures("open_umask")
class TestFileSinkMode:
    @pytest.mark.parametrize(
        ("option", "file_mode", "dir_mode"),
        [
            pytest.param({}, 0o644, 0o755, id="default-0644"),
            pytest.param({"mode": "0640"}, 0o640, 0o750, id="0640"),
            pytest.param({"mode": "600"}, 0o600, 0o700, id="600"),
            pytest.param({"mode": 0o640}, 0o640, 0o750, id="yaml-unquoted-octal"),
        ],
    )
    async def test_files_and_folders_get_the_mode(
        self, tmp_path: Path, option: dict[str, object], file_mode: int, dir_mode: int
    ) -> None:
        config = FileSinkConfig.model_validate(
            {"type": "file", "inputs": ["x"], "path": str(tmp_path / "out" / "{log_type}" / "events.jsonl"), **option}
        )
        sink = FileSink("out", config)
        await sink.send([{"log_type": "access", "message": "m"}])
        await sink.aclose()
        assert mode(tmp_path / "out" / "access" / "events.jsonl") == file_mode
        assert mode(tmp_path / "out") == dir_mode and mode(tmp_path / "out" / "access") == dir_mode

    @pytest.mark.parametrize("bad", ["0666", "0602", "rw-r--r--", "8888", 0o1777])
    def test_world_writable_or_malformed_modes_are_refused(self, bad: object) -> None:
        with pytest.raises(ValidationError, match=r"mode|octal|world-writable"):
            FileSinkConfig.model_validate({"type": "file", "inputs": ["x"], "path": "out.jsonl", "mode": bad})


def test_make_dirs_creates_each_level_with_the_mode(tmp_path: Path, open_umask: None) -> None:
    make_dirs(tmp_path / "x" / "y" / "z", 0o750)
    assert [mode(tmp_path / p) for p in ("x", "x/y", "x/y/z")] == [0o750] * 3


def test_a_whole_run_under_umask_000_leaves_nothing_open_to_others(tmp_path: Path) -> None:
    """`pipeline run --once` with checkpoints, alert state and notifications, and an embedded ClickHouse."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "app.log").write_text("".join(f"2024-01-02 03:04:05,000 ERROR app - boom {i}\n"
                                                     for i in range(20)))  # fmt: skip
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
sources:
  app: {{type: file, include: ["{tmp_path}/in/*.log"], log_type: application}}
transforms:
  parsed: {{type: parse, inputs: [app]}}
sinks:
  ch: {{type: clickhouse, inputs: [parsed]}}
  alerts:
    type: webhook
    inputs: [parsed]
    rules: [{{name: Errors, when: {{field: level, equals: ERROR}}}}]
    targets: [{{type: file, path: "{tmp_path}/data/alerts/alerts.jsonl"}}]
    group_wait: 0s
""")
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "--log-level", "warning", "run", "--config", str(config), "--once"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, preexec_fn=lambda: os.umask(0),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = tmp_path / "data"
    assert mode(data) == 0o700  # nothing below it is reachable by anyone else
    for name in ("checkpoints", "webhook", "alerts", "clickhouse"):
        assert mode(data / name) == 0o700, name
    written = [*(data / "checkpoints").iterdir(), *(data / "webhook").iterdir(), *(data / "alerts").iterdir()]
    assert {p.parent.name for p in written} == {"checkpoints", "webhook", "alerts"}
    assert all(mode(p) == 0o600 for p in written), {str(p): oct(mode(p)) for p in written}
