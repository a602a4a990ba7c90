"""Which sources worker processes take over, and where their events go then.

A source is offloaded when `workers` is above 1 and its work can move to a
worker process without changing what comes out:

- it is a `file` source without multiline joining (a chunk's lines are then
  independent of the chunks around them; container and multiline framing keep
  state across chunks and stay in the main process);
- from it, events flow through a chain of per-event transforms (`parse`,
  `geoip`, `mutate`, `filter`: no state across events), each feeding exactly
  one consumer, into sinks only (a branch that splits between a transform and
  a sink, a `route`, or a stateful transform such as `dedupe` or
  `log_to_metric` keeps the source in the main process).

The worker runs the source's static fields and the chain; the main process
sends the source's batches straight to the sinks at the chain's end. The
chain's transforms still run in the main process for any other input they
have, and still end the stream for their consumers.

With `workers: 1` the same sources take the same batch path in the main process
(workers/inline.py), when their chain has transforms and every sink at its end
takes encoded events (a `file` sink with one path, `kafka`): they write the JSON
lines as they are, so no event dict is built for them. A sink that wants dicts
would decode them again, and a source with no transform has nothing to gain:
those stay on the per-event path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.graph import split_input
from pipeline.workers.spawn import worker_count
from pipeline.workers.tasks import ChainSpec

# Transforms whose output for an event depends on that event alone.
OFFLOADABLE_TRANSFORMS = frozenset({"parse", "geoip", "mutate", "filter"})


@dataclass
class Offload:
    """One offloaded source: its chain, and the sinks its batches go to."""

    chain: ChainSpec
    sinks: list[str]
    first: str | None  # the chain's first transform: its queue still counts this source as a producer


@dataclass
class Plan:
    workers: int
    sources: dict[str, Offload] = field(default_factory=dict)

    def extra_producers(self, name: str) -> int:
        """How many offloaded sources feed `name` directly beyond its configured inputs (those whose
        chain is not empty: a source that feeds sinks itself is already counted as their input)."""
        return sum(1 for off in self.sources.values() if off.first is not None and name in off.sinks)


def plan(config: PipelineConfig, takes_encoded: Callable[[str], bool] = lambda sink: False) -> Plan:
    """The sources to offload; `takes_encoded(sink)` says whether a sink writes encoded events as they are."""
    result = Plan(worker_count(config.root.workers))
    consumers: dict[str, list[str]] = {}
    named_outputs = set()
    for kind in ("transform", "sink"):
        for name, model in config.components(kind).items():
            for inp in getattr(model, "inputs", []):
                producer, output = split_input(inp, config.transforms)
                if output is not None:
                    named_outputs.add(producer)
                consumers.setdefault(producer, []).append(name)
    for name, model in config.sources.items():
        off = _offload(name, model, config, consumers, named_outputs)
        if off is None:
            continue
        if result.workers == 1 and not (off.chain.transforms and all(takes_encoded(sink) for sink in off.sinks)):
            # In this process the batch path pays off for transforms (the parse written from its matches),
            # and only when no sink decodes its bytes again.
            continue
        result.sources[name] = off
    return result


def _offload(
    name: str, model: Any, config: PipelineConfig, consumers: dict[str, list[str]], named_outputs: set[str]
) -> Offload | None:
    if model.type != "file" or model.multiline is not None:
        return None
    chain: list[str] = []
    node = name
    while True:
        after = consumers.get(node, [])
        if not after:
            return None
        if all(c in config.sinks for c in after):
            return Offload(ChainSpec(name, tuple(chain)), list(after), chain[0] if chain else None)
        if len(after) != 1 or after[0] not in config.transforms:
            return None  # a branch between transforms and sinks
        nxt = after[0]
        if config.transforms[nxt].type not in OFFLOADABLE_TRANSFORMS or nxt in named_outputs or nxt in chain:
            return None
        chain.append(nxt)
        node = nxt
