"""The `loki` sink: streams to Loki's push API; a send settles only when the server accepted it.

How answers are classified (the driver does the retrying, dead-lettering and settling):

- 2xx: delivered.
- 429 (rate limited), 5xx, 408, 425, a connection error or a timeout: retried with
  backoff, nothing settled. So are 401, 403 and 404: credentials or the URL are wrong,
  which is the operator's to fix, not the events' fault; dead-lettering them would move
  the whole stream into the dead-letter queue.
- 413 (request too large): the send is halved until each part fits; a single event that
  still does not fit is dead-lettered.
- 400 and other 4xx (entry too old, line too long, stream limit for good...): the events
  of that request are dead-lettered with the server's reason. Loki stores the valid
  entries of such a request; replaying them from the dead-letter queue is harmless, since
  Loki drops an entry identical to one it has (same stream, time and line).

When part of a split send was accepted and a later part fails transiently, only the
events not yet accepted are retried (`Outcome.retry`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client import Counter

from pipeline import __version__
from pipeline.errors import StartError, TransientError
from pipeline.httpauth import authorization
from pipeline.logs import component_log
from pipeline.metrics import ComponentStats, Metrics
from pipeline.sink import Outcome
from pipeline.tls import TlsOptions, client_context, refusal, warn_if_unverified
from sinks.loki.config import LokiSinkConfig
from sinks.loki.encoding import JSON_TYPE, PROTOBUF_TYPE, ProtobufEncoder, encode_json, gzip
from sinks.loki.streams import Grouped, Stream, StreamMapper

log = logging.getLogger(__name__)

SessionFactory = Callable[[LokiSinkConfig, ssl.SSLContext | None], aiohttp.ClientSession]
Event = dict[str, Any]

RETRY_STATUS = frozenset({401, 403, 404, 408, 425, 429})
REASON_LIMIT = 1000  # characters of the server's answer kept in a dead-letter reason
OVERFLOW_WARN_INTERVAL_S = 60.0


@dataclass
class LokiCounters:
    responses: Counter
    overflow: Counter


_COUNTERS: weakref.WeakKeyDictionary[Metrics, LokiCounters] = weakref.WeakKeyDictionary()


def loki_counters(metrics: Metrics) -> LokiCounters:
    """The Loki sinks' counters, one set per metrics registry."""
    counters = _COUNTERS.get(metrics)
    if counters is None:
        counters = LokiCounters(
            responses=Counter(
                "pipeline_loki_responses",
                "Push requests by answer: the HTTP status, or `error` (connection failed, timeout).",
                ["component", "code"],
                registry=metrics.registry,
            ),
            overflow=Counter(
                "pipeline_loki_overflow_events",
                "Events over a stream cap (`batch`: max_streams_per_batch, `total`: max_streams), sent to the "
                "overflow stream or dead-lettered as `overflow` says.",
                ["component", "cap"],
                registry=metrics.registry,
            ),
        )
        _COUNTERS[metrics] = counters
    return counters


def default_session(config: LokiSinkConfig, context: ssl.SSLContext | None) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=context if context is not None else True, limit=config.max_in_flight + 1)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=config.request_timeout))


def request_headers(config: LokiSinkConfig) -> dict[str, str]:
    """Headers of every push: content type and encoding, tenant, auth, the user's extras."""
    headers = {"User-Agent": f"pipeline/{__version__}", **config.headers}
    headers["Content-Type"] = PROTOBUF_TYPE if config.encoding == "protobuf" else JSON_TYPE
    if config.compression == "gzip":
        headers["Content-Encoding"] = "gzip"
    if config.tenant_id:
        headers["X-Scope-OrgID"] = config.tenant_id
    auth = authorization(config)  # ConfigError naming the key when a secret file is unreadable
    if auth is not None:
        headers["Authorization"] = auth
    return headers


def tls_context(config: LokiSinkConfig) -> ssl.SSLContext | None:
    """The TLS context of an https endpoint (pipeline/tls.py: verified against the system store by default)."""
    if not config.endpoint.startswith("https://"):
        return None
    return client_context(config.tls or TlsOptions())


@dataclass
class _Send:
    """What one send learnt so far: accepted parts, events to retry, events rejected."""

    accepted: bool = False
    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    retry_reason: str = "request"


def _indices(streams: Sequence[Stream]) -> Iterator[int]:
    for stream in streams:
        for entry in stream.entries:
            yield entry[3]


def _halves(streams: Sequence[Stream]) -> tuple[list[Stream], list[Stream]]:
    """Split streams into two parts of about half the entries each (a big stream is split too)."""
    total = sum(len(s.entries) for s in streams)
    first: list[Stream] = []
    second: list[Stream] = []
    budget = total // 2
    for stream in streams:
        if budget <= 0:
            second.append(stream)
        elif len(stream.entries) <= budget:
            first.append(stream)
            budget -= len(stream.entries)
        else:
            first.append(Stream(stream.key, stream.labels, stream.entries[:budget]))
            second.append(Stream(stream.key, stream.labels, stream.entries[budget:]))
            budget = 0
    return first, second


