"""The webhook sink against the real Alertmanager (`scripts/services up alertmanager`).

Each test labels its alerts with its own `test_id`, and reads back only those with
GET /api/v2/alerts?filter=test_id="...": tests never see each other's alerts.

How Alertmanager v2 reports a resolved alert: it does not. GET /api/v2/alerts (and
/alerts/groups) skips every alert whose endsAt is in the past, whatever the
active/silenced/inhibited/unprocessed filters say. So "resolved" is asserted as:
visible while firing, then gone from the list well before the endsAt the firing
posts carried (now + resolve_after + ends_at_margin = 62 s), which only an explicit
resolve (endsAt = now) explains; and Alertmanager's own counter of received
resolved alerts went up.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sinks.webhook import WebhookSink, WebhookSinkConfig
from tests.integration.conftest import services_cmd

ALL_STATES = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}


def sink_config(am_url: str, test_id: str, **overrides: Any) -> WebhookSinkConfig:
    body: dict[str, Any] = {
        "type": "webhook", "inputs": ["in"],
        "rules": [{
            "name": "ApplicationError",
            "when": {"all": [{"field": "log_type", "equals": "application"},
                             {"field": "level", "in": ["ERROR", "CRITICAL"]}]},
            "severity": "critical",
            "labels": {"service": "{service|unknown}", "error_type": "{error.type}", "test_id": test_id},
            "annotations": {"summary": "{error.type} in {service}", "description": "{message:200}"},
        }],
        "targets": [{"type": "alertmanager", "url": am_url, "timeout": "2s"}],
        "group_wait": "200ms", "update_interval": "500ms", "resolve_after": "2s",
        "retry": {"initial_backoff": "100ms", "max_backoff": "500ms"},
    }
    body.update(overrides)
    return WebhookSinkConfig.model_validate(body)


def error(error_type: str = "KeyError", service: str = "api") -> dict[str, Any]:
    return {"@timestamp": "2024-05-01T12:00:00.000Z", "log_type": "application", "level": "ERROR",
            "service": service, "error": {"type": error_type}, "message": f"{error_type}: 'user_id'"}


async def get_alerts(am_url: str, test_id: str, **params: str) -> list[dict[str, Any]]:
    query = [("filter", f'test_id="{test_id}"'), *params.items()]
    async with aiohttp.ClientSession() as session, session.get(f"{am_url}/api/v2/alerts", params=query) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def resolved_received(am_url: str) -> float:
    """Alertmanager's counter of resolved alerts it received (its own /metrics)."""
    async with aiohttp.ClientSession() as session, session.get(f"{am_url}/metrics") as resp:
        text = await resp.text()
    return sum(float(m.group(1)) for m in re.finditer(
        r'^alertmanager_alerts_received_total\{[^}]*status="resolved"[^}]*\} (\S+)$', text, re.MULTILINE))


async def poll(fetch: Callable[[], Any], until: Callable[[Any], bool], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within}s; last value: {value!r}"[:2000])
        await asyncio.sleep(0.2)


def counts(alerts: list[dict[str, Any]]) -> dict[str, str]:
    return {a["labels"]["error_type"]: a["annotations"]["count"] for a in alerts}


@pytest.fixture
async def make_sink(tmp_path: Path) -> AsyncIterator[Callable[[WebhookSinkConfig], WebhookSink]]:
    sinks: list[WebhookSink] = []

    def make(config: WebhookSinkConfig) -> WebhookSink:
        sink = WebhookSink("alerts", config, data_dir=tmp_path)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        await sink.aclose()


async def test_ten_thousand_identical_errors_are_one_alert_with_the_exact_count(
        alertmanager_url: str, unique_name: str, make_sink: Callable[[WebhookSinkConfig], WebhookSink]) -> None:
    sink = make_sink(sink_config(alertmanager_url, unique_name))
    await sink.start()
    await sink.healthcheck()
    for _ in range(10):
        await sink.send([error()] * 1000)
        await asyncio.sleep(0.05)  # a stream, not one batch: the alert fires before the count is final
    alerts = await poll(lambda: get_alerts(alertmanager_url, unique_name),
                        lambda a: len(a) == 1 and a[0]["annotations"]["count"] == "10000")
    (alert,) = alerts
    assert alert["labels"] == {"alertname": "ApplicationError", "severity": "critical", "service": "api",
                               "error_type": "KeyError", "test_id": unique_name}
    assert alert["annotations"]["summary"] == "KeyError in api"
    assert alert["annotations"]["description"] == "KeyError: 'user_id'"
    assert alert["annotations"]["first_seen"] <= alert["annotations"]["last_seen"]
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"] == "http://pipeline/alerts"
    # One alert, not 10k: a handful of POSTs (firing + count updates).
    delivered = sink.stats.notifications[("alertmanager", "delivered")]
    assert delivered <= 15, f"{delivered} notifications for one alert"


