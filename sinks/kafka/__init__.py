"""`kafka` sink (agent role): events to per-log-type topics, spread over partitions, acked by the broker.

config.py holds the model, records.py turns events into records (pure),
sink.py owns the producer. Importing this package registers the sink.
"""

from __future__ import annotations

from pipeline.context import BuildContext
from pipeline.registry import register
from sinks.kafka.config import KafkaSinkConfig
from sinks.kafka.sink import KafkaSink

__all__ = ["KafkaSink", "KafkaSinkConfig"]


@register("sink", "kafka", KafkaSinkConfig)
def build(name: str, config: KafkaSinkConfig, ctx: BuildContext) -> KafkaSink:
    return KafkaSink(name, config, stats=ctx.metrics.component(name, "sink", config.type))
