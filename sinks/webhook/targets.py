"""Where notifications go: Alertmanager, a generic HTTP webhook, a JSON-lines file, the console.

A target only delivers (or raises `DeliveryError`); the sink's delivery loop owns
the outbox, retries and backoff. HTTP targets get their aiohttp session from a
factory (the I/O seam: tests can inject one that fails on demand).

Status handling for HTTP: 2xx delivered; 408, 425, 429 and 5xx (and connection
errors, timeouts) are retried; other statuses are permanent: the notification is
dropped, logged and counted, since resending the same payload cannot succeed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson

from parsers.dates import rfc3339_ms
from pipeline.errors import ConfigError
from pipeline.secrets import read_secret_file
from pipeline.template import compile_tree
from sinks.webhook.config import AlertmanagerTarget, ConsoleTarget, FileTarget, HttpTarget, _HttpOptions

Notification = dict[str, Any]
SessionFactory = Callable[[], aiohttp.ClientSession]
RETRYABLE_STATUS = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A delivery failed; `permanent` ones are dropped instead of retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Target(Protocol):
    name: str
    type: str
    notify_on: frozenset[str]
    max_batch: int
    last_error: str | None  # set by the delivery loop while the target fails

    async def open(self) -> None: ...
    async def deliver(self, notes: list[Notification]) -> None: ...
    async def check(self) -> None: ...
    async def aclose(self) -> None: ...


def redact_url(url: str) -> str:
    """scheme://host[:port] only: webhook paths and queries often carry tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


class _HttpTarget:
    type = "http"

    def __init__(
        self, name: str, options: _HttpOptions, notify_on: Iterable[str], session_factory: SessionFactory | None
    ) -> None:
        self.name = name
        self.notify_on: frozenset[str] = frozenset(notify_on)
        self._options = options
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None
        self._closed = False  # after aclose, only open() makes a session again (not a late check)
        self._timeout = aiohttp.ClientTimeout(total=options.timeout)
        self.last_error: str | None = None

    async def open(self) -> None:
        self._closed = False
        if self._session is None:
            factory = self._session_factory or (lambda: aiohttp.ClientSession())
            self._session = factory()

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        headers.update({k: v.get_secret_value() for k, v in self._options.headers.items()})
        for header, path in self._options.headers_from_files.items():
            try:
                headers[header] = read_secret_file(Path(path), f"headers_from_files.{header}")
            except ConfigError as exc:  # a rotating secret unreadable now: retried like a failed delivery
                raise DeliveryError(str(exc)) from None
        return headers

    async def _request(self, method: str, url: str, shown: str, data: bytes | None = None) -> None:
        if self._closed:
            raise DeliveryError(f"target {self.name!r}: closed")
        await self.open()
        assert self._session is not None
        try:
            async with self._session.request(
                method, url, data=data, headers=self._headers(), timeout=self._timeout
            ) as resp:
                if 200 <= resp.status < 300:
                    await resp.read()
                    return
                excerpt = (await resp.text(errors="replace"))[:300].strip()
                permanent = resp.status < 500 and resp.status not in RETRYABLE_STATUS
                raise DeliveryError(f"{method} {shown}: HTTP {resp.status} {excerpt}", permanent=permanent)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"{method} {shown}: {type(exc).__name__}: {exc or 'timeout'}") from None


