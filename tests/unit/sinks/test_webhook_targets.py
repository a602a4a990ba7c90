"""Delivery targets (sinks/webhook/targets.py): payloads, status classification, headers, redaction.

Served by a local aiohttp server (127.0.0.1, random port) that answers as each case
needs: a real HTTP exchange, with statuses a real Alertmanager will not give on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from parsers.dates import rfc3339_ms
from sinks.webhook.config import AlertmanagerTarget, ConsoleTarget, FileTarget, HttpTarget
from sinks.webhook.targets import (
    AlertmanagerDelivery,
    ConsoleDelivery,
    DeliveryError,
    FileDelivery,
    HttpDelivery,
    redact_url,
)

NOTE: dict[str, Any] = {
    "status": "firing", "kind": "firing", "fingerprint": "0123456789abcdef", "rule": "AppError",
    "labels": {"alertname": "AppError", "severity": "warning", "service": "api"},
    "annotations": {"summary": "KeyError: boom", "count": "42", "first_seen": "2024-01-01T00:00:00.000Z",
                    "last_seen": "2024-01-01T00:00:05.000Z"},
    "startsAt": "2024-01-01T00:00:00.000Z", "endsAt": "2024-01-01T00:05:05.000Z",
    "generatorURL": "http://pipeline/alerts",
}


class Server:
    """Records requests; answers with the next queued status (200 when none)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="" if status < 300 else f"error {status}")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.url = f"http://127.0.0.1:{port}"
    yield srv
    await runner.cleanup()


def free_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class TestAlertmanager:
    def target(self, url: str, clock: float = 1_700_000_000.0, **kw: Any) -> AlertmanagerDelivery:
        config = AlertmanagerTarget.model_validate({"type": "alertmanager", "url": url, **kw})
        return AlertmanagerDelivery("am", config, resolve_after=300, clock=lambda: clock)

    async def test_posts_the_v2_payload(self, server: Server) -> None:
        target = self.target(server.url + "/", ends_at_margin=60)
        resolved = {**NOTE, "status": "resolved", "kind": "resolved", "endsAt": "2024-01-01T00:10:00.000Z"}
        await target.deliver([NOTE, resolved])
        await target.aclose()
        ((method, path, headers, body),) = server.requests
        assert (method, path, headers["Content-Type"]) == ("POST", "/api/v2/alerts", "application/json")
        firing, done = orjson.loads(body)
        assert set(firing) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
        assert firing["labels"] == NOTE["labels"] and firing["annotations"]["count"] == "42"
        # Firing: endsAt = now + resolve_after + margin, so Alertmanager never resolves it first.
        assert firing["endsAt"] == rfc3339_ms(1_700_000_000.0 + 300 + 60)
        assert done["endsAt"] == "2024-01-01T00:10:00.000Z"

    async def test_ready_probe(self, server: Server) -> None:
        target = self.target(server.url)
        await target.check()
        assert server.requests[0][:2] == ("GET", "/-/ready")
        server.statuses = [503]
        with pytest.raises(DeliveryError, match=r"not ready.*HTTP 503"):
            await target.check()
        await target.aclose()

    async def test_unreachable(self) -> None:
        target = self.target(free_port_url())
        with pytest.raises(DeliveryError) as info:
            await target.deliver([NOTE])
        assert not info.value.permanent
        with pytest.raises(DeliveryError, match="not ready"):
            await target.check()
        await target.aclose()

    @pytest.mark.parametrize(("status", "permanent"), [
        pytest.param(500, False, id="500"), pytest.param(503, False, id="503"), pytest.param(429, False, id="429"),
        pytest.param(408, False, id="408"), pytest.param(400, True, id="400"), pytest.param(404, True, id="404"),
    ])
    async def test_status_classification(self, server: Server, status: int, permanent: bool) -> None:
        target = self.target(server.url)
        server.statuses = [status]
        with pytest.raises(DeliveryError, match=f"HTTP {status} error {status}") as info:
            await target.deliver([NOTE])
        assert info.value.permanent is permanent
        await target.aclose()

    async def test_timeout_is_transient(self, server: Server) -> None:
        target = self.target(server.url, timeout="100ms")
        server.delay = 1.0
        with pytest.raises(DeliveryError) as info:
            await target.deliver([NOTE])
        assert not info.value.permanent and "Timeout" in str(info.value)
        await target.aclose()


