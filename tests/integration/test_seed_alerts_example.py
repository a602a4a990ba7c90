"""config/examples/seed-alerts.yaml end to end: `pipeline run --once` over crafted old log files
delivers each of its four alerts, as Alertmanager v2 bodies, to a local HTTP receiver.

The logs cover 2024-05-14 09:00-09:20 (event time, long past): nginx access lines with
request_time, one request a second, with a 09:05-09:08 stretch of 5 % 502s and slow
requests; two application loggers, one of which stops at 09:06 while the other logs on
and has a burst of 12 ERRORs at 09:10.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "examples" / "seed-alerts.yaml"
START = datetime(2024, 5, 14, 9, 0, 0, tzinfo=UTC)


def write_logs(logs: Path) -> None:
    (logs / "nginx").mkdir(parents=True)
    (logs / "application").mkdir()
    access = []
    for s in range(20 * 60):
        t = START + timedelta(seconds=s)
        bad = 300 <= s < 480
        status = 502 if bad and s % 20 == 0 else 200  # 5 % in the bad stretch
        rt = 0.9 if bad and s % 10 < 2 else 0.05  # 20 % slow: p95 above 0.5 s
        stamp = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
        access.append(f'10.0.0.{s % 250} - - [{stamp}] "GET /api/orders HTTP/1.1" {status} 512 "-" "curl/8" {rt:.3f}')
    (logs / "nginx" / "access.log").write_text("\n".join(access) + "\n")

    def app(t: datetime, level: str, logger: str, message: str) -> str:
        return f"{t.strftime('%Y-%m-%d %H:%M:%S')},000 {level} [{logger}] {message}"

    orders = [app(START + timedelta(seconds=s), "INFO", "orders.api", f"request {s}") for s in range(0, 1200, 10)]
    orders += [app(START + timedelta(minutes=10, seconds=s * 5), "ERROR", "orders.api", "payment timeout")
               for s in range(12)]
    orders.sort()
    (logs / "application" / "orders.log").write_text("\n".join(orders) + "\n")
    billing = [app(START + timedelta(seconds=s), "INFO", "billing.worker", f"charge {s}") for s in range(0, 361, 10)]
    (logs / "application" / "billing.log").write_text("\n".join(billing) + "\n")


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[Any] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(orjson.loads(await request.read()))
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/api/v2/alerts", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield rec, f"http://127.0.0.1:{port}/api/v2/alerts"
    await runner.cleanup()


async def test_once_over_old_files_delivers_every_alert(receiver: tuple[Receiver, str], tmp_path: Path) -> None:
    rec, url = receiver
    write_logs(tmp_path / "logs")
    env = {**os.environ, "LOGS_DIR": str(tmp_path / "logs"), "DATA_DIR": str(tmp_path / "data"), "WEBHOOK_URL": url,
           "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pipeline", "run", "--config", str(CONFIG), "--once",
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-3000:]

    alerts = [alert for body in rec.bodies for alert in body]  # each body: an Alertmanager v2 list
    assert all(isinstance(body, list) for body in rec.bodies)
    firing = {a["labels"]["alertname"]: a for a in alerts if a["endsAt"] > a["startsAt"] and
              a["endsAt"] > "2025"}
    assert set(firing) == {"HighErrorRate", "HighLatencyP95", "ServiceSilent", "ErrorBurst"}, alerts
    silent = firing["ServiceSilent"]
    assert silent["labels"]["logger"] == "billing.worker"
    assert silent["startsAt"] == "2024-05-14T09:11:00.000Z"  # its last line at 09:06 + 5 minutes
    burst = firing["ErrorBurst"]
    assert burst["labels"]["logger"] == "orders.api"
    assert burst["startsAt"] == "2024-05-14T09:10:45.000Z"  # the 10th ERROR (every 5 s from 09:10)
    assert burst["annotations"]["value"] in {"10", "11", "12"}
    rate = firing["HighErrorRate"]
    assert rate["labels"]["severity"] == "critical"
    assert "2024-05-14T09:05" <= rate["startsAt"] < "2024-05-14T09:09"
    assert rate["annotations"]["summary"].startswith("5xx share ")
    assert float(firing["HighLatencyP95"]["annotations"]["value"]) == pytest.approx(0.9, rel=0.01)
    # The error rate and the latency recovered after 09:08: both were resolved, at event time.
    resolved = {a["labels"]["alertname"]: a for a in alerts if a["endsAt"] < "2025"}
    assert {"HighErrorRate", "HighLatencyP95"} <= set(resolved)
    assert "2024-05-14T09:08" <= resolved["HighErrorRate"]["endsAt"] < "2024-05-14T09:15"
