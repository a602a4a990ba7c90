"""`pipeline validate`: every problem of a config in one pass, plus warnings.

One pass means: unset environment variables, schema errors, addresses, graph
errors and what only building a component finds (time zones, regexes, GeoIP
databases, pattern folders) are all reported together, so an operator fixes
them in one round. A component whose own model did not validate is not built;
every other component is built (never started: nothing connects) and its
problems are added.

Warnings do not make a config invalid: they point at settings that work but
will surprise, e.g. a source that can emit events larger than a sink
downstream accepts (those events are cut to fit or dead-lettered).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline import registry
from pipeline.config import PipelineConfig, load_config_collecting
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.errors import ConfigError
from pipeline.metrics import Metrics
from pipeline.units import format_size


@dataclass
class Report:
    path: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: PipelineConfig | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Report:
    config, problems = load_config_collecting(path, env)
    report = Report(str(path), list(problems), config=config)
    if config is None:
        return report
    # Some components create asyncio primitives when built: build them inside a loop, as `run` does.
    report.problems.extend(asyncio.run(_build_in_loop(config)))
    report.warnings.extend(size_warnings(config))
    return report


async def _build_in_loop(config: PipelineConfig) -> list[str]:
    return build_problems(config)


def build_problems(config: PipelineConfig) -> list[str]:
    """Build each component that validated, without starting it; collect what the builds refuse."""
    problems: list[str] = []
    ctx = BuildContext(
        config=config,
        data_dir=config.data_dir,
        host=config.host,
        dlq=DeadLetterQueue(config.data_dir / "dead_letter"),
        metrics=Metrics(),
        once=True,
    )
    for kind in registry.KINDS:
        for name, model in config.components(kind).items():
            spec = registry.lookup(kind, model.type)
            if spec is None:
                continue
            try:
                spec.factory(name, model, ctx)
            except ConfigError as exc:
                problems.extend(f"{config.path}: {registry.SECTION[kind]}.{name}.{p}" for p in exc.problems)
    return problems


def _max_event_bytes(model: Any) -> int | None:
    method = getattr(model, "max_event_bytes", None)
    return method() if callable(method) else None


def _upstream_sources(config: PipelineConfig, name: str, seen: set[str] | None = None) -> set[str]:
    seen = set() if seen is None else seen
    found: set[str] = set()
    model = config.transforms.get(name) or config.sinks.get(name)
    for inp in getattr(model, "inputs", []):
        base = inp.split(".", 1)[0]  # a named output of a transform: `router.errors`
        if base in seen:
            continue
        seen.add(base)
        if base in config.sources:
            found.add(base)
        else:
            found |= _upstream_sources(config, base, seen)
    return found


def size_warnings(config: PipelineConfig) -> list[str]:
    """Sources that can emit events larger than a sink downstream accepts."""
    warnings = []
    for sink_name, sink in config.sinks.items():
        limit = _max_event_bytes(sink)
        if limit is None:
            continue
        for source_name in sorted(_upstream_sources(config, sink_name)):
            emits = _max_event_bytes(config.sources[source_name])
            if emits is not None and emits > limit:
                warnings.append(
                    f"{config.path}: sinks.{sink_name}: accepts events up to {format_size(limit)}, but "
                    f"sources.{source_name} can emit {format_size(emits)}; larger events are cut to fit and "
                    "tagged _truncated where the sink can, dead-lettered otherwise"
                )
    return warnings
