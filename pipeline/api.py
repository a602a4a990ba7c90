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
  from this machine only (an embedded chDB store opens in one process at a time),
  or from anywhere with the API token.

Protection (docs/security.md): with `api.token` every endpoint but /health needs
`Authorization: Bearer <token>` (compared in constant time); `api.tls` serves
HTTPS (client certificates required when `ca_file` is set). Binding another
address than loopback without a token is logged as a warning at start.

The API reads `pipeline.status` snapshots from a `StatusProvider` (the daemon);
it never touches components.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pipeline.config import ApiConfig
from pipeline.driver import describe_error
from pipeline.status import StatusProvider
from pipeline.tls import server_context

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0
STUCK_AFTER_S = 10.0
READY_CACHE_S = 1.0
HEALTHCHECK_TIMEOUT_S = 3.0
LOOPBACK_PEERS = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


OPEN_PATHS = frozenset({"/health"})  # liveness probes carry no credentials


def is_loopback(host: str) -> bool:
    """Whether `host` (as in api.address) is a loopback address or `localhost`."""
    host = host.strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_warnings(config: ApiConfig) -> list[str]:
    """What is unsafe about how the API is exposed (logged at start)."""
    host = config.address.rpartition(":")[0]
    if is_loopback(host):
        return []
    problems = []
    if config.token is None and config.token_file is None:
        problems.append(
            f"the API listens on {config.address} (not loopback) without api.token: anyone who reaches it can read "
            "/status and /metrics and run POST /query; set api.token (and api.tls), or bind 127.0.0.1"
        )
    elif config.tls is None:
        problems.append(
            f"the API listens on {config.address} with a token but without api.tls: the token travels in clear"
        )
    return problems


class ApiServer:
    def __init__(self, provider: StatusProvider, token: str | None = None) -> None:
        self.provider = provider
        self._token = token.encode() if token else None
        self._runner: web.AppRunner | None = None
        self._beat = time.monotonic()
        self._beat_task: asyncio.Task[None] | None = None
        self._ready_cache: tuple[float, int, dict[str, Any]] | None = None
        app = web.Application(middlewares=[self._authenticate])
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/status", self.status)
        app.router.add_post("/query", self.query)
        self.app = app

    @web.middleware
    async def _authenticate(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self._token is not None and request.path not in OPEN_PATHS:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), self._token):
                return web.json_response(
                    {"error": "a valid bearer token is required (Authorization: Bearer <api.token>)"},
                    status=401,
                    headers={"WWW-Authenticate": 'Bearer realm="pipeline"'},
                )
        return await handler(request)

    async def start(self, address: str, ssl_context: ssl.SSLContext | None = None) -> None:
        host, _, port = address.rpartition(":")
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host.strip("[]") or "127.0.0.1", int(port), ssl_context=ssl_context)
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
        if self._token is None and request.remote not in LOOPBACK_PEERS:
            return web.json_response(
                {"error": "queries are accepted from this machine only (or from anywhere with api.token set)"},
                status=403,
            )
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


async def start_api(provider: StatusProvider, config: ApiConfig) -> ApiServer:
    """Build and start the API as configured: token, TLS, and the exposure warnings."""
    for problem in exposure_warnings(config):
        log.warning(problem)
    context = server_context(config.tls, "api.tls") if config.tls is not None else None
    api = ApiServer(provider, token=config.bearer_token())
    await api.start(config.address, ssl_context=context)
    return api


# -- the client side: `pipeline query` reaching its own daemon ---------------------------------


def local_url(config: ApiConfig, path: str) -> str:
    """URL of the API of a daemon on this machine (a wildcard bind is reached on loopback)."""
    host, _, port = config.address.rpartition(":")
    bare = host.strip("[]")
    if bare in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif bare == "::":
        host = "[::1]"
    return f"{'https' if config.tls is not None else 'http'}://{host}:{port}{path}"


def local_client_context(config: ApiConfig) -> ssl.SSLContext | None:
    """TLS to our own daemon: trust exactly the certificate it serves (`api.tls.cert_file`), whatever its
    name or issuer. (An API that requires client certificates refuses this client: query it with curl.)"""
    tls = config.tls
    if tls is None or tls.cert_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the certificate itself is pinned below
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cafile=str(tls.cert_file))
    return context


def local_headers(config: ApiConfig) -> dict[str, str]:
    token = config.bearer_token()
    return {"Authorization": f"Bearer {token}"} if token else {}