class LokiSink:
    def __init__(
        self,
        name: str,
        config: LokiSinkConfig,
        *,
        metrics: Metrics,
        stats: ComponentStats,
        session_factory: SessionFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.config = config
        self.stats = stats
        self.log = component_log(log, name)
        self.url = config.push_url
        self.mapper = StreamMapper(config, clock)
        self._protobuf = ProtobufEncoder() if config.encoding == "protobuf" else None
        self._headers = request_headers(config)  # holds secrets: never logged
        self._ssl = tls_context(config)
        self._factory = session_factory or default_session
        self._session: aiohttp.ClientSession | None = None
        self._counters = loki_counters(metrics)
        self._metrics = metrics
        self._clock = clock
        self._overflow_since = {"batch": 0, "total": 0}
        self._overflow_example = ""
        self._next_warning = 0.0
        metrics.gauge(
            "pipeline_loki_streams",
            "Distinct streams a Loki sink sent to within stream_ttl (what max_streams caps).",
            ["component"],
            lambda: iter([({"component": name}, float(len(self.mapper.known)))]),
            owner=self,
        )

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._factory(self.config, self._ssl)
        return self._session

    async def start(self) -> None:
        """Open the session and probe the server once: a refused certificate or refused credentials are
        a StartError (they will not fix themselves); a server that is merely down is retried by sends."""
        warn_if_unverified(self.log, self.config.tls, self.config.endpoint)
        url = self.config.endpoint + self.config.healthcheck_path
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            refused = refusal(exc)
            if refused is not None:
                raise StartError(*refused) from None
            return
        if status in (401, 403):
            key = "bearer_token" if self.config.bearer_token or self.config.bearer_token_file else "username"
            raise StartError(key, f"loki at {self.config.endpoint} refused our credentials (HTTP {status})")

    async def healthcheck(self) -> None:
        url = self.config.endpoint + self.config.healthcheck_path
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if 200 <= resp.status < 300:
                    await resp.read()
                    return
                text = (await resp.text(errors="replace"))[:200].strip()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransientError(f"loki unreachable at {url}: {type(exc).__name__}: {exc}") from None
        raise TransientError(f"loki at {url}: HTTP {resp.status} {text}")

    async def aclose(self) -> None:
        self._metrics.drop_gauges(self)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- sending ---------------------------------------------------------------------------
    async def send(self, events: list[Event]) -> Outcome:
        grouped = self.mapper.group(events)
        state = _Send(rejected=list(grouped.rejected))
        if grouped.streams:
            await self._push(grouped.streams, state)
        self._overflowed(grouped)  # counted once the send is settled, not at every retry of it
        return Outcome(retry=state.retry, rejected=state.rejected, retry_reason=state.retry_reason)

    def encode(self, streams: Sequence[Stream]) -> bytes:
        if self._protobuf is not None:
            return self._protobuf.encode(streams)
        body = encode_json(streams)
        return gzip(body) if self.config.compression == "gzip" else body

    async def _push(self, streams: Sequence[Stream], state: _Send) -> None:
        body = self.encode(streams)
        try:
            status, reason = await self._post(body)
        except TransientError as exc:
            if not state.accepted:
                raise  # nothing landed yet: the driver retries the whole send and logs why
            self.log.warning("push failed after part of the send landed, retrying the rest", extra={"error": str(exc)})
            state.retry.extend(_indices(streams))
            return
        if 200 <= status < 300:
            state.accepted = True
            self.stats.bytes_out += len(body)
            return
        if status in RETRY_STATUS or status >= 500:
            message = f"push to {self.url}: HTTP {status} {reason}".rstrip()
            if not state.accepted:
                raise TransientError(message)
            self.log.warning("push failed after part of the send landed, retrying the rest", extra={"error": message})
            state.retry.extend(_indices(streams))
            state.retry_reason = "rate_limited" if status == 429 else "request"
            return
        count = sum(len(s.entries) for s in streams)
        if status == 413 and count > 1:
            first, second = _halves(streams)
            self.log.info("push request too large (HTTP 413), splitting it", extra={"events": count})
            await self._push(first, state)
            await self._push(second, state)
            return
        why = f"loki: HTTP {status}: {reason}" if reason else f"loki: HTTP {status}"
        state.rejected.extend((i, why) for i in _indices(streams))

    async def _post(self, body: bytes) -> tuple[int, str]:
        """POST one body; (status, the server's answer) or TransientError when no answer came."""
        try:
            async with self.session.post(self.url, data=body, headers=self._headers) as resp:
                status = resp.status
                if 200 <= status < 300:
                    await resp.read()  # releases the connection for the next push
                    text = ""
                else:
                    text = await resp.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._counters.responses.labels(self.name, "error").inc()
            detail = str(exc) or "timeout"
            raise TransientError(f"push to {self.url}: {type(exc).__name__}: {detail}") from None
        except asyncio.CancelledError:
            raise
        self._counters.responses.labels(self.name, str(status)).inc()
        text = text.strip()
        return status, text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"

    # -- the stream caps -------------------------------------------------------------------
    def _overflowed(self, grouped: Grouped) -> None:
        for cap, n in (("batch", grouped.over_batch), ("total", grouped.over_total)):
            if n:
                self._counters.overflow.labels(self.name, cap).inc(n)
                self._overflow_since[cap] += n
        if grouped.example:
            self._overflow_example = grouped.example
        if not (self._overflow_since["batch"] or self._overflow_since["total"]):
            return
        now = self._clock()
        if now < self._next_warning:
            return
        self._next_warning = now + OVERFLOW_WARN_INTERVAL_S
        where = (
            "dead-lettered"
            if self.config.overflow == "dead_letter"
            else f"sent to the overflow stream {self.mapper.overflow_key} with their labels as structured metadata"
        )
        self.log.warning(
            f"too many Loki streams: events {where}; a label has too many values "
            "(move ids and free text to structured_metadata) or raise max_streams / max_streams_per_batch",
            extra={
                "over_max_streams": self._overflow_since["total"],
                "over_max_streams_per_batch": self._overflow_since["batch"],
                "max_streams": self.config.max_streams,
                "max_streams_per_batch": self.config.max_streams_per_batch,
                "streams": len(self.mapper.known),
                "example_labels": self._overflow_example,
                "interval_s": OVERFLOW_WARN_INTERVAL_S,
            },
        )
        self._overflow_since = {"batch": 0, "total": 0}
