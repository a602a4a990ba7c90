"""The webhook sink survives kill -9: the daemon as a subprocess, SIGKILLed mid-alert, restarted.

No server is needed (a `file` target records notifications): what is tested is that a
batch's fold is on disk when it settles, and that a restart continues the same alert.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

CONFIG = """
data_dir: {data}
api: {{enabled: false}}
sources:
  app: {{type: stdin, log_type: application}}
sinks:
  alerts:
    type: webhook
    inputs: [app]
    group_wait: 200ms
    update_interval: 300ms
    resolve_after: 5m
    rules:
      - name: ApplicationError
        when: {{all: [{{field: log_type, equals: application}}, {{field: message, regex: " ERROR "}}]}}
        labels: {{service: checkout}}
    targets:
      - {{type: file, path: {alerts}}}
"""


def lines(start: int, n: int) -> bytes:
    return "".join(f"2024-05-01 12:00:00,000 ERROR app - failure {i}\n" for i in range(start, start + n)).encode()


def notifications(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def state_count(data: Path) -> int:
    try:
        groups = orjson.loads((data / "webhook" / "alerts.json").read_bytes())["groups"]
    except (OSError, ValueError):
        return 0
    return sum(g["count"] for g in groups)


def wait(predicate: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_a_firing_alert_survives_kill_9(tmp_path: Path) -> None:
    data, alerts = tmp_path / "data", tmp_path / "alerts.jsonl"
    config = tmp_path / "pipeline.yaml"
    config.write_text(CONFIG.format(data=data, alerts=alerts))
    command = [sys.executable, "-m", "pipeline", "run", "--config", str(config)]

    daemon = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert daemon.stdin is not None
        daemon.stdin.write(lines(0, 500))
        daemon.stdin.flush()
        wait(lambda: any(n["annotations"]["count"] == "500" for n in notifications(alerts)))
        daemon.stdin.write(lines(500, 300))
        daemon.stdin.flush()
        wait(lambda: state_count(data) == 800)  # settled = durable
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        if daemon.stderr:
            daemon.stderr.close()
        if daemon.stdin:
            daemon.stdin.close()
    first_start = notifications(alerts)[0]["startsAt"]

    restarted = subprocess.run([*command, "--once"], input=lines(800, 200), capture_output=True, timeout=60)
    assert restarted.returncode == 0, restarted.stderr.decode()[-3000:]
    final = notifications(alerts)[-1]
    assert final["annotations"]["count"] == "1000"  # 800 before the kill + 200 after: the same alert
    assert final["startsAt"] == first_start
    assert final["status"] == "firing"
    assert {n["fingerprint"] for n in notifications(alerts)} == {final["fingerprint"]}


WINDOWED = CONFIG.replace(
    """      - name: ApplicationError
        when: {{all: [{{field: log_type, equals: application}}, {{field: message, regex: " ERROR "}}]}}
        labels: {{service: checkout}}""",
    """      - name: ErrorBurst
        type: frequency
        when: {{all: [{{field: log_type, equals: application}}, {{field: level, equals: ERROR}}]}}
        labels: {{logger: "{{logger}}"}}
        window: 1h
        threshold: 100""").replace(
    "sinks:\n  alerts:\n    type: webhook\n    inputs: [app]",
    "transforms:\n  parsed: {{type: parse, inputs: [app]}}\nsinks:\n  alerts:\n    type: webhook\n    inputs: [parsed]")
assert "parsed" in WINDOWED


def stamped_lines(start: int, n: int) -> bytes:
    return "".join(f"2024-05-01 12:{i // 60:02d}:{i % 60:02d},000 ERROR [app.worker] failure {i}\n"
                   for i in range(start, start + n)).encode()


def test_a_firing_windowed_alert_survives_kill_9(tmp_path: Path) -> None:
    data, alerts = tmp_path / "data", tmp_path / "alerts.jsonl"
    config = tmp_path / "pipeline.yaml"
    config.write_text(WINDOWED.format(data=data, alerts=alerts))
    command = [sys.executable, "-m", "pipeline", "run", "--config", str(config)]

    def window_total() -> int:
        try:
            (rule,) = orjson.loads((data / "webhook" / "alerts.json").read_bytes())["windowed"].values()
        except (OSError, ValueError):
            return 0
        return sum(k["total"] for k in rule["keys"])

    daemon = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert daemon.stdin is not None
        daemon.stdin.write(stamped_lines(0, 150))
        daemon.stdin.flush()
        wait(lambda: any(n["kind"] == "firing" for n in notifications(alerts)))
        daemon.stdin.write(stamped_lines(150, 150))
        daemon.stdin.flush()
        wait(lambda: window_total() == 300)  # settled = durable
    finally:
        os.kill(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        if daemon.stderr:
            daemon.stderr.close()
        if daemon.stdin:
            daemon.stdin.close()
    (first,) = [n for n in notifications(alerts) if n["kind"] == "firing"]
    assert first["startsAt"] == "2024-05-01T12:01:39.000Z"  # the 100th error

    restarted = subprocess.run([*command, "--once"], input=stamped_lines(300, 100), capture_output=True, timeout=60)
    assert restarted.returncode == 0, restarted.stderr.decode()[-3000:]
    after = notifications(alerts)
    assert {n["fingerprint"] for n in after} == {first["fingerprint"]}
    assert {n["startsAt"] for n in after} == {first["startsAt"]}  # the same alert, continued
    assert after[-1]["status"] == "firing" and after[-1]["annotations"]["value"] == "400"
    assert window_total() == 400
