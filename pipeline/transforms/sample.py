"""`sample` transform: keep a fraction of events, always keeping those that matter (Vector's sample).

- `rate: 0.1` keeps one event in ten. Without a key the choice is a counter
  (exactly every tenth event, reproducible in `pipeline test`).
- `key_field: request_id` decides by a hash of that field's value instead, so
  every line of one request is kept or dropped together, on every host and
  across restarts (BLAKE2b of the value's text: no per-process seed). Events
  without the field fall back to the counter.
- `always_keep` (a condition) is never sampled: WARNING and above, say.

Dropped events are counted (`pipeline_events_dropped_total`) and settle with
their batch.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Literal

from pydantic import Field

from parsers.fieldpath import compile_getter
from pipeline.conditions import Condition, compile_condition
from pipeline.config import TransformConfig
from pipeline.context import BuildContext
from pipeline.event import Event
from pipeline.registry import register
from pipeline.template import to_text

_SCALE = 1_000_000  # the counter works in millionths of an event, so a rate like 0.1 never drifts
_HASH_SPACE = 1 << 64


class SampleTransformConfig(TransformConfig):
    """Keep a fraction of events; `always_keep` ones are never sampled out."""

    type: Literal["sample"]
    rate: float = Field(gt=0, le=1, description="Fraction of events kept: 0.1 keeps one in ten.", examples=[0.1])
    key_field: str | None = Field(
        default=None,
        description="Decide by this field's value (dotted path), so events sharing it are kept or dropped "
        "together (a request id); events without it are sampled by the counter.",
        examples=["request_id"],
    )
    always_keep: Condition | None = Field(
        default=None,
        description="Events that match are always kept and not counted towards the rate (docs/conditions.md).",
        examples=[{"field": "level", "in": ["WARNING", "ERROR", "CRITICAL"]}],
    )


class SampleTransform:
    def __init__(self, name: str, config: SampleTransformConfig) -> None:
        self.name = name
        self.always = compile_condition(config.always_keep) if config.always_keep is not None else None
        self.get = compile_getter(config.key_field) if config.key_field else None
        self.threshold = int(config.rate * _HASH_SPACE)
        self.step = max(1, round(config.rate * _SCALE))
        self.credit = _SCALE - self.step  # the first event is kept

    def keeps_key(self, value: object) -> bool:
        """Whether events whose key is `value` are kept: the same answer everywhere, always."""
        digest = blake2b(to_text(value).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self.threshold

    def process(self, events: list[Event]) -> list[Event]:
        always, get, step = self.always, self.get, self.step
        credit = self.credit
        kept: list[Event] = []
        for event in events:
            if always is not None and always(event):
                kept.append(event)
                continue
            if get is not None:
                value = get(event)
                if value is not None:
                    if self.keeps_key(value):
                        kept.append(event)
                    continue
            credit += step
            if credit >= _SCALE:
                credit -= _SCALE
                kept.append(event)
        self.credit = credit
        return kept


@register("transform", "sample", SampleTransformConfig)
def build_sample(name: str, config: SampleTransformConfig, ctx: BuildContext) -> SampleTransform:
    return SampleTransform(name, config)
