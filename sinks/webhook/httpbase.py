"""What every delivery target shares: the Target protocol, DeliveryError, and the aiohttp request base.

A target only delivers (or raises `DeliveryError`); the sink's delivery loop owns
the outbox, retries, the rate limit and the dead letters. HTTP targets get their
aiohttp session from a factory (the I/O seam: tests can inject one that fails on demand).

Status handling for HTTP: 2xx delivered; 408, 425, 429 and 5xx (and connection
errors, timeouts) are retried; other statuses are permanent: the notification is
dead-lettered and counted, since resending the same payload cannot succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from pipeline.errors import ConfigError
from pipeline.httpauth import authorization
from pipeline.secrets import read_secret_file
from pipeline.tls import TlsOptions, client_context, refusal
from sinks.webhook.config_targets import _HttpOptions

Notification = dict[str, Any]
SessionFactory = Callable[[], aiohttp.ClientSession]
RETRYABLE_STATUS = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A delivery failed; `permanent` ones are dropped instead of retried.

    `refused` is (option key, reason) when the server refused our TLS or credentials
    (pipeline.tls.refusal, HTTP 401/403): what a start-time probe turns into a StartError."""

    def __init__(self, message: str, *, permanent: bool = False, refused: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.refused = refused


class Target(Protocol):
    name: str
    type: str
    notify_on: frozenset[str]
    max_batch: int
    last_error: str | None  # set by the delivery loop while the target fails
    rate_limit: int | None  # deliveries per rolling minute (None: unlimited)
    group_interval: float  # pause after a delivery, so what arrives meanwhile goes out together

    async def open(self) -> None: ...
    async def deliver(self, notes: list[Notification]) -> None: ...
    async def check(self) -> None: ...
    async def aclose(self) -> None: ...


def redact_url(url: str) -> str:
    """scheme://host[:port] only: webhook paths and queries often carry tokens."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


class HttpChannel:
    type = "http"

    def __init__(
        self, name: str, options: _HttpOptions, notify_on: Iterable[str], session_factory: SessionFactory | None
    ) -> None:
        self.name = name
        self.notify_on: frozenset[str] = frozenset(notify_on)
        self._options = options
        self._session_factory = session_factory
        # One TLS context per target, built at build time (ConfigError for an unusable file).
        self._ssl = client_context(options.tls or TlsOptions(), "tls")
        self._session: aiohttp.ClientSession | None = None
        self._closed = False  # after aclose, only open() makes a session again (not a late check)
        self._timeout = aiohttp.ClientTimeout(total=options.timeout)
        self.last_error: str | None = None
        self.rate_limit: int | None = None
        self.group_interval = 0.0

    async def open(self) -> None:
        self._closed = False
        if self._session is None:
            factory = self._session_factory or (
                lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self._ssl))
            )
            self._session = factory()

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        headers.update({k: v.get_secret_value() for k, v in self._options.headers.items()})
        try:
            for header, path in self._options.headers_from_files.items():
                headers[header] = read_secret_file(Path(path), f"headers_from_files.{header}")
            auth = authorization(self._options)
        except ConfigError as exc:  # a rotating secret unreadable now: retried like a failed delivery
            raise DeliveryError(str(exc)) from None
        if auth is not None:
            headers["Authorization"] = auth
        return headers

    async def _request(
        self, method: str, url: str, shown: str, data: bytes | None = None, check: Callable[[bytes], None] | None = None
    ) -> None:
        if self._closed:
            # A readiness probe during shutdown must not open a session nobody will close.
            raise DeliveryError(f"target {self.name!r}: closed")
        if self._session is None:
            await self.open()
        assert self._session is not None
        try:
            async with self._session.request(
                method, url, data=data, headers=self._headers(), timeout=self._timeout
            ) as resp:
                if 200 <= resp.status < 300:
                    body = await resp.read()
                    if check is not None:
                        check(body)  # a 200 that says "refused" in its body (DingTalk)
                    return
                excerpt = (await resp.text(errors="replace"))[:300].strip()
                permanent = resp.status < 500 and resp.status not in RETRYABLE_STATUS
                refused = ("password", "credentials refused") if resp.status in (401, 403) else None
                raise DeliveryError(
                    f"{method} {shown}: HTTP {resp.status} {excerpt}", permanent=permanent, refused=refused
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            tls = refusal(exc)
            if tls is not None:  # retried (someone may fix the certificate), but said plainly
                raise DeliveryError(f"{method} {shown}: {tls[1]}", refused=tls) from None
            raise DeliveryError(f"{method} {shown}: {type(exc).__name__}: {exc or 'timeout'}") from None
