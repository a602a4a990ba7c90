"""Per-component counters and the Prometheus registry that exposes them.

The hot path only bumps plain ints on a ComponentStats (one add per batch);
a custom collector turns them into Prometheus counters at scrape time, and the
`--once` summary reads the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline import __version__


class ComponentStats:
    """Counters of one component, bumped once per batch."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "dead_lettered",
        "events_dropped",
        "events_failed",
        "events_in",
        "events_out",
        "kind",
        "name",
        "retries",
        "tags",
        "type_name",
    )

    def __init__(self, name: str, kind: str, type_name: str) -> None:
        self.name = name
        self.kind = kind
        self.type_name = type_name
        self.events_in = 0
        self.events_out = 0
        self.events_failed = 0
        self.events_dropped = 0  # discarded on purpose by a transform (filter, sample, throttle, dedupe, route)
        self.dead_lettered = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.retries: dict[str, int] = {}
        self.tags: dict[str, int] = {}  # e.g. _grokparsefailure -> count

    def count_tags(self, events: list[dict[str, Any]], only: frozenset[str] | None = None) -> None:
        """Count the events' tags (only those in `only`, when given: the ones this component adds)."""
        tags = self.tags
        for event in events:
            for tag in event.get("tags") or ():
                if only is None or tag in only:
                    tags[tag] = tags.get(tag, 0) + 1

    def retry(self, outcome: str, n: int = 1) -> None:
        self.retries[outcome] = self.retries.get(outcome, 0) + n


GaugeFn = Callable[[], Iterator[tuple[dict[str, str], float]]]
# Metric families (prometheus_client.core *MetricFamily) built at scrape time.
CollectFn = Callable[[], Iterable[Metric]]


class Metrics:
    """The registry of one running daemon (tests build many, so no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stats: dict[str, ComponentStats] = {}
        self.started = time.time()
        # metric -> (help, labels, {owner id: sample function}): several components
        # (two file sources, say) feed one metric; each removes its own at close.
        self._gauges: dict[str, tuple[str, list[str], dict[int, GaugeFn]]] = {}
        self._counters: dict[str, tuple[str, list[str], dict[int, GaugeFn]]] = {}  # the same, for counters
        # Families a component defines itself (log_to_metric): owner id -> collect function,
        # and which owner claimed each metric name, so two components never expose one name twice.
        self._collectors: dict[int, CollectFn] = {}
        self._claims: dict[str, tuple[int, str]] = {}
        self.sink_latency = Histogram(
            "pipeline_sink_send_seconds",
            "Time for a sink to settle one send (including retries).",
            ["component"],
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.batch_events = Histogram(
            "pipeline_batch_events",
            "Events per batch handed to a component.",
            ["component"],
            registry=self.registry,
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
        )
        self.registry.register(_StatsCollector(self))
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
        # process_max_fds, process_start_time_seconds, process_virtual_memory_bytes (from /proc).
        ProcessCollector(registry=self.registry)

    def component(self, name: str, kind: str, type_name: str) -> ComponentStats:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = ComponentStats(name, kind, type_name)
        return stats

    def gauge(self, metric: str, help_text: str, labels: list[str], fn: GaugeFn, owner: object = None) -> None:
        """Register samples of a gauge, read from `fn` at scrape time, on behalf of `owner`."""
        entry = self._gauges.setdefault(metric, (help_text, labels, {}))
        entry[2][id(owner if owner is not None else fn)] = fn

    def counter(self, metric: str, help_text: str, labels: list[str], fn: GaugeFn, owner: object) -> None:
        """Register samples of a counter (`metric` without `_total`), read from `fn` at scrape time, for `owner`."""
        entry = self._counters.setdefault(metric, (help_text, labels, {}))
        entry[2][id(owner)] = fn

    def collector(self, names: Iterable[str], fn: CollectFn, owner: object, component: str) -> None:
        """Expose the families `fn` builds at scrape time, named `names`, on behalf of `owner`.

        Raises ValueError naming the component that already exposes one of the names.
        """
        names = list(names)
        for name in names:
            claim = self._claims.get(name)
            ours = name in self._gauges or name in self._counters or name.startswith("pipeline_")
            if ours or (claim and claim[0] != id(owner)):
                holder = f"component {claim[1]!r}" if claim else "the pipeline itself"
                raise ValueError(f"metric {name!r} is already exposed by {holder}")
        for name in names:
            self._claims[name] = (id(owner), component)
        self._collectors[id(owner)] = fn

    def drop_gauges(self, owner: object) -> None:
        """Forget every sample function and collector `owner` registered (a closed component, an old topology)."""
        for _, _, fns in [*self._gauges.values(), *self._counters.values()]:
            fns.pop(id(owner), None)
        if self._collectors.pop(id(owner), None) is not None:
            self._claims = {k: v for k, v in self._claims.items() if v[0] != id(owner)}

    def totals(self) -> dict[str, int]:
        return {
            "dead_lettered": sum(s.dead_lettered for s in self.stats.values()),
            "failed": sum(s.events_failed for s in self.stats.values()),
        }


class _StatsCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        m = self.metrics
        labels = ["component", "kind", "type"]
        families = {
            "events_in": CounterMetricFamily("pipeline_events_in", "Events received by a component.", labels=labels),
            "events_out": CounterMetricFamily(
                "pipeline_events_out", "Events emitted or delivered by a component.", labels=labels
            ),
            "events_failed": CounterMetricFamily(
                "pipeline_events_failed", "Events a component failed on.", labels=labels
            ),
            "events_dropped": CounterMetricFamily(
                "pipeline_events_dropped",
                "Events a transform discarded on purpose (filter, sample, throttle, dedupe, an unread route).",
                labels=labels,
            ),
            "dead_lettered": CounterMetricFamily(
                "pipeline_events_dead_lettered", "Events written to the dead-letter queue.", labels=labels
            ),
            "bytes_in": CounterMetricFamily("pipeline_bytes_in", "Bytes read by a source.", labels=labels),
            "bytes_out": CounterMetricFamily("pipeline_bytes_out", "Bytes written by a sink.", labels=labels),
        }
        retries = CounterMetricFamily(
            "pipeline_sink_retries", "Retries by a sink, by outcome.", labels=["component", "outcome"]
        )
        tags = CounterMetricFamily(
            "pipeline_events_tagged", "Events tagged by a transform (parse failures).", labels=["component", "tag"]
        )
        for s in m.stats.values():
            values = [s.name, s.kind, s.type_name]
            for attr, fam in families.items():
                fam.add_metric(values, getattr(s, attr))
            for outcome, n in s.retries.items():
                retries.add_metric([s.name, outcome], n)
            for tag, n in s.tags.items():
                tags.add_metric([s.name, tag], n)
        yield from families.values()
        yield retries
        yield tags
        for family_type, registered in ((GaugeMetricFamily, m._gauges), (CounterMetricFamily, m._counters)):
            for metric, (help_text, glabels, fns) in registered.items():
                family = family_type(metric, help_text, labels=glabels)
                for fn in list(fns.values()):
                    for label_values, value in fn():
                        family.add_metric([label_values[k] for k in glabels], value)
                yield family
        for collect in list(m._collectors.values()):
            yield from collect()
        info = InfoMetricFamily("pipeline_build", "Build information.")
        info.add_metric([], {"version": __version__})
        yield info
        up = GaugeMetricFamily("pipeline_start_time_seconds", "Unix time the daemon started.")
        up.add_metric([], m.started)
        yield up
