"""`filter` transform: keep or drop events by a condition (Vector's filter, Logstash's `if ... { drop {} }`).

Dropped events are counted per component (`pipeline_events_dropped_total`);
their receipts settle with the rest of the batch, or at once when the whole
batch is dropped, so their source positions are released.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pipeline.conditions import Condition, compile_condition
from pipeline.config import TransformConfig
from pipeline.context import BuildContext
from pipeline.event import Event
from pipeline.registry import register


class FilterTransformConfig(TransformConfig):
    """Keep the events that match `keep`, or drop those that match `drop` (exactly one of the two)."""

    type: Literal["filter"]
    keep: Condition | None = Field(
        default=None,
        description="Keep only the events that match (docs/conditions.md); the others are dropped.",
        examples=[{"field": "level", "in": ["WARNING", "ERROR", "CRITICAL"]}],
    )
    drop: Condition | None = Field(
        default=None,
        description="Drop the events that match; the others are kept.",
        examples=[{"field": "path", "equals": "/healthz"}],
    )

    @model_validator(mode="after")
    def _one_of(self) -> FilterTransformConfig:
        if (self.keep is None) == (self.drop is None):
            raise ValueError("a filter has exactly one of `keep` or `drop`")
        return self


class FilterTransform:
    def __init__(self, name: str, config: FilterTransformConfig) -> None:
        self.name = name
        condition = config.keep or config.drop
        assert condition is not None  # the model validator guarantees one
        self.matches = compile_condition(condition)
        self.keep = config.keep is not None

    def process(self, events: list[Event]) -> list[Event]:
        matches = self.matches
        if self.keep:
            return [e for e in events if matches(e)]
        return [e for e in events if not matches(e)]


@register("transform", "filter", FilterTransformConfig)
def build_filter(name: str, config: FilterTransformConfig, ctx: BuildContext) -> FilterTransform:
    return FilterTransform(name, config)
