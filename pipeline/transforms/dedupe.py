"""`dedupe` transform: drop events already seen, by the values of some fields, within a bounded cache (Vector's dedupe).

The key of an event is its values of `fields`; the cache remembers the last
`cache_size` keys (least recently seen forgotten first), so memory is bounded
and a duplicate is caught when it comes within that many distinct events.
Keys are kept as 64-bit hashes of the values, not the values, so long messages
cost no memory; the hash is seeded per process (Python's SipHash), and a false
match between two different events is in the order of one in 10^15 at the
default size. An event that has none of the fields is never a duplicate.

Typical keys: `event_id` (the file source's host + file + offset id, so lines
read twice after a crash are delivered once), or `@timestamp`, `host`, `message`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import orjson
from pydantic import Field

from parsers.fieldpath import compile_getter
from pipeline.config import TransformConfig
from pipeline.context import BuildContext
from pipeline.event import Event
from pipeline.registry import register


class DedupeTransformConfig(TransformConfig):
    """Drop an event whose values of `fields` were seen among the last `cache_size` distinct keys."""

    type: Literal["dedupe"]
    fields: list[str] = Field(
        default_factory=lambda: ["@timestamp", "host", "message"],
        min_length=1,
        description="The fields (dotted paths) whose values together identify an event.",
        examples=[["event_id"]],
    )
    cache_size: int = Field(default=5000, gt=0, description="Distinct keys remembered.", examples=[100000])


class DedupeTransform:
    def __init__(self, name: str, config: DedupeTransformConfig) -> None:
        self.name = name
        self.getters = [compile_getter(f) for f in config.fields]
        self.cache_size = config.cache_size
        self.seen: OrderedDict[int, None] = OrderedDict()

    def process(self, events: list[Event]) -> list[Event]:
        getters, seen, size = self.getters, self.seen, self.cache_size
        single = getters[0] if len(getters) == 1 else None
        kept: list[Event] = []
        for event in events:
            if single is not None:
                value = single(event)
                if value is None:
                    kept.append(event)
                    continue
                values: tuple[object, ...] = (value,)
            else:
                values = tuple(get(event) for get in getters)
                if all(v is None for v in values):
                    kept.append(event)
                    continue
            try:
                key = hash(values)
            except TypeError:  # a list or mapping among the values: hash its JSON text
                key = hash(orjson.dumps(values, default=str, option=orjson.OPT_SORT_KEYS))
            if key in seen:
                seen.move_to_end(key)
                continue
            seen[key] = None
            if len(seen) > size:
                seen.popitem(last=False)
            kept.append(event)
        return kept


@register("transform", "dedupe", DedupeTransformConfig)
def build_dedupe(name: str, config: DedupeTransformConfig, ctx: BuildContext) -> DedupeTransform:
    return DedupeTransform(name, config)
