"""`parse` transform: run the pure parsers/ over a batch (built-in formats by log_type, or user grok).

The parsing itself lives in parsers/ (pure, no I/O); this adapter only turns
config into a parser object once, at build time, and calls it in one loop per
batch. Bad config (an unknown grok pattern) is a ConfigError naming the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parsers import LOG_TYPES, EventParser, GrokError, OptionError
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
    ecs_compatibility: Literal["disabled", "v1"] = Field(
        default="disabled",
        description="Built-in grok pattern set, as Logstash's option: `disabled` captures the legacy field names "
        "(`clientip`, `response`), `v1` the Elastic Common Schema ones (`[source][address]`, "
        "`[http][response][status_code]`).",
        examples=["v1"],
    )
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
            ecs_compatibility=config.ecs_compatibility,
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
    except OptionError as exc:
        raise ConfigError([f"{exc.option}: {exc}"]) from None
    return ParseTransform(name, parser, ctx.metrics.component(name, "transform", "parse"))
