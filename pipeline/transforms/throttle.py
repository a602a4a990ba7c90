"""`throttle` transform: at most N events per period per key; the excess dropped or tagged (Vector's throttle).

Each key (a template over the event: `{service}`, `{service}/{level}`) has a
token bucket holding `threshold` events, refilled evenly over `window`, so a
burst up to the threshold passes and a steady flood is cut to the rate. The
excess is dropped (counted in `pipeline_events_dropped_total`, settled with its
batch) or, with `action: tag`, kept and tagged `_throttled` (counted in
`pipeline_events_tagged_total`). Keys idle for a whole window are forgotten
(their bucket is full again anyway); at most `max_keys` are tracked, the least
recently seen forgotten first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator

from parsers.types import THROTTLED, add_tag
from pipeline.conditions import Condition, compile_condition
from pipeline.config import TransformConfig
from pipeline.context import BuildContext
from pipeline.event import Event
from pipeline.metrics import ComponentStats
from pipeline.registry import register
from pipeline.template import Template, check_template
from pipeline.units import Duration

Clock = Callable[[], float]


class ThrottleTransformConfig(TransformConfig):
    """At most `threshold` events per `window` for each key; the excess dropped or tagged `_throttled`."""

    type: Literal["throttle"]
    threshold: int = Field(gt=0, description="Events allowed per window for one key.", examples=[100])
    window: Duration = Field(gt=0, description="The period the threshold applies to.", examples=["1m"])
    key: str = Field(
        default="",
        description="Template of the key the limit applies to (docs/templates.md); empty: one limit for all "
        "events. A missing field renders empty.",
        examples=["{service}/{level}"],
    )
    action: Literal["drop", "tag"] = Field(
        default="drop", description="What happens to the excess: `drop` it, or `tag` it `_throttled` and keep it."
    )
    always_keep: Condition | None = Field(
        default=None,
        description="Events that match are never throttled and do not use the allowance (docs/conditions.md).",
        examples=[{"field": "level", "in": ["ERROR", "CRITICAL"]}],
    )
    max_keys: int = Field(
        default=10000, gt=0, description="Keys tracked at most; the least recently seen are forgotten first."
    )

    @field_validator("key")
    @classmethod
    def _key_template(cls, value: str) -> str:
        return check_template(value)


class ThrottleTransform:
    def __init__(
        self, name: str, config: ThrottleTransformConfig, stats: ComponentStats, clock: Clock = time.monotonic
    ) -> None:
        self.name = name
        self.stats = stats
        self.clock = clock
        self.capacity = float(config.threshold)
        self.window = config.window
        self.refill = config.threshold / config.window  # tokens per second
        self.key = Template(config.key).renderer
        self.tag = config.action == "tag"
        self.always = compile_condition(config.always_keep) if config.always_keep is not None else None
        self.max_keys = config.max_keys
        self.buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill time]
        self._next_prune = 0.0

    def process(self, events: list[Event]) -> list[Event]:
        now = self.clock()  # once per batch: events of one batch arrived together
        buckets, capacity, refill, key, always = self.buckets, self.capacity, self.refill, self.key, self.always
        out: list[Event] = []
        tagged = 0
        for event in events:
            if always is not None and always(event):
                out.append(event)
                continue
            k = key(event)
            bucket = buckets.get(k)
            if bucket is None:
                bucket = buckets[k] = [capacity, now]
            elif bucket[1] != now:
                tokens = bucket[0] + (now - bucket[1]) * refill
                bucket[0] = tokens if tokens < capacity else capacity
                bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                out.append(event)
            elif self.tag:
                add_tag(event, THROTTLED)
                tagged += 1
                out.append(event)
        if tagged:
            self.stats.tags[THROTTLED] = self.stats.tags.get(THROTTLED, 0) + tagged
        if now >= self._next_prune or len(buckets) > self.max_keys:
            self._prune(now)
        return out

    def _prune(self, now: float) -> None:
        """Forget keys idle for a window (full again), then the least recently seen beyond max_keys."""
        self._next_prune = now + self.window
        idle_since = now - self.window
        buckets = self.buckets
        for k in [k for k, b in buckets.items() if b[1] <= idle_since]:
            del buckets[k]
        excess = len(buckets) - self.max_keys
        if excess > 0:
            for k in sorted(buckets, key=lambda k: buckets[k][1])[:excess]:
                del buckets[k]


@register("transform", "throttle", ThrottleTransformConfig)
def build_throttle(name: str, config: ThrottleTransformConfig, ctx: BuildContext) -> ThrottleTransform:
    return ThrottleTransform(name, config, ctx.metrics.component(name, "transform", "throttle"))
