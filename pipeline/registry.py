"""Component registry: `type` name -> (config model, factory).

Each source, transform and sink module registers itself at import; the config
loader validates a component's mapping against the model registered for its
`type`, and the topology builder calls the factory with the validated model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

Kind = Literal["source", "transform", "sink"]
KINDS: tuple[Kind, ...] = ("source", "transform", "sink")
SECTION: dict[Kind, str] = {"source": "sources", "transform": "transforms", "sink": "sinks"}

# The module of each built-in component; importing it registers the component.
# Imported on first use, so a file-only config does not pay for the Kafka and
# Elasticsearch clients at start-up.
BUILTIN: dict[tuple[Kind, str], str] = {
    ("source", "stdin"): "pipeline.sources.stdin",
    ("source", "file"): "pipeline.sources.file",
    ("source", "container"): "pipeline.sources.container",
    ("source", "kafka"): "pipeline.sources.kafka",
    ("transform", "parse"): "pipeline.transforms.parse",
    ("transform", "geoip"): "pipeline.transforms.geoip",
    ("transform", "mutate"): "pipeline.transforms.mutate",
    ("transform", "filter"): "pipeline.transforms.filter",
    ("transform", "route"): "pipeline.transforms.route",
    ("transform", "sample"): "pipeline.transforms.sample",
    ("transform", "throttle"): "pipeline.transforms.throttle",
    ("transform", "dedupe"): "pipeline.transforms.dedupe",
    ("transform", "log_to_metric"): "pipeline.transforms.log_to_metric",
    ("sink", "file"): "sinks.file",
    ("sink", "console"): "sinks.console",
    ("sink", "blackhole"): "sinks.blackhole",
    ("sink", "kafka"): "sinks.kafka",
    ("sink", "elasticsearch"): "sinks.elasticsearch",
    ("sink", "clickhouse"): "sinks.clickhouse",
    ("sink", "webhook"): "sinks.webhook",
    ("sink", "loki"): "sinks.loki",
}


# Operator commands that live beside the component they serve (`pipeline query` runs SQL through
# a clickhouse sink's own client): command name -> module with a `main(args) -> int`.
BUILTIN_COMMANDS: dict[str, str] = {
    "query": "sinks.clickhouse.query",
}


@dataclass(frozen=True)
class ComponentSpec:
    kind: Kind
    type_name: str
    model: type[BaseModel]
    factory: Callable[..., Any]


_SPECS: dict[tuple[Kind, str], ComponentSpec] = {}


def register(kind: Kind, type_name: str, model: type[BaseModel]) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: register `factory(name, config, ctx)` for `kind`/`type_name`."""

    def wrap(factory: Callable[..., Any]) -> Any:
        _SPECS[(kind, type_name)] = ComponentSpec(kind, type_name, model, factory)
        return factory

    return wrap


def load_builtins() -> None:
    """Import every built-in component module (for the schema and the reference doc)."""
    for module in sorted(set(BUILTIN.values())):
        importlib.import_module(module)


def command(name: str) -> Callable[..., int]:
    """The entry point of a built-in operator command (imported on first use)."""
    module = importlib.import_module(BUILTIN_COMMANDS[name])
    entry: Callable[..., int] = module.main
    return entry


def lookup(kind: Kind, type_name: str) -> ComponentSpec | None:
    spec = _SPECS.get((kind, type_name))
    if spec is None and (kind, type_name) in BUILTIN:
        importlib.import_module(BUILTIN[(kind, type_name)])
        spec = _SPECS.get((kind, type_name))
    return spec


def known_types(kind: Kind) -> list[str]:
    return sorted({t for k, t in BUILTIN if k == kind} | {t for k, t in _SPECS if k == kind})


def all_specs() -> list[ComponentSpec]:
    """The built-in components (not ones a test or plugin registered on the side)."""
    load_builtins()
    return [spec for key, spec in sorted(_SPECS.items()) if key in BUILTIN]
