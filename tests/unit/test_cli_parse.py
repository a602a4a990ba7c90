"""`pipeline parse` on production access and error lines, as an operator runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "parsers"

ERROR_LINES = [
    '2024/01/02 03:04:06 [error] 7#7: *12 upstream timed out (110: Connection timed out) while connecting to '
    'upstream, client: 10.0.0.8, server: 0.0.0.0:3306, upstream: "10.0.0.20:3306", bytes from/to client:0/0, '
    "bytes from/to upstream:0/0",
    "[Tue Jan 02 03:04:09 2024] [warn] [client [2001:db8::7]:443] odd",
]


def run(lines: list[str], *args: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "parse", *args],
        input="\n".join(lines).encode() + b"\n",
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return [orjson.loads(line) for line in proc.stdout.splitlines()]


class TestParseCommand:
    def test_production_access_lines_parse(self) -> None:
        lines = (DATA / "access_production.log").read_text().splitlines()
        events = run(lines, "--log-type", "auto")
        assert len(events) == len(lines)
        for line, event in zip(lines, events, strict=True):
            assert event["log_type"] == "access", line
            assert "tags" not in event, line
            assert "client_ip" in event, line
        assert events[0]["client_ip"] == "81.2.69.142"
        assert events[3]["vhost"] == "shop.example.com"
        assert events[5]["client_ip"] == "67.43.156.0"  # a trailing X-Forwarded-For behind a private proxy

    def test_error_lines_parse(self) -> None:
        events = run(ERROR_LINES, "--log-type", "error")
        assert [e.get("tags") for e in events] == [None, None]
        assert events[0]["bytes_from_upstream"] == 0
        assert events[1]["client_ip"] == "2001:db8::7"

    @pytest.mark.parametrize("web_server", ["nginx", "apache"])
    def test_ecs_schema(self, web_server: str) -> None:
        line = (DATA / "access_production.log").read_text().splitlines()[2]
        (event,) = run([line], "--schema", "ecs", "--web-server", web_server)
        assert event["source"] == {"address": "2a02:cf40::1", "ip": "2a02:cf40::1"}
        assert event["event"]["dataset"] == f"{web_server}.access"
        assert event["http"]["response"]["status_code"] == 304
        assert event["user_agent"]["os"]["name"] == "iOS"  # user agents are parsed with ecs by default
        assert "client_ip" not in event

    def test_user_agent_flag_with_default_schema(self) -> None:
        line = (DATA / "access_production.log").read_text().splitlines()[0]
        (plain,) = run([line])
        (parsed,) = run([line], "--user-agent")
        assert "user_agent_name" not in plain
        assert parsed["user_agent_name"] == "Chrome"
        assert parsed["user_agent_os_name"] == "Windows"

    def test_bad_option_is_exit_2(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "pipeline", "parse", "--schema", "otel"], input=b"", capture_output=True, cwd=ROOT
        )
        assert proc.returncode == 2
        assert b"--schema" in proc.stderr