async def test_three_error_types_fire_then_resolve(
        alertmanager_url: str, unique_name: str, make_sink: Callable[[WebhookSinkConfig], WebhookSink]) -> None:
    sink = make_sink(sink_config(alertmanager_url, unique_name))
    await sink.start()
    await sink.send([error("KeyError")] * 5 + [error("TimeoutError")] * 3 + [error("ValueError")])
    resolved_before = await resolved_received(alertmanager_url)
    firing = await poll(lambda: get_alerts(alertmanager_url, unique_name, **ALL_STATES), lambda a: len(a) == 3)
    assert counts(firing) == {"KeyError": "5", "TimeoutError": "3", "ValueError": "1"}
    fired_at = time.monotonic()
    # No new matches: resolve_after (2 s) later the sink posts endsAt = now, and Alertmanager
    # stops listing them, under any filter.
    await poll(lambda: get_alerts(alertmanager_url, unique_name, **ALL_STATES), lambda a: a == [], within=10)
    assert time.monotonic() - fired_at < 30  # far before the firing endsAt (~62 s): explicitly resolved
    assert await get_alerts(alertmanager_url, unique_name) == []
    assert await resolved_received(alertmanager_url) - resolved_before >= 3
    assert sink.aggregator.active == 0


async def test_alerts_arrive_after_alertmanager_comes_back(
        alertmanager_url: str, unique_name: str, make_sink: Callable[[WebhookSinkConfig], WebhookSink]) -> None:
    sink = make_sink(sink_config(alertmanager_url, unique_name, resolve_after="60s"))
    await sink.start()
    try:
        down = services_cmd("down", "alertmanager")
        assert down.returncode == 0, down.stderr
        for _ in range(5):
            started = time.monotonic()
            await sink.send([error("KeyError")] * 200 + [error("OSError")] * 10)
            assert time.monotonic() - started < 2.0  # folding does not wait for the target
            await asyncio.sleep(0.2)
        await poll(lambda: asyncio.sleep(0), lambda _: sink.stats.retries.get("alertmanager", 0) >= 2, within=10)
        with pytest.raises(Exception, match="not ready"):
            await sink.healthcheck()
        assert len(sink.outboxes["alertmanager"]) == 2  # one pending notification per alert
    finally:
        up = services_cmd("up", "alertmanager")
        assert up.returncode == 0, up.stderr
    alerts = await poll(lambda: get_alerts(alertmanager_url, unique_name),
                        lambda a: counts(a) == {"KeyError": "1000", "OSError": "50"}, within=20)
    assert all(a["status"]["state"] == "active" for a in alerts)
    await sink.healthcheck()


async def test_pipeline_run_once_delivers_to_alertmanager(
        alertmanager_url: str, unique_name: str, tmp_path: Path) -> None:
    """The whole daemon: stdin -> webhook sink from a config file; `--once` flushes at the end."""
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"""
data_dir: {tmp_path / "data"}
api: {{enabled: false}}
sources:
  app: {{type: stdin, log_type: application}}
sinks:
  alerts:
    type: webhook
    inputs: [app]
    group_wait: 30s
    rules:
      - name: ApplicationError
        when:
          all:
            - {{field: log_type, equals: application}}
            - {{field: message, regex: " (ERROR|CRITICAL) "}}
        labels: {{test_id: "{unique_name}"}}
        annotations: {{summary: "{{message:60}}"}}
    targets:
      - type: alertmanager
        url: "${{ALERTMANAGER_URL}}"
      - type: file
        path: {tmp_path / "alerts.jsonl"}
""")
    lines = "".join(
        f"2024-05-01 12:00:{i % 60:02d},000 {'ERROR' if i % 2 else 'INFO'} app.main - request {i} failed\n"
        for i in range(4000))
    env = {**os.environ, "ALERTMANAGER_URL": alertmanager_url}
    proc = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "pipeline", "run", "--config", str(config), "--once"],
        input=lines, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (alert,) = await get_alerts(alertmanager_url, unique_name)
    assert alert["annotations"]["count"] == "2000"
    assert alert["annotations"]["summary"].endswith("request 3999 failed")
    # The local record of what was sent, from the file target.
    assert (tmp_path / "alerts.jsonl").read_text().count('"count":"2000"') == 1


async def test_a_windowed_rate_alert_fires_at_event_time_and_resolves(
        alertmanager_url: str, unique_name: str, make_sink: Callable[[WebhookSinkConfig], WebhookSink]) -> None:
    rule = {"name": "HighErrorRate", "type": "ratio", "base": {"field": "log_type", "equals": "access"},
            "when": {"field": "status", "gte": 500}, "window": "1m", "step": "10s", "threshold": 0.1,
            "min_count": 10, "labels": {"test_id": unique_name},
            "annotations": {"summary": "{alert.percent}% of {alert.base} requests failed"}}
    sink = make_sink(sink_config(alertmanager_url, unique_name, rules=[rule]))
    await sink.start()

    def access(second: int, status: int) -> dict[str, Any]:
        return {"@timestamp": f"2024-05-01T12:00:{second:02d}.000Z", "log_type": "access", "status": status}

    resolved_before = await resolved_received(alertmanager_url)
    await sink.send([access(s, 502 if s % 4 == 0 else 200) for s in range(20)])  # 5 of 20 fail
    (alert,) = await poll(lambda: get_alerts(alertmanager_url, unique_name), lambda a: len(a) == 1)
    assert alert["startsAt"] == "2024-05-01T12:00:10.000Z"  # the step that ended when 12:00:10 arrived
    assert alert["annotations"]["value"] == "0.3" and alert["annotations"]["threshold"] == "> 0.1"
    assert alert["annotations"]["summary"] == "30.00% of 10 requests failed"
    assert alert["annotations"]["window"] == "1m"
    await sink.send([access(20 + s, 200) for s in range(39)] + [access(59, 200)])  # the share falls to 1/12
    await poll(lambda: get_alerts(alertmanager_url, unique_name, **ALL_STATES), lambda a: a == [], within=10)
    assert await resolved_received(alertmanager_url) - resolved_before >= 1
