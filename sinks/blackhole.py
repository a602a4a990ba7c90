"""`blackhole` sink: counts and discards (benchmarks)."""

from __future__ import annotations

from typing import Any, Literal

from pipeline.config import SinkConfig
from pipeline.context import BuildContext
from pipeline.registry import register
from pipeline.sink import Outcome


class BlackholeSinkConfig(SinkConfig):
    type: Literal["blackhole"]


class BlackholeSink:
    def __init__(self, name: str) -> None:
        self.name = name
        self.received = 0

    async def start(self) -> None:
        return None

    async def healthcheck(self) -> None:
        return None

    async def send(self, events: list[dict[str, Any]]) -> Outcome:
        self.received += len(events)
        return Outcome.delivered()

    async def aclose(self) -> None:
        return None


@register("sink", "blackhole", BlackholeSinkConfig)
def build(name: str, config: BlackholeSinkConfig, ctx: BuildContext) -> BlackholeSink:
    return BlackholeSink(name)
