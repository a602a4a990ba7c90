"""`geoip` transform: country, city, location and ASN of an IP field (parsers/geoip.py does the lookups).

The database is opened once, at build time; an unreadable one is a ConfigError
naming the key. Lookups are cached and the files reloaded when they change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from parsers import GEOIP_FAILURE, GeoIPDatabaseError, GeoIPEnricher
from pipeline.config import TransformConfig
from pipeline.context import BuildContext
from pipeline.errors import ConfigError
from pipeline.event import Event
from pipeline.metrics import ComponentStats
from pipeline.registry import register
from pipeline.units import Duration


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
        self.enricher.enrich_batch(events)
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
