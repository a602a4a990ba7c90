"""Read-only snapshots of a running daemon, for the HTTP API and other observers.

The topology publishes what an observer may see (names, kinds, counters, queue
depths, last errors, how to probe each sink) as plain frozen values; the API
reads those and never reaches into components, queues or drivers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.metrics import Metrics

Probe = Callable[[], Awaitable[None]]
QueryFn = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    kind: str
    type_name: str
    events_in: int
    events_out: int
    events_failed: int
    events_dropped: int
    dead_lettered: int
    retries: Mapping[str, int]
    tags: Mapping[str, int]
    queue_depth: int | None = None
    queue_capacity: int | None = None
    in_flight: int | None = None  # sinks only
    last_error: str | None = None  # sinks only
    started: bool | None = None  # sinks only: start() succeeded
    oldest_unsettled_s: float | None = None  # sinks only: age of the oldest batch it holds
    # Sources: how far behind they are, per stream (bytes per file, records per Kafka partition).
    lag: Mapping[str, int] | None = None
    lag_unit: str | None = None  # "bytes" | "records"
    bytes_in: int = 0  # sources: bytes read so far
    backlog_bytes: int | None = None  # sources: bytes not read yet (None: cannot tell)

    def to_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "type": self.type_name,
            "events_in": self.events_in,
            "events_out": self.events_out,
            "events_failed": self.events_failed,
            "events_dropped": self.events_dropped,
            "dead_lettered": self.dead_lettered,
            "retries": dict(self.retries),
            "tags": dict(self.tags),
        }
        if self.queue_capacity is not None:
            item["queue"] = {"depth": self.queue_depth, "capacity": self.queue_capacity}
        if self.kind == "sink":
            item["started"] = bool(self.started)
            item["in_flight"] = self.in_flight or 0
            item["last_error"] = self.last_error
            age = self.oldest_unsettled_s
            item["oldest_unsettled_s"] = None if age is None else round(age, 3)
        if self.lag is not None:
            item["lag"] = {"unit": self.lag_unit, "total": sum(self.lag.values()), "streams": dict(self.lag)}
        return item


@dataclass(frozen=True, slots=True)
class TopologyStatus:
    sources_started: bool
    components: tuple[ComponentStatus, ...]
    # Sink name -> a coroutine function that raises when the destination is unreachable.
    probes: Mapping[str, Probe] = field(default_factory=dict)
    # Sinks whose failure only degrades readiness (`critical: false`).
    noncritical: frozenset[str] = frozenset()
    # Sink name -> runs an operator's statement on the sink's own connection (`POST /query`).
    queries: Mapping[str, QueryFn] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    version: str
    config: str
    uptime_s: float
    reloads: int
    stopping: bool
    topology: TopologyStatus

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "config": self.config,
            "uptime_s": round(self.uptime_s, 3),
            "reloads": self.reloads,
            "stopping": self.stopping,
            "components": [c.to_json() for c in self.topology.components],
        }


class StatusProvider(Protocol):
    """What the API needs from the daemon."""

    @property
    def metrics(self) -> Metrics: ...

    def status(self) -> DaemonStatus: ...
