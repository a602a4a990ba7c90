"""The webhook sink's generic `http` target against a real HTTP server this test starts.

An aiohttp web server on 127.0.0.1 (random port) stands in for Slack or any webhook
receiver; it records what arrives: method, path, headers and the JSON body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from sinks.webhook import WebhookSink, WebhookSinkConfig


class Receiver:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503, text="try later")
        self.requests.append({"method": request.method, "path": request.path, "headers": dict(request.headers),
                              "body": orjson.loads(await request.read())})
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/services/{tail:.*}", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield rec
    await runner.cleanup()


async def wait_for(receiver: Receiver, n: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while len(receiver.requests) < n:
        assert time.monotonic() < deadline, f"{len(receiver.requests)} of {n} requests arrived"
        await asyncio.sleep(0.05)


async def test_http_target_receives_the_templated_body_and_headers(receiver: Receiver, tmp_path: Path) -> None:
    secret_file = tmp_path / "auth"
    secret_file.write_text("Bearer file-secret\n")
    config = WebhookSinkConfig.model_validate({
        "type": "webhook", "inputs": ["in"],
        "rules": [{
            "name": "HTTP5xx",
            "when": {"all": [{"field": "log_type", "equals": "access"}, {"field": "status", "gte": 500}]},
            "labels": {"vhost": "{vhost|default}", "status": "{status}"},
            "annotations": {"summary": "{method} {path:30} returned {status}"},
        }],
        "targets": [{
            "type": "http", "name": "slack", "url": receiver.url + "/services/T000/B000/XXXX",
            "headers": {"X-Team": "ops"}, "headers_from_files": {"Authorization": str(secret_file)},
            "body": {"text": "[{status}] {labels.alertname}: {annotations.summary} (x{annotations.count})",
                     "username": "pipeline", "fields": {"vhost": "{labels.vhost}", "since": "{startsAt}"}},
        }],
        "group_wait": "100ms", "update_interval": "500ms", "resolve_after": "1s",
        "retry": {"initial_backoff": "50ms", "max_backoff": "200ms"},
    })
    sink = WebhookSink("alerts", config, data_dir=tmp_path)
    await sink.start()
    receiver.fail_next = 1  # the first attempt gets a 503: retried
    access = {"log_type": "access", "vhost": "shop", "method": "GET", "status": 502,
              "path": "/api/orders/12345?expand=items&page=2"}
    await sink.send([access] * 7 + [{**access, "status": 404}, {**access, "status": 200}])
    await wait_for(receiver, 1)
    await sink.send([access] * 3)
    await wait_for(receiver, 2)  # no `update` by default on http targets: next is the resolution
    await sink.aclose()

    firing, resolved = receiver.requests
    assert firing["method"] == "POST" and firing["path"] == "/services/T000/B000/XXXX"
    assert firing["headers"]["Authorization"] == "Bearer file-secret"
    assert firing["headers"]["X-Team"] == "ops"
    assert firing["headers"]["Content-Type"] == "application/json"
    assert firing["body"] == {
        "text": "[firing] HTTP5xx: GET /api/orders/12345?expand=item… returned 502 (x7)",
        "username": "pipeline",
        "fields": {"vhost": "shop", "since": firing["body"]["fields"]["since"]},
    }
    assert firing["body"]["fields"]["since"].endswith("Z")
    assert resolved["body"]["text"] == "[resolved] HTTP5xx: GET /api/orders/12345?expand=item… returned 502 (x10)"
    assert sink.stats.retries["slack"] >= 1
