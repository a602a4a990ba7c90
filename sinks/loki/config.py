"""Config model of the `loki` sink."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from pipeline.config import SinkConfig
from pipeline.httpauth import HttpAuthOptions
from pipeline.template import Template
from pipeline.tls import TlsOptions
from pipeline.units import Duration
from pipeline.urls import check_http_url

PUSH_PATH = "/loki/api/v1/push"
# Loki's label name rule (the Prometheus one); names starting with `__` are reserved.
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The label that marks the stream events over a cardinality cap go to (see streams.py).
OVERFLOW_LABEL = "pipeline_overflow"
DEFAULT_LABELS = {"job": "pipeline", "host": "{host|unknown}", "log_type": "{log_type|unknown}"}


def metadata_name(field: str) -> str:
    """A structured metadata name for a field path: `trace.id` -> `trace_id`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", field)
    return f"_{name}" if name[:1].isdigit() else name


def _check_name(kind: str, name: str) -> None:
    if not LABEL_NAME.match(name) or name.startswith("__"):
        raise ValueError(f"{kind} name {name!r} is invalid: letters, digits and `_`, not starting with a digit or `__`")


class LokiSinkConfig(SinkConfig, HttpAuthOptions):
    type: Literal["loki"]
    endpoint: str = Field(
        default="http://127.0.0.1:3100",
        description="Base URL of the server (scheme, host, port, and a path prefix if any); `path` is appended. "
        "Credentials go in `username`/`password` or `bearer_token`, never in the URL.",
        examples=["http://loki:3100", "https://logs.example.com", "http://victorialogs:9428"],
    )
    path: str = Field(
        default=PUSH_PATH,
        description="Path of the push API, appended to `endpoint`. VictoriaLogs serves Loki's push API at "
        "`/insert/loki/api/v1/push`.",
        examples=[PUSH_PATH, "/insert/loki/api/v1/push"],
    )
    encoding: Literal["protobuf", "json"] = Field(
        default="protobuf",
        description="Request body: `protobuf` (Loki's PushRequest, snappy-compressed: smaller and faster) or "
        "`json` (the same streams as JSON, for servers or proxies that only take JSON).",
        examples=["protobuf", "json"],
    )
    compression: Literal["none", "gzip"] = Field(
        default="none",
        description="gzip the JSON body (`Content-Encoding: gzip`). Protobuf bodies are always snappy-compressed, "
        "as the push protocol requires, so gzip is for `encoding: json` only.",
        examples=["gzip"],
    )
    labels: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_LABELS),
        min_length=1,
        description="Stream labels: label name -> template (`{field}`, `{a.b}`, `{field|default}`; a plain string "
        "is a constant). Each distinct label set is one Loki stream: keep values few (service, namespace, level), "
        "never ids or free text (those belong in `structured_metadata`). A label that renders empty is left out.",
        examples=[{"job": "pipeline", "namespace": "{kubernetes.namespace|none}", "level": "{level|unknown}"}],
    )
    structured_metadata: dict[str, str] | list[str] = Field(
        default_factory=dict,
        description="Structured metadata (Loki 3) attached to each entry, for high-cardinality values that must "
        "not be labels: a map name -> template, or a list of field paths (`trace.id` is sent as `trace_id`). "
        "Empty values are left out. Needs a Loki 3 server (schema v13) that allows structured metadata.",
        examples=[["trace_id", "request_id"], {"trace_id": "{trace.id}", "user": "{user.name}"}],
    )
    line: str | None = Field(
        default=None,
        description="Template of the log line. Unset: the whole event as one JSON object (LogQL's `| json` "
        "reads its fields back). `{message}` sends the original text, as Promtail does.",
        examples=["{message}", "{level} {message}"],
    )
    tenant_id: str | None = Field(
        default=None,
        description="Tenant (`X-Scope-OrgID` header) of a multi-tenant Loki.",
        examples=["team-a"],
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers (not secrets: use the auth options for those).",
        examples=[{"AccountID": "12", "ProjectID": "34"}],
    )
    tls: TlsOptions | None = Field(
        default=None, description="TLS settings for an https endpoint. Unset: the system trust store, verified."
    )
    request_timeout: Duration = Field(default=30.0, gt=0, description="Timeout of one request.", examples=["30s"])
    healthcheck_path: str = Field(
        default="/ready",
        description="Path (appended to `endpoint`) that answers 2xx when the server is ready; used by /ready. "
        "VictoriaLogs: `/health`.",
        examples=["/ready", "/health"],
    )
    max_streams_per_batch: int = Field(
        default=500,
        gt=0,
        description="Most distinct streams in one push request. Events of further streams go where `overflow` "
        'says (counted in `pipeline_loki_overflow_events_total{cap="batch"}`).',
        examples=[500],
    )
    max_streams: int = Field(
        default=5000,
        gt=0,
        description="Most distinct streams this sink sends to at once (a stream counts until unseen for "
        "`stream_ttl`); Loki's own default limit per tenant is 5000. Events of new streams past the cap go where "
        '`overflow` says (`pipeline_loki_overflow_events_total{cap="total"}`).',
        examples=[5000],
    )
    stream_ttl: Duration = Field(
        default=3600.0,
        gt=0,
        description="A stream not seen for this long no longer counts towards `max_streams`.",
        examples=["1h"],
    )
    overflow: Literal["stream", "dead_letter"] = Field(
        default="stream",
        description="Where events over a stream cap go. `stream`: to one overflow stream labelled "
        f'`{OVERFLOW_LABEL}="true"` plus the constant labels; the labels they would have had are sent as '
        'structured metadata under the same names (so `| service="api"` still finds them). `dead_letter`: to the '
        "dead-letter queue, with the reason. Either way a warning is logged (at most once a minute) and the "
        "events are counted.",
        examples=["stream", "dead_letter"],
    )

    @field_validator("endpoint")
    @classmethod
    def _valid_endpoint(cls, value: str) -> str:
        check_http_url(value)
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            raise ValueError("put credentials in username/password or bearer_token, not in the URL")
        if parts.query or parts.fragment:
            raise ValueError("the endpoint takes no query or fragment")
        return value.rstrip("/")

    @field_validator("path", "healthcheck_path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for name, source in value.items():
            _check_name("label", name)
            if name == OVERFLOW_LABEL:
                raise ValueError(f"label {OVERFLOW_LABEL!r} is reserved: it marks the overflow stream")
            try:
                Template(source)
            except ValueError as exc:
                raise ValueError(f"label {name!r}: {exc}") from None
        return value

    @field_validator("structured_metadata")
    @classmethod
    def _valid_metadata(cls, value: dict[str, str] | list[str]) -> dict[str, str] | list[str]:
        pairs = value.items() if isinstance(value, dict) else [(metadata_name(f), "{" + f + "}") for f in value]
        for name, source in pairs:
            _check_name("structured metadata", name)
            try:
                Template(source)
            except ValueError as exc:
                raise ValueError(f"structured metadata {name!r}: {exc}") from None
        return value

    @field_validator("line")
    @classmethod
    def _valid_line(cls, value: str | None) -> str | None:
        if value is not None:
            Template(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LokiSinkConfig:
        if self.compression == "gzip" and self.encoding == "protobuf":
            raise ValueError("compression: gzip applies to encoding: json (protobuf bodies are always snappy)")
        both = sorted(set(self.labels) & set(self.metadata_templates))
        if both:
            raise ValueError(f"{', '.join(both)}: a name is either a label or structured metadata, not both")
        if self.tls is not None and not self.endpoint.startswith("https://"):
            raise ValueError("tls: set for an http:// endpoint (use https://)")
        reserved = {"content-type", "content-encoding", "content-length", "authorization", "x-scope-orgid"}
        clash = sorted(h for h in self.headers if h.lower() in reserved)
        if clash:
            raise ValueError(f"headers: {', '.join(clash)} are set by the sink (see tenant_id and the auth options)")
        return self

    @property
    def push_url(self) -> str:
        return self.endpoint + self.path

    @property
    def metadata_templates(self) -> dict[str, str]:
        """`structured_metadata` as a map name -> template, whichever form it was given in."""
        value: Any = self.structured_metadata
        if isinstance(value, dict):
            return dict(value)
        return {metadata_name(f): "{" + f + "}" for f in value}
