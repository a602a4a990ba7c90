"""`elasticsearch` sink: async bulk of pre-serialised NDJSON, per-item outcomes, idempotent replays.

A send becomes one or more bulk requests (split at `bulk_max_bytes`), each a
single `bytes` body built with orjson: the client forwards bytes untouched. The
response's items are classified one by one (see `bulk.py`): only the items
Elasticsearch asks us to retry are retried, permanent item errors go to the
dead-letter queue, and a 409 on `create` (a replayed event) counts as
delivered. A request that fails as a whole (connection, timeout, 5xx) raises
TransientError, so the driver retries it with backoff and settles nothing.

The client is built through `client_factory` (the I/O seam): unit tests pass
a client on a scripted transport for responses a real server can't give on
demand.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from prometheus_client import Counter

from pipeline.context import BuildContext
from pipeline.errors import ConfigError, StartError, TransientError
from pipeline.event import Event
from pipeline.httpauth import basic_credentials, bearer_token
from pipeline.logs import component_log
from pipeline.metrics import ComponentStats, Metrics
from pipeline.registry import register
from pipeline.secrets import secret_value
from pipeline.sink import Outcome
from pipeline.template import Template
from pipeline.tls import TlsOptions, client_context, refusal, warn_if_unverified
from sinks.elasticsearch.bulk import (
    BulkEncoder,
    BulkResponseError,
    BulkResponseSerializer,
    Chunk,
    IndexNamer,
    ItemOutcomes,
    classify,
    response_filter,
)
from sinks.elasticsearch.client import ApiError, AsyncElasticsearch, TransportError
from sinks.elasticsearch.config import ElasticsearchSinkConfig
from sinks.elasticsearch.ecs_template import ecs_template_body
from sinks.elasticsearch.template import install, lacks_match_only_text, template_body

__all__ = ["ElasticsearchSink", "ElasticsearchSinkConfig", "build"]

log = logging.getLogger(__name__)

Auth = dict[str, Any]  # keyword arguments of AsyncElasticsearch: basic_auth / api_key / bearer_auth, ssl_context
ClientFactory = Callable[[ElasticsearchSinkConfig, Auth], AsyncElasticsearch]

_COUNTERS: weakref.WeakKeyDictionary[Metrics, Counter] = weakref.WeakKeyDictionary()


def items_counter(metrics: Metrics) -> Counter:
    """`pipeline_elasticsearch_items_total{component, result}`, one per metrics registry."""
    counter = _COUNTERS.get(metrics)
    if counter is None:
        counter = Counter(
            "pipeline_elasticsearch_items",
            "Bulk items by result: created, duplicate (409 on "
            "create: already indexed), retry (429/5xx item, retried alone), rejected (dead-lettered).",
            ["component", "result"],
            registry=metrics.registry,
        )
        _COUNTERS[metrics] = counter
    return counter


def default_client(config: ElasticsearchSinkConfig, auth: Auth) -> AsyncElasticsearch:
    kwargs: dict[str, Any] = {
        "request_timeout": config.request_timeout,
        # Retrying is the driver's job: backoff with jitter, metrics, nothing settled meanwhile.
        "max_retries": 0,
        "retry_on_timeout": False,
        "http_compress": config.compression,
        "serializers": {"application/json": BulkResponseSerializer()},
        **auth,
    }
    return AsyncElasticsearch(list(config.hosts), **kwargs)


def redact_host(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


def api_error_text(exc: ApiError) -> str:
    """`HTTP 400 <type>: <reason>` from an ApiError, without dumping the whole body."""
    status = exc.meta.status if exc.meta is not None else "?"
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"HTTP {status} {err.get('type', '')}: {err.get('reason', '')}"
    return f"HTTP {status} {exc.message}"


class ElasticsearchSink:
    def __init__(
        self,
        name: str,
        config: ElasticsearchSinkConfig,
        *,
        metrics: Metrics,
        stats: ComponentStats,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.name = name
        self.log = component_log(log, name)
        self.config = config
        self.stats = stats
        target = config.target_template
        try:
            template = Template(target, missing="unknown", strict_dates=True)
        except ValueError as exc:
            raise ConfigError([f"index: {exc}"]) from None
        namer = IndexNamer(template, {"log_type": config.default_log_type})
        self.encoder = BulkEncoder(namer, config.bulk_max_bytes, max_doc_bytes=config.max_document_bytes)
        self.template_body = ecs_template_body(config) if config.template.schema_ == "ecs" else template_body(config)
        self._auth = read_auth(config)  # ConfigError on unreadable secret or TLS files
        if any(str(h).lower().startswith("https:") for h in config.hosts):
            # Our own context: the client's default skips the host-name check for IP addresses.
            self._auth["ssl_context"] = client_context(config.tls or TlsOptions())
        self._factory = client_factory or default_client
        self._client: AsyncElasticsearch | None = None
        self._closed = False  # after aclose, only start() opens a client again (not a late healthcheck)
        self._hosts = ", ".join(redact_host(h) for h in config.hosts)
        self._items = items_counter(metrics)
        self._started_once = False

    @property
    def client(self) -> AsyncElasticsearch:
        if self._client is None:
            if self._closed:
                raise TransientError(f"elasticsearch sink {self.name} is closed")
            self._client = self._factory(self.config, self._auth)
        return self._client

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self._closed = False
        if not self._started_once:
            self._started_once = True
            warn_if_unverified(self.log, self.config.tls, self._hosts)
        opts = self.config.template
        if not opts.install:
            await self._check_access()
            return
        try:
            try:
                written = await install(self.client, opts.name, self.template_body)
            except ApiError as exc:
                if opts.text_type != "auto" or not lacks_match_only_text(str(exc.body)):
                    raise
                self.log.warning(
                    "this Elasticsearch has no match_only_text type (mapper-extras module missing): "
                    "free-text fields are mapped as text",
                    extra={"template": opts.name},
                )
                self.template_body = template_body(self.config, "text")
                written = await install(self.client, opts.name, self.template_body)
        except ApiError as exc:
            status = exc.meta.status if exc.meta is not None else 0
            if status in (401, 403):
                raise self._auth_refused(exc) from None
            if status == 400:  # the template itself is refused (e.g. a same-priority overlap): fix the config
                hint = (
                    " (this cluster has no match_only_text type: set template.text_type to auto or text)"
                    if lacks_match_only_text(str(exc.body))
                    else ""
                )
                raise StartError(
                    "template", f"Elasticsearch refused index template {opts.name!r}: {api_error_text(exc)}{hint}"
                ) from None
            raise TransientError(f"installing index template {opts.name!r}: {api_error_text(exc)}") from exc
        except TransportError as exc:
            tls = refusal(exc)
            if tls is not None:
                raise StartError(tls[0], f"{self._hosts}: {tls[1]}") from None
            raise TransientError(f"installing index template {opts.name!r} on {self._hosts}: {exc}") from exc
        if written:
            self.log.info("index template installed", extra={"template": opts.name})

    async def _check_access(self) -> None:
        """With no template to install, one request still proves TLS and credentials at start."""
        try:
            await self.client.options(request_timeout=5).cluster.health()
        except ApiError as exc:
            if exc.meta is not None and exc.meta.status in (401, 403):
                raise self._auth_refused(exc) from None
        except TransportError as exc:
            tls = refusal(exc)
            if tls is not None:
                raise StartError(tls[0], f"{self._hosts}: {tls[1]}") from None
            raise TransientError(f"elasticsearch unreachable at {self._hosts}: {exc}") from exc

    def _auth_refused(self, exc: ApiError) -> StartError:
        status = exc.meta.status if exc.meta is not None else 0
        schemes = self.config.auth_schemes() + (["api_key"] if self.config.api_key or self.config.api_key_file else [])
        key = {"basic": "password", "bearer_token": "bearer_token", "api_key": "api_key"}.get(
            schemes[0] if schemes else "", "username"
        )
        what = "credentials refused" if status == 401 else "access forbidden for these credentials"
        return StartError(key, f"{self._hosts}: HTTP {status}: {what}")

    async def healthcheck(self) -> None:
        try:
            response = await self.client.options(request_timeout=5).cluster.health()
        except ApiError as exc:
            raise TransientError(f"elasticsearch at {self._hosts}: cluster health: {api_error_text(exc)}") from exc
        except TransportError as exc:
            raise TransientError(f"elasticsearch unreachable at {self._hosts}: {exc}") from exc
        status = (response.body or {}).get("status")
        if status == "red":
            raise TransientError(f"elasticsearch at {self._hosts}: cluster health is red")

    async def aclose(self) -> None:
        """Close the client, on every path (also when start never succeeded); safe to call twice."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- sending ---------------------------------------------------------------------------
    async def send(self, events: list[Event]) -> Outcome:
        chunks, rejected = self.encoder.encode(events)
        truncated = sum(c.truncated for c in chunks)
        if truncated:
            self.log.warning(
                "messages cut to fit max_document_bytes (tagged _truncated)",
                extra={"events": truncated, "max_document_bytes": self.config.max_document_bytes},
            )
        out = ItemOutcomes(rejected=rejected)
        for n, chunk in enumerate(chunks):
            try:
                await self._bulk(chunk, out)
            except TransientError as exc:
                if n == 0:
                    raise  # nothing sent yet: the driver retries the whole send and logs why
                # Earlier requests landed: retry only this one and the rest.
                self.log.warning(
                    "bulk request failed, retrying its events",
                    extra={
                        "error": str(exc),
                        "events": sum(len(c.positions) for c in chunks[n:]),
                    },
                )
                for later in chunks[n:]:
                    out.retry.extend(later.positions)
                out.retry_causes["request"] += 1
                break
        self._count(out)
        return Outcome(retry=out.retry, rejected=out.rejected, retry_reason=out.retry_reason)

    async def _bulk(self, chunk: Chunk, out: ItemOutcomes) -> None:
        kwargs: dict[str, Any] = {"filter_path": response_filter()}
        if self.config.pipeline:
            kwargs["pipeline"] = self.config.pipeline
        try:
            response = await self.client.bulk(operations=chunk.body, **kwargs)  # type: ignore[arg-type]
        except ApiError as exc:
            status = exc.meta.status if exc.meta is not None else 0
            if status == 413:
                await self._too_large(chunk, out, exc)
                return
            raise TransientError(f"bulk request to {self._hosts}: {api_error_text(exc)}") from exc
        except TransportError as exc:
            raise TransientError(f"bulk request to {self._hosts}: {exc}") from exc
        self.stats.bytes_out += len(chunk.body)
        try:
            classify(response.body, chunk.positions, out)
        except BulkResponseError as exc:
            raise TransientError(str(exc)) from exc

    async def _too_large(self, chunk: Chunk, out: ItemOutcomes, exc: ApiError) -> None:
        """HTTP 413: the node's http.max_content_length is below bulk_max_bytes. Halve until it fits."""
        if len(chunk.positions) == 1:
            out.rejected.append(
                (
                    chunk.positions[0],
                    f"request_entity_too_large: {api_error_text(exc)} (a document of {len(chunk.body)} bytes "
                    "alone: set max_document_bytes below the cluster's http.max_content_length)",
                )
            )
            return
        # Actions and documents are one line each (JSON escapes newlines): split between pairs.
        lines = chunk.body.split(b"\n")
        half = len(chunk.positions) // 2
        for start, stop in ((0, half), (half, len(chunk.positions))):
            body = b"\n".join(lines[2 * start : 2 * stop]) + b"\n"
            await self._bulk(Chunk(body, chunk.positions[start:stop]), out)

    def _count(self, out: ItemOutcomes) -> None:
        items = self._items
        for result, n in (
            ("created", out.created),
            ("duplicate", out.duplicates),
            ("retry", len(out.retry)),
            ("rejected", len(out.rejected)),
        ):
            if n:
                items.labels(self.name, result).inc(n)


def read_auth(config: ElasticsearchSinkConfig) -> Auth:
    basic = basic_credentials(config)
    if basic is not None:
        return {"basic_auth": basic}
    api_key = secret_value(config.api_key, config.api_key_file, "api_key")
    if api_key is not None:
        return {"api_key": api_key}
    token = bearer_token(config)
    if token is not None:
        return {"bearer_auth": token}
    return {}


@register("sink", "elasticsearch", ElasticsearchSinkConfig)
def build(name: str, config: ElasticsearchSinkConfig, ctx: BuildContext) -> ElasticsearchSink:
    stats = ctx.metrics.component(name, "sink", config.type)
    return ElasticsearchSink(name, config, metrics=ctx.metrics, stats=stats)