class TestHttp:
    def target(self, url: str, **kw: Any) -> HttpDelivery:
        return HttpDelivery("hook", HttpTarget.model_validate({"type": "http", "url": url, **kw}), "alerts")

    async def test_templated_body_and_headers(self, server: Server, tmp_path: Path) -> None:
        token = tmp_path / "token"
        token.write_text("Bearer from-file-1\n")
        target = self.target(
            server.url + "/hooks/T0/s3cr3t", method="PUT",
            headers={"X-Api-Key": "k3y"}, headers_from_files={"Authorization": str(token)},
            body={"text": "[{status}] {labels.alertname}: {annotations.summary} (x{annotations.count})",
                  "channel": "#ops", "meta": {"kind": "{kind}", "component": "{component}"}},
        )
        await target.deliver([NOTE])
        token.write_text("Bearer from-file-2")  # a rotated secret is read at the next delivery
        await target.deliver([{**NOTE, "status": "resolved"}])
        await target.aclose()
        (m1, path, h1, b1), (_, _, h2, b2) = server.requests
        assert (m1, path) == ("PUT", "/hooks/T0/s3cr3t")
        assert orjson.loads(b1) == {"text": "[firing] AppError: KeyError: boom (x42)", "channel": "#ops",
                                    "meta": {"kind": "firing", "component": "alerts"}}
        assert orjson.loads(b2)["text"].startswith("[resolved]")
        assert (h1["X-Api-Key"], h1["Authorization"], h2["Authorization"]) == (
            "k3y", "Bearer from-file-1", "Bearer from-file-2")

    async def test_default_body_is_the_alert(self, server: Server) -> None:
        target = self.target(server.url)
        await target.deliver([NOTE])
        await target.aclose()
        assert orjson.loads(server.requests[0][3]) == NOTE

    async def test_errors_do_not_show_the_url_path(self, server: Server) -> None:
        target = self.target(server.url + "/hooks/T0/s3cr3t")
        server.statuses = [502]
        with pytest.raises(DeliveryError) as info:
            await target.deliver([NOTE])
        assert "s3cr3t" not in str(info.value) and "HTTP 502" in str(info.value)
        await target.aclose()

    async def test_missing_header_file_is_a_transient_error(self, server: Server, tmp_path: Path) -> None:
        target = self.target(server.url, headers_from_files={"Authorization": str(tmp_path / "absent")})
        with pytest.raises(DeliveryError, match="cannot read") as info:
            await target.deliver([NOTE])
        assert not info.value.permanent and server.requests == []
        await target.aclose()

    def test_redact(self) -> None:
        assert redact_url("https://hooks.slack.com/services/T0/B0/xyz?token=1") == "https://hooks.slack.com/…"


class TestLocalTargets:
    async def test_file_appends_json_lines(self, tmp_path: Path) -> None:
        target = FileDelivery("file", FileTarget.model_validate({"type": "file", "path": tmp_path / "a" / "x.jsonl"}))
        await target.check()
        await target.deliver([NOTE])
        await target.deliver([NOTE, NOTE])
        lines = (tmp_path / "a" / "x.jsonl").read_bytes().splitlines()
        assert [orjson.loads(line) for line in lines] == [NOTE] * 3

    async def test_console_prints_json_lines(self, capfd: pytest.CaptureFixture[str]) -> None:
        target = ConsoleDelivery("console", ConsoleTarget.model_validate({"type": "console", "stream": "stdout"}))
        await target.deliver([NOTE])
        assert orjson.loads(capfd.readouterr().out) == NOTE