class AlertmanagerDelivery(_HttpTarget):
    """POST {url}/api/v2/alerts: a list of {labels, annotations, startsAt, endsAt, generatorURL}."""

    type = "alertmanager"

    def __init__(
        self,
        name: str,
        config: AlertmanagerTarget,
        resolve_after: float,
        session_factory: SessionFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, config, config.notify_on, session_factory)
        self.base = config.url.rstrip("/")
        self.max_batch = config.max_alerts_per_request
        # While firing, endsAt stays ahead of the sink's own resolution, so Alertmanager never
        # resolves early; if the pipeline vanishes, Alertmanager still resolves it eventually.
        self._firing_for = resolve_after + config.ends_at_margin
        self._clock = clock

    def payload(self, notes: list[Notification]) -> list[dict[str, Any]]:
        ends_firing = rfc3339_ms(self._clock() + self._firing_for)
        return [
            {
                "labels": n["labels"],
                "annotations": n["annotations"],
                "startsAt": n["startsAt"],
                "endsAt": n["endsAt"] if n["status"] == "resolved" else ends_firing,
                "generatorURL": n["generatorURL"],
            }
            for n in notes
        ]

    async def deliver(self, notes: list[Notification]) -> None:
        data = orjson.dumps(self.payload(notes))
        await self._request("POST", f"{self.base}/api/v2/alerts", f"{self.base}/api/v2/alerts", data)

    async def check(self) -> None:
        try:
            await self._request("GET", f"{self.base}/-/ready", f"{self.base}/-/ready")
        except DeliveryError as exc:
            raise DeliveryError(f"alertmanager target {self.name!r} not ready: {exc}") from None


class HttpDelivery(_HttpTarget):
    """One request per notification; the body is the `body` template rendered over it."""

    max_batch = 1

    def __init__(
        self, name: str, config: HttpTarget, component: str, session_factory: SessionFactory | None = None
    ) -> None:
        super().__init__(name, config, config.notify_on, session_factory)
        self._url = config.url.get_secret_value()
        self._shown = redact_url(self._url)
        self._method = config.method
        self._body = compile_tree(config.body) if config.body is not None else None
        self._component = component

    def render(self, note: Notification) -> bytes:
        if self._body is None:
            return orjson.dumps(note)
        return orjson.dumps(self._body({**note, "component": self._component}))

    async def deliver(self, notes: list[Notification]) -> None:
        for note in notes:
            await self._request(self._method, self._url, self._shown, self.render(note))

    async def check(self) -> None:
        # A generic webhook has no side-effect-free probe: report the last delivery failure.
        if self.last_error:
            raise DeliveryError(f"http target {self.name!r} failing: {self.last_error}")


class FileDelivery:
    """Append notifications as JSON lines."""

    type = "file"
    max_batch = 500

    def __init__(self, name: str, config: FileTarget) -> None:
        self.name = name
        self.notify_on: frozenset[str] = frozenset(config.notify_on)
        self.path = Path(config.path)
        self.fsync = config.fsync
        self.last_error: str | None = None

    async def open(self) -> None:
        return None

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    async def deliver(self, notes: list[Notification]) -> None:
        data = b"".join(orjson.dumps(n, option=orjson.OPT_APPEND_NEWLINE) for n in notes)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as exc:
            raise DeliveryError(f"append to {self.path}: {exc.strerror}") from None

    async def check(self) -> None:
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            raise DeliveryError(f"file target {self.name!r}: {folder} is not writable")

    async def aclose(self) -> None:
        return None


class ConsoleDelivery:
    """Print notifications as JSON lines."""

    type = "console"
    max_batch = 500

    def __init__(self, name: str, config: ConsoleTarget) -> None:
        self.name = name
        self.notify_on: frozenset[str] = frozenset(config.notify_on)
        self.stream = config.stream
        self.last_error: str | None = None

    async def open(self) -> None:
        return None

    async def deliver(self, notes: list[Notification]) -> None:
        out = sys.stdout if self.stream == "stdout" else sys.stderr
        out.buffer.write(b"".join(orjson.dumps(n, option=orjson.OPT_APPEND_NEWLINE) for n in notes))
        out.flush()

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def build_target(
    name: str, config: Any, *, component: str, resolve_after: float, session_factory: SessionFactory | None = None
) -> Target:
    if isinstance(config, AlertmanagerTarget):
        return AlertmanagerDelivery(name, config, resolve_after, session_factory)
    if isinstance(config, HttpTarget):
        return HttpDelivery(name, config, component, session_factory)
    if isinstance(config, FileTarget):
        return FileDelivery(name, config)
    if isinstance(config, ConsoleTarget):
        return ConsoleDelivery(name, config)
    raise TypeError(f"unknown target config {type(config).__name__}")
