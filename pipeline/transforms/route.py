"""`route` transform: named outputs by condition (Vector's route, Logstash's `if` branches, Fluent Bit's rewrite_tag).

Consumers read one output each: `inputs: [router.errors]`. An event goes to
every route whose condition it matches, and to `router._unmatched` when it
matches none. An output nobody reads drops its events (counted as dropped
unless the event also took a route that is read). The topology gives each
output that receives events its own child receipt, so the batch's positions
are released only once every branch has settled.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from pipeline.conditions import Condition, compile_condition
from pipeline.config import TransformConfig
from pipeline.context import BuildContext
from pipeline.event import Event
from pipeline.registry import register

UNMATCHED = "_unmatched"
_ROUTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class RouteTransformConfig(TransformConfig):
    """Send events to named outputs by condition; read them as `<name>.<route>` and `<name>._unmatched`."""

    type: Literal["route"]
    routes: dict[str, Condition] = Field(
        min_length=1,
        description="route name: condition (docs/conditions.md). An event matching several routes takes each; "
        "one matching none goes to `_unmatched`.",
        examples=[
            {
                "errors": {"field": "level", "in": ["ERROR", "CRITICAL"]},
                "slow": {"field": "request_time", "gt": 1.0},
            }
        ],
    )

    @field_validator("routes")
    @classmethod
    def _route_names(cls, routes: dict[str, Condition]) -> dict[str, Condition]:
        for name in routes:
            if not _ROUTE_NAME.fullmatch(name):
                raise ValueError(
                    f"route name {name!r}: use letters, digits, - and _, not starting with _ "
                    f"({UNMATCHED} is the output of unmatched events) and without dots"
                )
        return routes

    def output_names(self) -> tuple[str, ...]:
        return (*self.routes, UNMATCHED)


class RouteTransform:
    def __init__(self, name: str, config: RouteTransformConfig) -> None:
        self.name = name
        self.predicates = [compile_condition(c) for c in config.routes.values()]

    def route(self, events: list[Event]) -> list[list[Event]]:
        predicates = self.predicates
        outs: list[list[Event]] = [[] for _ in range(len(predicates) + 1)]
        unmatched = outs[-1]
        indexed = list(enumerate(predicates))
        for event in events:
            matched = False
            for i, matches in indexed:
                if matches(event):
                    outs[i].append(event)
                    matched = True
            if not matched:
                unmatched.append(event)
        return outs


@register("transform", "route", RouteTransformConfig)
def build_route(name: str, config: RouteTransformConfig, ctx: BuildContext) -> RouteTransform:
    return RouteTransform(name, config)
