"""Prometheus metrics of webhook sinks, read from plain counters at scrape time.

One collector per registry serves every webhook sink of a daemon (a second
collector with the same metric names would be rejected by the registry):

- pipeline_webhook_alerts_suppressed_total{component}: matching events whose own
  alert was not opened because max_alerts_per_minute was reached.
- pipeline_webhook_matches_total{component,rule}: events that matched a rule.
- pipeline_webhook_notifications_total{component,target,outcome}: delivered,
  failed (permanent error, dead-lettered), overflowed (outbox full, oldest dropped).
- pipeline_webhook_delivery_retries_total{component,target}: failed attempts retried.
- pipeline_webhook_late_events_total{component,rule}: windowed-rule events beyond allowed_lateness.
- pipeline_webhook_keys_overflow_total{component,rule}: windowed-rule events beyond max_keys label sets.
- pipeline_webhook_active_alerts{component}: alerts (groups) held in memory.
- pipeline_webhook_pending_notifications{component,target}: not delivered yet.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class WebhookStats:
    """Counters of one webhook sink (plain ints, bumped per batch or per delivery)."""

    def __init__(self, component: str) -> None:
        self.component = component
        self.suppressed: Callable[[], int] = lambda: 0
        self.matches: Callable[[], dict[str, int]] = dict
        self.active: Callable[[], int] = lambda: 0
        self.pending: Callable[[], dict[str, int]] = dict
        self.overflowed: Callable[[], dict[str, int]] = dict
        self.late: Callable[[], dict[str, int]] = dict
        self.keys_overflow: Callable[[], dict[str, int]] = dict
        self.notifications: dict[tuple[str, str], int] = {}  # (target, outcome) -> n
        self.retries: dict[str, int] = {}

    def count(self, target: str, outcome: str, n: int = 1) -> None:
        key = (target, outcome)
        self.notifications[key] = self.notifications.get(key, 0) + n

    def retry(self, target: str) -> None:
        self.retries[target] = self.retries.get(target, 0) + 1


class _Collector(Collector):
    def __init__(self) -> None:
        self.sinks: dict[str, WebhookStats] = {}

    def collect(self) -> Iterator[Any]:
        suppressed = CounterMetricFamily(
            "pipeline_webhook_alerts_suppressed",
            "Matching events whose own alert was not opened because max_alerts_per_minute was reached.",
            labels=["component"],
        )
        matches = CounterMetricFamily(
            "pipeline_webhook_matches", "Events that matched an alert rule.", labels=["component", "rule"]
        )
        notes = CounterMetricFamily(
            "pipeline_webhook_notifications",
            "Alert notifications by target and outcome (delivered, failed, overflowed).",
            labels=["component", "target", "outcome"],
        )
        retries = CounterMetricFamily(
            "pipeline_webhook_delivery_retries",
            "Failed delivery attempts that are retried.",
            labels=["component", "target"],
        )
        late = CounterMetricFamily(
            "pipeline_webhook_late_events",
            "Events of windowed rules older than allowed_lateness behind their label set (ignored).",
            labels=["component", "rule"],
        )
        keys_overflow = CounterMetricFamily(
            "pipeline_webhook_keys_overflow",
            "Events of windowed rules whose label set was not held because max_keys was reached (ignored).",
            labels=["component", "rule"],
        )
        active = GaugeMetricFamily(
            "pipeline_webhook_active_alerts", "Alerts currently firing (held in state).", labels=["component"]
        )
        pending = GaugeMetricFamily(
            "pipeline_webhook_pending_notifications", "Notifications not delivered yet.", labels=["component", "target"]
        )
        for stats in self.sinks.values():
            c = stats.component
            suppressed.add_metric([c], stats.suppressed())
            for rule, n in stats.matches().items():
                matches.add_metric([c, rule], n)
            counts = dict(stats.notifications)
            for target, n in stats.overflowed().items():
                counts[(target, "overflowed")] = n
            for (target, outcome), n in sorted(counts.items()):
                notes.add_metric([c, target, outcome], n)
            for target, n in stats.retries.items():
                retries.add_metric([c, target], n)
            for rule, n in stats.late().items():
                late.add_metric([c, rule], n)
            for rule, n in stats.keys_overflow().items():
                keys_overflow.add_metric([c, rule], n)
            active.add_metric([c], stats.active())
            for target, n in stats.pending().items():
                pending.add_metric([c, target], n)
        yield from (suppressed, matches, notes, retries, late, keys_overflow, active, pending)


_COLLECTORS: weakref.WeakKeyDictionary[CollectorRegistry, _Collector] = weakref.WeakKeyDictionary()


def register_stats(registry: CollectorRegistry, stats: WebhookStats) -> None:
    """Expose `stats` through the registry's shared webhook collector."""
    collector = _COLLECTORS.get(registry)
    if collector is None:
        collector = _COLLECTORS[registry] = _Collector()
        registry.register(collector)
    collector.sinks[stats.component] = stats
