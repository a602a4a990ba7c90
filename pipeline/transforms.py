"""`parse` and `geoip` transforms: run the pure parsers/ functions over a batch.

The parsing itself lives in parsers/ (pure, no I/O); these adapters only turn
config into parser objects once, at build time, and call them in one loop per
batch. Bad config (an unknown grok pattern, an unreadable GeoIP database) is a
ConfigError naming the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parsers import GEOIP_FAILURE, LOG_TYPES, EventParser, GeoIPDatabaseError, GeoIPEnricher, GrokError
from pipeline.config import TransformConfig
from pipeline.context import BuildContext
from pipeline.errors import ConfigError
from pipeline.event import Event
from pipeline.metrics import ComponentStats
from pipeline.registry import register
from pipeline.units import ByteSize, Duration


class ParseTransformConfig(TransformConfig):
    type: Literal["parse"]
    log_type: str = Field(
        default="auto",
        description=f"One of {', '.join(LOG_TYPES)}. `auto` uses the event's own `log_type` (set by the source) "
        "and detects the format by shape when it has none.",
        examples=["access"],
    )
    grok: list[str] = Field(
        default_factory=list,
        description="User grok expressions tried in order (first match wins) instead of the built-in formats.",
        examples=[["%{COMBINEDAPACHELOG}"]],
    )
    pattern_definitions: dict[str, str] = Field(default_factory=dict, description="Extra grok patterns, NAME: regex.")
    patterns_dir: str | None = Field(default=None, description="Folder of extra pattern files (`NAME regex` lines).")
    named_captures_only: bool = Field(default=True, description="Capture only `%{NAME:field}`, not bare `%{NAME}`.")
    grok_timeout: Duration | None = Field(
        default=None, description="Per-event time limit for user grok (tags `_groktimeout`)."
    )
    date_formats: list[str] = Field(
        default_factory=list, description="strptime formats (or ISO8601, UNIX, UNIX_MS) tried first for timestamps."
    )
    timezone: str = Field(default="UTC", description="Zone for timestamps written without an offset.")
    overwrite_message: bool = Field(default=True, description="Replace `message` with the extracted message text.")
    timestamp_field: str = Field(default="timestamp", description="The grok capture that becomes `@timestamp`.")
    max_json_bytes: ByteSize = Field(default=1024 * 1024, gt=0, description="Larger JSON lines are not decoded.")
    max_json_depth: int = Field(default=32, gt=0, description="Deeper JSON is not decoded.")
    # Output schema and user agents (parsers/ecs.py, parsers/useragent.py).
    schema_: Literal["default", "ecs"] = Field(
        default="default",
        alias="schema",
        description="Field names: `default` (flat: client_ip, status, ...) or `ecs` (the names Filebeat's "
        "nginx/apache modules produce: source.ip, http.response.status_code, url.original, log.level, "
        "event.created, ...), for Elasticsearch dashboards built on Filebeat. Pair `ecs` with the "
        "elasticsearch sink's `template.schema: ecs`.",
        examples=["ecs"],
    )
    web_server: Literal["nginx", "apache"] = Field(
        default="nginx",
        description="With `schema: ecs`: the module access logs are filed under (event.module, event.dataset "
        "`nginx.access` / `apache.access`); both write the same combined format. Error logs are told apart "
        "by their shape.",
        examples=["apache"],
    )
    user_agent: bool | None = Field(
        default=None,
        description="Parse `user_agent` into name, version, OS and device (ua-parser, LRU cached). "
        "Unset: on with `schema: ecs` (Filebeat's modules do it), off with the default schema (adds "
        "fields, and an uncached lookup costs several times a whole access-log parse).",
        examples=[True],
    )
    user_agent_cache_size: int = Field(
        default=10000, gt=0, description="Distinct user agents kept in the LRU cache.", examples=[10000]
    )


class ParseTransform:
    def __init__(self, name: str, parser: EventParser, stats: ComponentStats) -> None:
        self.name = name
        self.parser = parser
        self.stats = stats

    def process(self, events: list[Event]) -> list[Event]:
        self.parser.parse_batch(events)
        self.stats.count_tags(events)
        return events


@register("transform", "parse", ParseTransformConfig)
def build_parse(name: str, config: ParseTransformConfig, ctx: BuildContext) -> ParseTransform:
    try:
        parser = EventParser(
            config.log_type,
            config.grok or None,
            pattern_definitions=config.pattern_definitions or None,
            patterns_dir=config.patterns_dir,
            named_captures_only=config.named_captures_only,
            grok_timeout=config.grok_timeout,
            date_formats=config.date_formats or None,
            timezone=config.timezone,
            overwrite_message=config.overwrite_message,
            timestamp_field=config.timestamp_field,
            max_json_bytes=config.max_json_bytes,
            max_json_depth=config.max_json_depth,
            schema=config.schema_,
            web_server=config.web_server,
            user_agent=config.user_agent,
            user_agent_cache_size=config.user_agent_cache_size,
        )
    except GrokError as exc:
        raise ConfigError([f"grok: {exc}"]) from None
    except ValueError as exc:
        key = "timezone" if "zone" in str(exc).lower() else "log_type" if "log_type" in str(exc) else "grok"
        raise ConfigError([f"{key}: {exc}"]) from None
    return ParseTransform(name, parser, ctx.metrics.component(name, "transform", "parse"))


class GeoIPTransformConfig(TransformConfig):
    type: Literal["geoip"]
    database: str = Field(
        description="GeoIP2/GeoLite2 City (or Country) database file.", examples=["/usr/share/GeoIP/GeoLite2-City.mmdb"]
    )
    asn_database: str | None = Field(default=None, description="Optional GeoLite2-ASN database file.")
    field: str = Field(default="client_ip", description="Event field holding the IP address (dotted path allowed).")
    target: str = Field(default="geoip", description="Field the result is written to.")
    cache_size: int = Field(default=10000, ge=0, description="LRU cache entries (IP -> result).")
    reload_check_interval: Duration = Field(
        default=5.0,
        gt=0,
        description="How often the database files are checked for changes; "
        "a changed file is reopened without a restart.",
    )


class GeoIPTransform:
    def __init__(self, name: str, enricher: GeoIPEnricher, stats: ComponentStats) -> None:
        self.name = name
        self.enricher = enricher
        self.stats = stats

    def process(self, events: list[Event]) -> list[Event]:
        enrich = self.enricher
        for event in events:
            enrich(event)
        self.stats.count_tags(events, _GEOIP_TAGS)
        return events


_GEOIP_TAGS = frozenset({GEOIP_FAILURE})


@register("transform", "geoip", GeoIPTransformConfig)
def build_geoip(name: str, config: GeoIPTransformConfig, ctx: BuildContext) -> GeoIPTransform:
    try:
        enricher = GeoIPEnricher(
            config.database,
            config.asn_database,
            field=config.field,
            target=config.target,
            cache_size=config.cache_size,
            reload_check_interval=config.reload_check_interval,
        )
    except GeoIPDatabaseError as exc:
        key = "asn_database" if config.asn_database and config.asn_database in str(exc) else "database"
        raise ConfigError([f"{key}: {exc}"]) from None
    return GeoIPTransform(name, enricher, ctx.metrics.component(name, "transform", "geoip"))
