"""`loki` sink: events to Loki's push API (protobuf + snappy, or JSON), labels from templates, capped streams.

- `config.py`: the config model (`type: loki`).
- `streams.py`: events -> streams: label templates, the caps on distinct streams, sorted entries.
- `encoding.py`: streams -> a push request body (hand-written protobuf + snappy block, or JSON).
- `sink.py`: the HTTP client and how each answer is classified (retry, split, dead-letter).

Any server that speaks Loki's push API works: Grafana Loki, VictoriaLogs (`path:
/insert/loki/api/v1/push`), and others.
"""

from __future__ import annotations

from pipeline.context import BuildContext
from pipeline.registry import register
from sinks.loki.config import LokiSinkConfig
from sinks.loki.sink import LokiSink

__all__ = ["LokiSink", "LokiSinkConfig", "build"]


@register("sink", "loki", LokiSinkConfig)
def build(name: str, config: LokiSinkConfig, ctx: BuildContext) -> LokiSink:
    stats = ctx.metrics.component(name, "sink", config.type)
    return LokiSink(name, config, metrics=ctx.metrics, stats=stats)
