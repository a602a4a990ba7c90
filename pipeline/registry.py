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

# Modules holding the built-in components; importing one registers it.
BUILTIN_MODULES = (
    "pipeline.sources.stdin",
    "pipeline.sources.file",
    "pipeline.sources.container",
    "pipeline.sources.kafka",
    "pipeline.transforms",
    "sinks.file",
    "sinks.console",
    "sinks.blackhole",
    "sinks.kafka",
    "sinks.elasticsearch",
    "sinks.clickhouse",
    "sinks.webhook",
)


@dataclass(frozen=True)
class ComponentSpec:
    kind: Kind
    type_name: str
    model: type[BaseModel]
    factory: Callable[..., Any]


_SPECS: dict[tuple[Kind, str], ComponentSpec] = {}
_loaded = False


def register(kind: Kind, type_name: str, model: type[BaseModel]) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: register `factory(name, config, ctx)` for `kind`/`type_name`."""

    def wrap(factory: Callable[..., Any]) -> Any:
        _SPECS[(kind, type_name)] = ComponentSpec(kind, type_name, model, factory)
        return factory

    return wrap


def load_builtins() -> None:
    """Import every built-in component module once (modules not written yet are skipped)."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # Only tolerate the module itself being absent, never a broken import inside it.
            if exc.name != module:
                raise
    _loaded = True


def lookup(kind: Kind, type_name: str) -> ComponentSpec | None:
    load_builtins()
    return _SPECS.get((kind, type_name))


def known_types(kind: Kind) -> list[str]:
    load_builtins()
    return sorted(t for k, t in _SPECS if k == kind)


def all_specs() -> list[ComponentSpec]:
    load_builtins()
    return [spec for _, spec in sorted(_SPECS.items())]
