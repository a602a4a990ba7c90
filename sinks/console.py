"""`console` sink: events to standard output (debugging)."""

from __future__ import annotations

import sys
from typing import Any, Literal

from pydantic import Field

from pipeline.config import SinkConfig
from pipeline.context import BuildContext
from pipeline.registry import register
from pipeline.sink import Outcome
from sinks.encoding import json_lines


class ConsoleSinkConfig(SinkConfig):
    type: Literal["console"]
    encoding: Literal["json", "text"] = Field(
        default="json", description="`json`: one JSON object per line; `text`: the message."
    )
    stream: Literal["stdout", "stderr"] = Field(default="stdout", description="Where to write.")


class ConsoleSink:
    def __init__(self, name: str, config: ConsoleSinkConfig) -> None:
        self.name = name
        self.config = config

    async def start(self) -> None:
        return None

    async def healthcheck(self) -> None:
        return None

    async def send(self, events: list[dict[str, Any]]) -> Outcome:
        out = sys.stdout if self.config.stream == "stdout" else sys.stderr
        if self.config.encoding == "json":
            data = json_lines(events)
        else:
            data = "".join(f"{e.get('message', '')}\n" for e in events).encode("utf-8", "replace")
        out.buffer.write(data)
        out.flush()
        return Outcome.delivered()

    async def aclose(self) -> None:
        return None


@register("sink", "console", ConsoleSinkConfig)
def build(name: str, config: ConsoleSinkConfig, ctx: BuildContext) -> ConsoleSink:
    return ConsoleSink(name, config)
