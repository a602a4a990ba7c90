"""Config model of the `elasticsearch` sink."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.config import Model, SinkConfig
from pipeline.event import DEFAULT_LOG_TYPE
from pipeline.httpauth import HttpAuthOptions
from pipeline.template import check_name_template
from pipeline.tls import TlsOptions
from pipeline.units import ByteSize, Duration
from pipeline.urls import HttpUrl

DEFAULT_INDEX = "logs-{log_type}-%Y.%m.%d"
DATA_STREAM_INDEX = "logs-{log_type}-{namespace}"


class IndexTemplateOptions(Model):
    install: bool = Field(
        default=True,
        description="Install (or update) the index template at start. It is "
        "compared first and only written when it differs, so many replicas can start at once.",
    )
    name: str = Field(
        default="pipeline-logs", min_length=1, description="Name of the index template.", examples=["pipeline-logs"]
    )
    index_patterns: list[str] = Field(
        default_factory=lambda: ["logs-*"],
        min_length=1,
        description="Indices (or data streams) the template applies to.",
        examples=[["logs-*"]],
    )
    priority: int = Field(
        default=200,
        ge=0,
        description="Template priority. Above 100 so it wins over the "
        "built-in `logs-*-*` template of a default Elasticsearch distribution.",
        examples=[200],
    )
    text_type: Literal["auto", "match_only_text", "text"] = Field(
        default="auto",
        description="Type of the free-text fields (`message`, `error.message`, `error.stack_trace`), searched "
        "whatever their length. `match_only_text`: made for logs, a smaller index (no frequencies, positions or "
        "norms; no scores; phrase queries still work, slower); needs Elasticsearch's mapper-extras module. "
        "`text`: full text without norms. `auto`: match_only_text, or text (with a warning) on a cluster "
        "that lacks it.",
        examples=["auto", "text"],
    )
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Extra index settings of the template (flat keys).",
        examples=[{"index.number_of_shards": 1, "index.number_of_replicas": 1}],
    )
    schema_: Literal["default", "ecs"] = Field(
        default="default",
        alias="schema",
        description="Which mappings: `default` for the flat field names, `ecs` for events parsed with the "
        "parse transform's `schema: ecs` (ECS types: source.ip an ip, http.response.status_code a long, "
        "event.created a date, source.geo.location a geo_point, ...).",
        examples=["ecs"],
    )


class ElasticsearchSinkConfig(SinkConfig, HttpAuthOptions):
    type: Literal["elasticsearch"]
    hosts: list[HttpUrl] = Field(
        default_factory=lambda: ["http://127.0.0.1:9200"],
        min_length=1,
        description="Elasticsearch nodes (scheme, host, port).",
        examples=[["https://es-1:9200", "https://es-2:9200"]],
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key (the base64 `id:key` form).", examples=["${ES_API_KEY}"]
    )
    api_key_file: Path | None = Field(
        default=None, description="File holding the API key.", examples=["/run/secrets/es-api-key"]
    )
    tls: TlsOptions | None = Field(
        default=None,
        description="TLS to https hosts: CA, client certificate, verification (the shared TLS options, see "
        "docs/security.md). Unset: the system trust store, verification on.",
        examples=[{"ca_file": "/etc/ssl/certs/es-ca.pem"}],
    )
    mode: Literal["index", "data_stream"] = Field(
        default="index",
        description="`index`: write to the index rendered from `index` (one per log type and "
        "day by default). `data_stream`: write to the data stream `logs-{log_type}-{namespace}`; the template gets "
        "a data_stream section (needs Elasticsearch's data-streams module).",
        examples=["index"],
    )
    index: str = Field(
        default=DEFAULT_INDEX,
        description="Index name template: `{field}` / `{dotted.field}` from the event, "
        "`%Y %m %d %H` from its own @timestamp (a late event lands in its own day). Lowercased. In data_stream "
        "mode the default is `logs-{log_type}-{namespace}` and date codes are not allowed.",
        examples=["logs-{log_type}-%Y.%m.%d"],
    )
    namespace: str = Field(
        default="default",
        min_length=1,
        description="Data stream namespace (data_stream mode).",
        examples=["production"],
    )
    default_log_type: str = Field(
        default=DEFAULT_LOG_TYPE,
        min_length=1,
        description="Value of `{log_type}` for events without one: the same default in every sink, so such "
        "an event lands in the application index here, the application table in ClickHouse and the "
        "application topic in Kafka. Other placeholders the event lacks render as `unknown`.",
        examples=["application"],
    )
    template: IndexTemplateOptions = Field(
        default_factory=IndexTemplateOptions, description="The index template installed at start."
    )
    bulk_max_bytes: ByteSize = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest bulk request body; a larger send is split into several requests.",
        examples=["10MiB"],
    )
    max_document_bytes: ByteSize = Field(
        default=10 * 1024 * 1024,
        gt=0,
        description="Largest document (the event as JSON) sent whole; a larger one has its `message` cut to fit "
        "and is tagged `_truncated` (one too large without its message goes to the dead-letter queue). Keep it "
        "below the cluster's http.max_content_length (100mb by default): a request over that is refused with "
        "413, and a document refused alone is dead-lettered.",
        examples=["10MiB"],
    )
    request_timeout: Duration = Field(default=30.0, gt=0, description="Timeout of one request.", examples=["30s"])
    compression: bool = Field(default=False, description="gzip request bodies (less network, more CPU).")
    pipeline: str | None = Field(
        default=None, description="Ingest pipeline to run on every document.", examples=["logs-enrich"]
    )

    def max_event_bytes(self) -> int | None:
        """The largest document (JSON event) sent unchanged; a larger event's message is cut."""
        return self.max_document_bytes

    @field_validator("index")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        return check_name_template(value)

    @model_validator(mode="after")
    def _consistent(self) -> ElasticsearchSinkConfig:
        # Basic auth and bearer tokens are checked by HttpAuthOptions; the API key is ours.
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("set api_key or api_key_file, not both")
        schemes = self.auth_schemes()
        if self.api_key is not None or self.api_key_file is not None:
            schemes.append("api_key")
        if len(schemes) > 1:
            raise ValueError(f"choose one authentication: {' / '.join(schemes)}")
        if self.mode == "data_stream" and "index" in self.model_fields_set and "%" in self.index:
            raise ValueError("index: a data stream name cannot have date codes (the data stream rolls over itself)")
        return self

    @property
    def target_template(self) -> str:
        """The index (or data stream) name template actually used."""
        if self.mode == "data_stream" and "index" not in self.model_fields_set:
            return DATA_STREAM_INDEX.replace("{namespace}", self.namespace)
        return self.index.replace("{namespace}", self.namespace)
