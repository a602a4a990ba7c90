"""The Loki server stops mid-run and comes back: no line is lost.

`pipeline run` (a subprocess) tails a file into the `loki` sink, which pushes to the
test VictoriaLogs. After the first lines are stored, `scripts/services down
victorialogs` stops the server (it is ours alone: no other test or helper shares it
while this runs); lines written meanwhile cannot be delivered, the sink retries with
backoff and settles nothing. `up` restarts it (always, in a `finally`), more lines
follow, and in the end every line is in VictoriaLogs, read back with LogsQL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.conftest import logsql
from tests.reliability.file_daemon import DaemonProcess, wait_until

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"
PER_PHASE = 2000


def services(*args: str) -> None:
    proc = subprocess.run([sys.executable, str(SERVICES), *args], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, f"scripts/services {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture
def server(victorialogs_url: str) -> Iterator[str]:
    yield victorialogs_url
    services("up", "victorialogs")  # whatever happened, leave it running


def append(path: Path, start: int, n: int) -> None:
    with path.open("a") as fh:
        fh.write("".join(f"line {i:06d} of the outage test\n" for i in range(start, start + n)))


def numbers(url: str, job: str) -> Counter[int]:
    return Counter(int(row["_msg"][5:11]) for row in logsql(url, f'job:"{job}"'))


def test_no_line_lost_while_the_server_is_down(tmp_path: Path, server: str, unique_name: str) -> None:
    log = tmp_path / "app.log"
    log.touch()
    config = tmp_path / "pipeline.yaml"
    config.write_bytes(orjson.dumps({  # JSON is YAML
        "data_dir": str(tmp_path / "data"),
        "api": {"enabled": False},
        "shutdown_timeout": "20s",
        "sources": {"app": {"type": "file", "include": [str(log)], "poll_interval": "50ms",
                            "batch_max_lines": 200}},
        "sinks": {"loki": {
            "type": "loki", "inputs": ["app"], "endpoint": server, "path": "/insert/loki/api/v1/push",
            "healthcheck_path": "/health", "labels": {"job": unique_name}, "line": "{message}",
            "batch": {"max_events": 200, "timeout": "50ms"},
            "retry": {"initial_backoff": "100ms", "max_backoff": "1s"}, "request_timeout": "5s",
        }},
    }))
    daemon = DaemonProcess(config, tmp_path)
    daemon.start()
    try:
        append(log, 0, PER_PHASE)
        assert wait_until(lambda: len(numbers(server, unique_name)) == PER_PHASE, 60), daemon.log_tail()

        services("down", "victorialogs")
        try:
            append(log, PER_PHASE, PER_PHASE)
            # The sink cannot deliver: it retries (and logs why) instead of settling or dropping.
            assert wait_until(lambda: daemon.log_tail(400).count("sink send failed, retrying") >= 3, 60), \
                daemon.log_tail()
            assert daemon.proc is not None and daemon.proc.poll() is None
            time.sleep(2)  # a few more failed attempts, with backoff
        finally:
            services("up", "victorialogs")

        append(log, 2 * PER_PHASE, PER_PHASE)
        total = 3 * PER_PHASE
        assert wait_until(lambda: len(numbers(server, unique_name)) == total, 120), daemon.log_tail()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.log_tail()
    finally:
        daemon.kill()

    seen = numbers(server, unique_name)
    assert sorted(seen) == list(range(total))  # every line, the ones written during the outage included
    # Lines stored before the server stopped are not sent again (a push that got no answer
    # may be retried, which is where at-least-once allows a duplicate).
    doubled = sum(n - 1 for n in seen.values())
    assert doubled <= 200, f"{doubled} duplicates"
    assert not (tmp_path / "data" / "dead_letter").exists() or not any((tmp_path / "data" / "dead_letter").iterdir())
