"""Build the running topology from a validated config and run it.

One task per source, transform and sink, all owned by one TaskGroup, joined by
bounded queues. Sources end (input exhausted with --once, or shutdown), their
end-of-stream flows down the graph, and sinks finish their in-flight sends;
the run returns when every batch has been settled.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline import registry
from pipeline.config import PipelineConfig
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.driver import SinkDriver
from pipeline.errors import ConfigError
from pipeline.event import Batch, Event
from pipeline.graph import topological_transforms
from pipeline.logs import component_log
from pipeline.metrics import ComponentStats, Metrics
from pipeline.queues import BatchQueue
from pipeline.routing import Router
from pipeline.sources.base import Source, SourceContext
from pipeline.status import ComponentStatus, TopologyStatus

log = logging.getLogger(__name__)


class Transform(Protocol):
    name: str

    def process(self, events: list[Event]) -> list[Event]:
        """Transform a batch in one loop; never raise on bad input (tag instead)."""
        ...


@dataclass
class Node:
    name: str
    kind: registry.Kind
    config: Any
    component: Any
    stats: ComponentStats
    queue: BatchQueue | None = None  # input queue (transforms and sinks)
    consumers: list[str] = field(default_factory=list)


class Topology:
    def __init__(self, config: PipelineConfig, *, once: bool = False, metrics: Metrics | None = None) -> None:
        self.config = config
        self.once = once
        self.metrics = metrics or Metrics()
        self.dlq = DeadLetterQueue(config.data_dir / "dead_letter")
        self.shutdown = asyncio.Event()
        self.nodes: dict[str, Node] = {}
        self.drivers: dict[str, SinkDriver] = {}
        self.sources_started = False
        self.ctx = BuildContext(
            config=config, data_dir=config.data_dir, host=config.host, dlq=self.dlq, metrics=self.metrics, once=once
        )
        self._build()

    # -- build -------------------------------------------------------------
    def _build(self) -> None:
        problems: list[str] = []
        cfg = self.config
        order: list[tuple[registry.Kind, str]] = [("source", n) for n in cfg.sources]
        order += [("transform", n) for n in topological_transforms(cfg.transforms)]
        order += [("sink", n) for n in cfg.sinks]
        for kind, name in order:
            model = cfg.components(kind)[name]
            spec = registry.lookup(kind, model.type)
            assert spec is not None  # validated by load_config
            try:
                component = spec.factory(name, model, self.ctx)
            except ConfigError as exc:
                # Problems are "key: message", relative to the component: one path, dotted.
                problems.extend(f"{cfg.path}: {registry.SECTION[kind]}.{name}.{p}" for p in exc.problems)
                continue
            stats = self.metrics.component(name, kind, model.type)
            self.nodes[name] = Node(name, kind, model, component, stats)
        if problems:
            raise ConfigError(problems)
        capacity = cfg.root.queue_capacity
        for node in self.nodes.values():
            inputs = getattr(node.config, "inputs", [])
            if node.kind != "source":
                node.queue = BatchQueue(node.name, capacity, producers=len(inputs))
            for inp in inputs:
                self.nodes[inp].consumers.append(node.name)
            if node.kind == "sink":
                assert node.queue is not None
                self.drivers[node.name] = SinkDriver(
                    node.component, node.config, node.queue, node.stats, self.metrics, self.dlq, once=self.once
                )
        self.metrics.gauge(
            "pipeline_queue_depth",
            "Batches waiting in a component's input queue.",
            ["component"],
            self._queue_depths,
            owner=self,
        )

    def _queue_depths(self) -> Any:
        for node in self.nodes.values():
            if node.queue is not None:
                yield {"component": node.name}, float(node.queue.qsize())

    def _router(self, node: Node) -> Router:
        targets = [self.nodes[c] for c in node.consumers]
        return Router([t.queue for t in targets if t.queue is not None], [t.kind == "transform" for t in targets])

    # -- run ---------------------------------------------------------------
    async def run(self) -> None:
        """Run until every source ended and every batch was settled."""
        try:
            async with asyncio.TaskGroup() as tasks:
                for node in self.nodes.values():
                    if node.kind == "sink":
                        tasks.create_task(self._run_sink(node), name=f"sink:{node.name}")
                    elif node.kind == "transform":
                        tasks.create_task(self._run_transform(node), name=f"transform:{node.name}")
                for node in self.nodes.values():
                    if node.kind == "source":
                        tasks.create_task(self._run_source(node), name=f"source:{node.name}")
                self.sources_started = True
        finally:
            await self.close_sources()

    def stop(self) -> None:
        """Ask sources to stop reading; what is in flight drains."""
        self.shutdown.set()
        for driver in self.drivers.values():
            driver.stopping.set()

    async def close_sources(self) -> None:
        """Persist checkpoints / commit offsets of what was released."""
        self.metrics.drop_gauges(self)
        self.dlq.log_pending()
        for node in self.nodes.values():
            if node.kind == "source":
                try:
                    await node.component.aclose()
                except Exception:
                    component_log(log, node.name).exception("closing source failed")
                self.metrics.drop_gauges(node.component)

    async def _run_source(self, node: Node) -> None:
        source: Source = node.component
        router = self._router(node)
        ctx = SourceContext(
            name=node.name,
            host=self.ctx.host,
            data_dir=self.ctx.data_dir,
            once=self.once,
            shutdown=self.shutdown,
            stats=node.stats,
            metrics=self.metrics,
            _emit=router.emit,
        )
        await source.run(ctx)
        # Not in a `finally`: on cancellation the downstream queue may be full,
        # and the whole graph is being torn down anyway.
        await router.close()

    async def _run_transform(self, node: Node) -> None:
        transform: Transform = node.component
        assert node.queue is not None
        router = self._router(node)
        stats = node.stats
        while (batch := await node.queue.get()) is not None:
            stats.events_in += len(batch.events)
            try:
                out = transform.process(batch.events)
            except Exception:
                # A bug, not bad input (parsers tag bad input). Pass the batch on untouched
                # and count it, rather than stopping the pipeline or losing the batch.
                component_log(log, node.name).exception("transform failed; passing the batch on unchanged")
                stats.events_failed += len(batch.events)
                out = batch.events
            stats.events_out += len(out)
            if not out:
                batch.receipt.settle()
                continue
            await router.emit(Batch(out, batch.receipt))
        await router.close()

    async def _run_sink(self, node: Node) -> None:
        await self.drivers[node.name].start_and_run()

    # -- observation -------------------------------------------------------
    def status(self) -> TopologyStatus:
        """A read-only snapshot for the API (names and numbers, never config values)."""
        components = []
        for node in self.nodes.values():
            s = node.stats
            driver = self.drivers.get(node.name)
            components.append(
                ComponentStatus(
                    name=node.name,
                    kind=node.kind,
                    type_name=s.type_name,
                    events_in=s.events_in,
                    events_out=s.events_out,
                    events_failed=s.events_failed,
                    dead_lettered=s.dead_lettered,
                    bytes_in=s.bytes_in,
                    retries=dict(s.retries),
                    tags=dict(s.tags),
                    queue_depth=node.queue.qsize() if node.queue is not None else None,
                    queue_capacity=node.queue.capacity if node.queue is not None else None,
                    in_flight=driver.in_flight if driver is not None else None,
                    last_error=driver.last_error if driver is not None else None,
                    started=driver.started if driver is not None else None,
                    oldest_unsettled_s=driver.oldest_unsettled_age() if driver is not None else None,
                    **_source_lag(node),
                )
            )
        probes = {name: driver.sink.healthcheck for name, driver in self.drivers.items()}
        noncritical = frozenset(name for name, driver in self.drivers.items() if not driver.config.critical)
        queries = {
            name: driver.sink.run_sql  # type: ignore[attr-defined]
            for name, driver in self.drivers.items()
            if callable(getattr(driver.sink, "run_sql", None))
        }
        return TopologyStatus(self.sources_started, tuple(components), probes, noncritical, queries)


def _source_lag(node: Node) -> dict[str, Any]:
    """What a source can tell of how far behind it is: `backlog_bytes() -> int | None` (bytes not
    read yet) and `lag() -> (unit, {stream: amount})` (not yet released, per file or partition)."""
    if node.kind != "source":
        return {}
    out: dict[str, Any] = {}
    backlog = getattr(node.component, "backlog_bytes", None)
    if callable(backlog):
        out["backlog_bytes"] = backlog()
    lag = getattr(node.component, "lag", None)
    if callable(lag):
        out["lag_unit"], out["lag"] = lag()
    return out
