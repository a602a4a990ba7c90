"""Build the running topology from a validated config and run it.

One task per source, transform and sink, all owned by one TaskGroup, joined by
bounded queues. Sources end (input exhausted with --once, or shutdown), their
end-of-stream flows down the graph, and sinks finish their in-flight sends;
the run returns when every batch has been settled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline import registry
from pipeline.config import PipelineConfig
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.driver import SinkDriver
from pipeline.errors import ConfigError
from pipeline.event import Batch, Event, as_list, deep_copy
from pipeline.graph import split_input, topological_transforms
from pipeline.logs import component_log
from pipeline.metrics import ComponentStats, Metrics
from pipeline.queues import BatchQueue
from pipeline.routing import Router
from pipeline.source_fields import compile_stamp
from pipeline.sources.base import Source, SourceContext
from pipeline.sources.offload import Remote
from pipeline.status import ComponentStatus, TopologyStatus
from pipeline.transforms.base import RoutingTransform, Transform
from pipeline.workers import spawn
from pipeline.workers.plan import plan as plan_workers
from pipeline.workers.tasks import Counts

if TYPE_CHECKING:
    from pipeline.workers.inline import InlinePool
    from pipeline.workers.pool import ChunkPool

log = logging.getLogger(__name__)


@dataclass
class Node:
    name: str
    kind: registry.Kind
    config: Any
    component: Any
    stats: ComponentStats
    queue: BatchQueue | None = None  # input queue (transforms and sinks)
    # Output name (None: the single output) -> the components reading it, in config order.
    consumers: dict[str | None, list[str]] = field(default_factory=dict)


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
            for node in self.nodes.values():  # built ones may have claimed metric names: release them
                self.metrics.drop_gauges(node.component)
            raise ConfigError(problems)
        capacity = cfg.root.queue_capacity
        self.plan = plan_workers(cfg, self._takes_encoded)
        for node in self.nodes.values():
            inputs = getattr(node.config, "inputs", [])
            if node.kind != "source":
                # An offloaded source sends straight to the sinks at its chain's end: one producer more.
                producers = len(inputs) + self.plan.extra_producers(node.name)
                node.queue = BatchQueue(node.name, capacity, producers=producers)
            for inp in inputs:
                producer, output = split_input(inp, self.nodes)
                self.nodes[producer].consumers.setdefault(output, []).append(node.name)
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

    def _router(self, node: Node, output: str | None = None) -> Router:
        targets = [self.nodes[c] for c in node.consumers.get(output, [])]
        return Router([t.queue for t in targets if t.queue is not None], [t.kind == "transform" for t in targets])

    # -- run ---------------------------------------------------------------
    async def run(self) -> None:
        """Run until every source ended and every batch was settled."""
        pool = self._start_workers()
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
            if pool is not None:
                await pool.aclose()
            await self.close_sources()

    def _takes_encoded(self, sink: str) -> bool:
        """Whether a sink writes encoded events (JSON lines) as they are, rather than decoding them."""
        return bool(getattr(self.nodes[sink].component, "accepts_encoded", False))

    def _start_workers(self) -> ChunkPool | InlinePool | None:
        """The pool of the offloaded sources: worker processes, or this process with `workers: 1`
        (none when nothing qualifies)."""
        if not self.plan.sources or self.plan.workers == 1:
            spawn.discard()  # `pipeline run` may have started some early, on a guess
        if not self.plan.sources:
            return None
        chains = [off.chain for off in self.plan.sources.values()]
        pool: ChunkPool | InlinePool
        if self.plan.workers == 1:
            from pipeline.workers.inline import InlinePool  # late: like the pool, only when used

            pool = InlinePool(self.config, chains)
            message = "these sources frame, transform and encode their lines in batches, in this process"
        else:
            from pipeline.workers.pool import ChunkPool  # late: only a daemon with workers needs it

            pool = ChunkPool(self.config, chains, self.plan.workers)
            message = "worker processes frame, transform and encode these sources"
        for name, off in self.plan.sources.items():
            self.nodes[name].component.offload(Remote(pool, name, self._counter(off.chain.transforms)))
        log.info(message, extra={"workers": self.plan.workers, "sources": sorted(self.plan.sources)})
        return pool

    def _counter(self, names: tuple[str, ...]) -> Callable[[dict[str, Counts]], None]:
        """Adds what a worker's transforms counted to the stats of the same transforms here."""
        stats = {name: self.nodes[name].stats for name in names}

        def add(counts: dict[str, Counts]) -> None:
            for name, c in counts.items():
                s = stats[name]
                s.events_in += c.events_in
                s.events_out += c.events_out
                s.events_failed += c.events_failed
                s.events_dropped += c.events_dropped
                for tag, n in c.tags.items():
                    s.tags[tag] = s.tags.get(tag, 0) + n

        return add

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
            elif node.kind == "transform":
                self.metrics.drop_gauges(node.component)  # metrics a transform derives (log_to_metric)

    async def _run_source(self, node: Node) -> None:
        source: Source = node.component
        router = self._router(node)
        offload = self.plan.sources.get(node.name)
        if offload is not None:
            # Its events arrive transformed (by the workers): straight to the sinks at the chain's end.
            sinks = [self.nodes[name] for name in offload.sinks]
            router = Router([s.queue for s in sinks if s.queue is not None], [False] * len(sinks))
        emit = router.emit
        stamp = compile_stamp(node.config) if offload is None else None  # the workers add the fields
        if stamp is not None:
            # Static `fields` are added here, where batches leave the source, so every source has them.
            async def emit_stamped(batch: Batch) -> None:
                stamp(as_list(batch.events))
                await router.emit(batch)

            emit = emit_stamped
        ctx = SourceContext(
            name=node.name,
            host=self.ctx.host,
            data_dir=self.ctx.data_dir,
            once=self.once,
            shutdown=self.shutdown,
            stats=node.stats,
            metrics=self.metrics,
            _emit=emit,
        )
        await source.run(ctx)
        # Not in a `finally`: on cancellation the downstream queue may be full,
        # and the whole graph is being torn down anyway.
        await router.close()
        if offload is not None and offload.first is not None:
            first = self.nodes[offload.first].queue
            assert first is not None
            await first.close()  # the chain's first transform still counts this source as an input

    async def _run_transform(self, node: Node) -> None:
        if isinstance(node.component, RoutingTransform):
            await self._run_routing_transform(node, node.component)
            return
        transform: Transform = node.component
        assert node.queue is not None
        router = self._router(node)
        stats = node.stats
        while (batch := await node.queue.get()) is not None:
            events = as_list(batch.events)
            n = len(events)
            stats.events_in += n
            try:
                out = transform.process(events)
            except Exception:
                # A bug, not bad input (parsers tag bad input). Pass the batch on untouched
                # and count it, rather than stopping the pipeline or losing the batch.
                component_log(log, node.name).exception("transform failed; passing the batch on unchanged")
                stats.events_failed += n
                out = events
            stats.events_out += len(out)
            if len(out) < n:
                stats.events_dropped += n - len(out)
            if not out:
                # Dropped events settle at once: their positions are covered, nothing waits for them.
                batch.receipt.settle()
                continue
            await router.emit(Batch(out, batch.receipt))
        await router.close()

    async def _run_routing_transform(self, node: Node, transform: RoutingTransform) -> None:
        """A transform with named outputs: one Router per output, one child receipt per output that gets events."""
        assert node.queue is not None
        names: tuple[str, ...] = node.config.output_names()
        routers = [self._router(node, name) for name in names]
        consumers = [[self.nodes[c] for c in node.consumers.get(name, [])] for name in names]
        read = [bool(c) for c in consumers]
        mutating = [any(c.kind == "transform" for c in cs) for cs in consumers]
        unmatched = len(names) - 1  # the catch-all comes last: where a batch goes when the transform fails
        stats = node.stats
        while (batch := await node.queue.get()) is not None:
            events = as_list(batch.events)
            stats.events_in += len(events)
            try:
                outs = transform.route(events)
            except Exception:
                component_log(log, node.name).exception("transform failed; passing the batch on unmatched")
                stats.events_failed += len(events)
                outs = [[] for _ in names]
                outs[unmatched] = events
            live: list[tuple[Router, list[Event]]] = []
            # id -> whether a mutating consumer holds it: an event in two outputs is copied when either mutates.
            placed: dict[int, bool] = {}
            for i, out in enumerate(outs):
                if not out or not read[i]:
                    continue
                mut = mutating[i]
                sent = []
                for event in out:
                    held = placed.get(id(event))
                    if held is None:
                        placed[id(event)] = mut
                    elif held or mut:
                        event = deep_copy(event)
                    sent.append(event)
                live.append((routers[i], sent))
            stats.events_out += sum(len(out) for _, out in live)
            stats.events_dropped += len(events) - len(placed)  # in no output that is read
            if not live:
                batch.receipt.settle()
            elif len(live) == 1:
                await live[0][0].emit(Batch(live[0][1], batch.receipt))
            else:
                for (router, out), child in zip(live, batch.receipt.derive(len(live)), strict=True):
                    await router.emit(Batch(out, child))
        for router in routers:
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
                    events_dropped=s.events_dropped,
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
