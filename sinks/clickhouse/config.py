"""Config model of the `clickhouse` sink, and where its DSN points.

The DSN names either a ClickHouse server over HTTP(S) or an embedded chDB
database directory. Parsing it lives here (not in the client) so that
`pipeline validate` reports a bad DSN before anything starts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.config import SinkConfig
from pipeline.event import DEFAULT_LOG_TYPE
from pipeline.tls import TlsOptions
from pipeline.units import Duration
from pipeline.urls import check_http_url

DEFAULT_DSN = "chdb:"
DEFAULT_DATABASE = "logs"
DEFAULT_TABLE = "{log_type}_logs"
CHDB_SUBDIR = "clickhouse"  # `chdb:` with no path: <data_dir>/clickhouse
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MEMORY = ("memory", ":memory:")


class ClickHouseSinkConfig(SinkConfig):
    type: Literal["clickhouse"]
    dsn: str = Field(
        default=DEFAULT_DSN,
        description="Where to write. A server: `http(s)://user:password@host:8123[/database]`. The embedded "
        "engine (chDB, in-process, one database directory per process): `chdb:` alone is `<data_dir>/clickhouse`; "
        "`chdb:///abs/path` is an absolute directory; `chdb:relative/path`, `chdb://relative/path` and "
        "`chdb://./relative/path` are relative to the working directory; `chdb://memory` is in memory "
        "(lost at exit; tests). Prefer `password`/`password_file` to a password in the DSN.",
        examples=["chdb:", "chdb:///var/lib/pipeline/clickhouse", "http://default@clickhouse:8123/logs"],
    )
    password: SecretStr | None = Field(
        default=None,
        description="Server password (overrides one in the DSN). Not used by chDB.",
        examples=["${CLICKHOUSE_PASSWORD}"],
    )
    password_file: Path | None = Field(
        default=None,
        description="File holding the server password (trailing newline stripped).",
        examples=["/run/secrets/clickhouse-password"],
    )
    database: str = Field(
        default=DEFAULT_DATABASE,
        description="Database of the tables (created at start with `create_tables`). "
        "A database in a server DSN's path is used when this is not set; setting both differently is an error.",
        examples=["logs"],
    )
    table: str = Field(
        default=DEFAULT_TABLE,
        description="Table name template; the only placeholder is `{log_type}`, which is "
        "the event's log_type when it has a typed schema (application, access, error) and `other` for any "
        "other log_type (the generic table); an event without one counts as `default_log_type`.",
        examples=["{log_type}_logs"],
    )
    default_log_type: str = Field(
        default=DEFAULT_LOG_TYPE,
        min_length=1,
        description="log_type of events without one, which chooses their table: the same default in every "
        "sink, so such an event lands in application_logs here, the application index in Elasticsearch and the "
        "application topic in Kafka.",
        examples=["application", "other"],
    )
    create_tables: bool = Field(
        default=True,
        description="Create the database and the four tables (application, access, error, other) "
        "at start when missing. An existing table only gets the columns a newer version added "
        "(`ADD COLUMN IF NOT EXISTS`, a metadata change); its engine, sort key and existing columns are never "
        "changed.",
    )
    dedup: bool = Field(
        default=True,
        description="Create tables as ReplacingMergeTree with event_id ending the ORDER BY, so an event "
        "replayed after a crash (the same event_id, timestamp and sort-key values, in any grouping) collapses with "
        "its first copy. Parts merge in the background: until then both copies are stored, and a query sees one "
        "only with `FINAL` or the setting `final = 1`, which `pipeline query` sets (put it in the users' ClickHouse "
        "profile for other clients). Events without an event_id get one hashed from their content. Costs: see "
        "docs/sinks.md. false: plain MergeTree, replays stay visible as duplicates. Applies to tables this "
        "sink creates; an existing table keeps its engine. Retried inserts are idempotent either way "
        "(insert_deduplication_token).",
    )
    retention_days: int = Field(
        default=30,
        ge=0,
        description="TTL of rows by their timestamp, in days; 0 keeps rows forever. Rows "
        "already older than this when inserted are dropped by ClickHouse at once.",
        examples=[30],
    )
    insert_settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Extra ClickHouse settings sent with every insert.",
        examples=[{"async_insert": 0}],
    )
    connect_timeout: Duration = Field(default=10.0, gt=0, description="Server connect timeout.", examples=["10s"])
    send_receive_timeout: Duration = Field(default=60.0, gt=0, description="Server request timeout.", examples=["60s"])
    tls: TlsOptions | None = Field(
        default=None,
        description="TLS to an https server: CA, client certificate, verification (the shared TLS options, "
        "see docs/security.md). Unset: the system trust store, verification on. Not used by chDB.",
        examples=[{"ca_file": "/etc/ssl/certs/clickhouse-ca.pem"}],
    )

    @field_validator("dsn")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].lower() if ":" in value else ""
        if scheme not in ("chdb", "http", "https"):
            raise ValueError("dsn must start with chdb:, http:// or https://")
        if scheme in ("http", "https"):
            check_http_url(value)
        return value

    @field_validator("database")
    @classmethod
    def _database_identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError("must be a plain identifier (letters, digits, _)")
        return value

    @field_validator("table")
    @classmethod
    def _table_template(cls, value: str) -> str:
        if not IDENTIFIER.match(value.replace("{log_type}", "x")):
            raise ValueError("must be an identifier (letters, digits, _) with at most the placeholder {log_type}")
        return value

    @model_validator(mode="after")
    def _one_database(self) -> ClickHouseSinkConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        dsn_db = server_dsn_database(self.dsn)
        if dsn_db and "database" in self.model_fields_set and dsn_db != self.database:
            raise ValueError(f"database {self.database!r} differs from the DSN's database {dsn_db!r}")
        return self

    def max_event_bytes(self) -> int | None:
        """No limit: String columns take values of any length, and inserts are split by the driver's batching."""
        return None

    @property
    def effective_database(self) -> str:
        if "database" not in self.model_fields_set:
            return server_dsn_database(self.dsn) or self.database
        return self.database


@dataclass(frozen=True)
class Target:
    """A parsed DSN: an embedded chDB directory (`path`, None = memory) or a server DSN without database."""

    embedded: bool
    path: Path | None = None
    server_dsn: str = ""

    def describe(self) -> str:
        if self.embedded:
            return f"chdb {self.path}" if self.path else "chdb (memory)"
        return redact(self.server_dsn)


def server_dsn_database(dsn: str) -> str | None:
    if not dsn.lower().startswith(("http://", "https://")):
        return None
    path = unquote(urlsplit(dsn).path).strip("/")
    return path or None


def resolve_target(dsn: str, data_dir: Path, cwd: Path | None = None) -> Target:
    """Where a DSN points; relative chDB paths are made absolute against `cwd` (default: the working dir)."""
    if dsn.lower().startswith("chdb:"):
        rest = dsn[5:]
        if rest.startswith("//"):
            rest = rest[2:]  # chdb://X -> X ; chdb:///abs -> /abs
        rest = rest.split("?", 1)[0]
        if rest in _MEMORY:
            return Target(embedded=True, path=None)
        path = Path(unquote(rest)) if rest else Path(data_dir) / CHDB_SUBDIR
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        # chDB compares engine paths literally: one spelling per directory.
        return Target(embedded=True, path=Path(os.path.realpath(path)))
    parts = urlsplit(dsn)
    # The database is ours to manage (created at start, names qualified): drop it from the DSN.
    return Target(embedded=False, server_dsn=urlunsplit((parts.scheme, parts.netloc, "", parts.query, "")))


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
