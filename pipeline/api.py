"""The HTTP API: /metrics, /health, /ready, /status (aiohttp, loopback by default).

- /health is liveness: a heartbeat task on the event loop ticks every second;
  if it is late the loop is stuck and the answer is 503.
- /ready is readiness: sources started and every critical sink's healthcheck
  passes; otherwise 503 with the reasons. A non-critical sink (`critical:
  false`, alert channels by default) that fails makes it 200 `degraded` with
  the reasons. Sink checks are cached briefly so a probe storm does not hammer
  the destinations.
- /status is JSON for humans: counters, queue depths, last sink errors, lag. It
  shows names and numbers only, never config values (no secrets).
- POST /query runs `pipeline query`'s SQL on a sink that offers it (ClickHouse),
  from this machine only: an embedded chDB store opens in one process at a time.

The API reads `pipeline.status` snapshots from a `StatusProvider` (the daemon);
it never touches components.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.driver import describe_error
from pipeline.status import StatusProvider

HEARTBEAT_S = 1.0
STUCK_AFTER_S = 10.0
READY_CACHE_S = 1.0
HEALTHCHECK_TIMEOUT_S = 3.0
LOOPBACK_PEERS = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


class ApiServer:
    def __init__(self, provider: StatusProvider) -> None:
        self.provider = provider
        self._runner: web.AppRunner | None = None
        self._beat = time.monotonic()
        self._beat_task: asyncio.Task[None] | None = None
        self._ready_cache: tuple[float, int, dict[str, Any]] | None = None
        app = web.Application()
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/status", self.status)
        app.router.add_post("/query", self.query)
        self.app = app

    async def start(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]") or "127.0.0.1", int(port))
        await site.start()
        self._beat_task = asyncio.create_task(self._heartbeat())

    async def stop(self) -> None:
        if self._beat_task is not None:
            self._beat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat_task
        if self._runner is not None:
            await self._runner.cleanup()

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(HEARTBEAT_S)

    async def metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.provider.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(self, request: web.Request) -> web.Response:
        lag = time.monotonic() - self._beat
        if lag > STUCK_AFTER_S:
            return web.json_response({"status": "stuck", "heartbeat_lag_s": round(lag, 3)}, status=503)
        return web.json_response({"status": "ok"})

    async def ready(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        cached = self._ready_cache
        if cached is None or now - cached[0] > READY_CACHE_S:
            status, body = await self._check_ready()
            self._ready_cache = cached = (now, status, body)
        return web.json_response(cached[2], status=cached[1])

    async def _check_ready(self) -> tuple[int, dict[str, Any]]:
        snapshot = self.provider.status()
        reasons: dict[str, str] = {}
        if snapshot.stopping:
            reasons["daemon"] = "shutting down"
        if not snapshot.topology.sources_started:
            reasons["sources"] = "not started"

        unstarted = {
            c.name: c.last_error or "starting"
            for c in snapshot.topology.components
            if c.kind == "sink" and not c.started
        }

        async def check(name: str) -> None:
            if name in unstarted:
                reasons[name] = f"not started: {unstarted[name]}"
                return
            try:
                await asyncio.wait_for(snapshot.topology.probes[name](), HEALTHCHECK_TIMEOUT_S)
            except Exception as exc:
                reasons[name] = describe_error(exc)

        await asyncio.gather(*(check(name) for name in snapshot.topology.probes))
        degraded = {k: v for k, v in reasons.items() if k in snapshot.topology.noncritical}
        down = {k: v for k, v in reasons.items() if k not in degraded}
        if down:
            body: dict[str, Any] = {"status": "not ready", "reasons": down}
            if degraded:
                body["degraded"] = degraded
            return 503, body
        if degraded:
            return 200, {"status": "degraded", "degraded": degraded}
        return 200, {"status": "ready"}

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self.provider.status().to_json())

    async def query(self, request: web.Request) -> web.Response:
        """Run an operator's SQL on a sink that offers it (`pipeline query` against an embedded store)."""
        if request.remote not in LOOPBACK_PEERS:
            return web.json_response({"error": "queries are accepted from this machine only"}, status=403)
        try:
            body = await request.json()
            sql = body["sql"]
            sink = body.get("sink")
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response({"error": 'expected {"sql": "...", "sink": "name"}'}, status=400)
        queries = self.provider.status().topology.queries
        if sink is None and len(queries) == 1:
            sink = next(iter(queries))
        if sink not in queries:
            known = ", ".join(sorted(queries)) or "none"
            return web.json_response({"error": f"no sink {sink!r} takes queries (sinks that do: {known})"}, status=404)
        try:
            answer = await queries[sink](str(sql))
        except Exception as exc:
            return web.json_response({"error": describe_error(exc)}, status=400)
        return web.json_response(answer)
