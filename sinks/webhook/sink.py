"""The `webhook` sink: fold matches into alerts, persist, and deliver notifications in the background.

`send(events)` never talks to a target. It folds the batch's matches into the
aggregation state and returns once that state is durable on disk (so the batch
settles, and the source may advance, only when the alert it feeds survives a
crash). A ticker task turns the state into notifications (`Aggregator.due`), one
delivery task per target drains that target's outbox with retries and backoff:
a target that is down never blocks folding new matches, and what it has not
received is in the state file, delivered after a restart (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from pipeline.dlq import DeadLetterQueue
from pipeline.errors import TransientError
from pipeline.event import Event
from pipeline.logs import component_log
from pipeline.sink import Outcome
from pipeline.tls import warn_if_unverified
from sinks.webhook.aggregate import STATE_VERSION, Aggregator, Notification, Timing
from sinks.webhook.config import WebhookSinkConfig, target_names
from sinks.webhook.counting import FrequencyRule, MetricRule, RatioRule, SpikeRule
from sinks.webhook.delivery import deliver_loop
from sinks.webhook.httpbase import DeliveryError, SessionFactory, Target
from sinks.webhook.metrics import WebhookStats, register_stats
from sinks.webhook.outbox import Outbox
from sinks.webhook.presence import AbsenceRule, NewValueRule
from sinks.webhook.rules import CompiledRule
from sinks.webhook.state import Persister, StateStore
from sinks.webhook.targets import build_target
from sinks.webhook.windowed import WindowedRule

log = logging.getLogger(__name__)
WINDOWED: dict[str, type[WindowedRule]] = {
    "frequency": FrequencyRule,
    "ratio": RatioRule,
    "metric": MetricRule,
    "spike": SpikeRule,
    "absence": AbsenceRule,
    "new_value": NewValueRule,
}


class WebhookSink:
    def __init__(
        self,
        name: str,
        config: WebhookSinkConfig,
        *,
        data_dir: Path,
        host: str = "",
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        session_factory: SessionFactory | None = None,
        targets: list[Target] | None = None,
        dlq: DeadLetterQueue | None = None,
    ) -> None:
        self.name = name
        self.log = component_log(log, name)
        self.config = config
        self.max_in_flight = config.max_in_flight
        self._clock = clock
        self.dlq = dlq
        self._warned_tls = False
        self._probed: set[str] = set()
        self.rules = [CompiledRule(r) for r in config.rules if not r.windowed]
        self.aggregator = Aggregator(
            self.rules,
            Timing(config.group_wait, config.update_interval, config.repeat_interval, config.resolve_after),
            max_alerts_per_minute=config.max_alerts_per_minute,
            overflow_alert=config.overflow_alert,
            generator_url=config.generator_url,
            component=name,
            host=host,
        )
        self.windowed = [
            WINDOWED[r.type](r, self.aggregator, config.allowed_lateness) for r in config.rules if r.windowed
        ]
        if targets is None:
            targets = [
                build_target(
                    tname, tconf, component=name, resolve_after=config.resolve_after, session_factory=session_factory
                )
                for tname, tconf in zip(target_names(config.targets), config.targets, strict=True)
                if tconf.is_enabled()
            ]
        self.targets = targets
        self.outboxes = {t.name: Outbox(config.max_pending_notifications) for t in targets}
        self.store = StateStore(Path(data_dir) / "webhook" / f"{name}.json")
        self.persister = Persister(self.store, self._snapshot, config.persist_interval)
        self.stats = WebhookStats(name)
        self.stats.suppressed = lambda: self.aggregator.suppressed
        self.stats.matches = lambda: {
            **{r.name: r.matches for r in self.rules},
            **{w.name: w.matches for w in self.windowed},
        }
        self.stats.late = lambda: {w.name: w.late for w in self.windowed}
        self.stats.keys_overflow = lambda: {w.name: w.overflow for w in self.windowed}
        self.stats.active = lambda: self.aggregator.active
        self.stats.pending = lambda: {n: len(o) for n, o in self.outboxes.items()}
        self.stats.overflowed = lambda: {n: o.dropped for n, o in self.outboxes.items() if o.dropped}
        if registry is not None:
            register_stats(registry, self.stats)
        self._loaded = False
        self._closed = False
        self._ticker: asyncio.Task[None] | None = None
        self._deliverers: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        # Sends whose fold is in memory but whose persist failed: the driver retries the very
        # same list, which must not be counted twice.
        self._unpersisted: dict[int, tuple[list[Event], int]] = {}
        active = [x for x in (config.group_wait, config.update_interval) if x > 0]
        self._tick_interval = min(1.0, max(0.02, min(active, default=1.0) / 4))

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if not self._loaded:
            data = await asyncio.to_thread(self.store.load, STATE_VERSION)
            if data is not None:
                self._restore(data)
            self._loaded = True
        if not self._warned_tls:
            self._warned_tls = True
            for tname, tconf in zip(target_names(self.config.targets), self.config.targets, strict=True):
                if tconf.is_enabled():
                    warn_if_unverified(self.log, getattr(tconf, "tls", None), f"target {tname}")
        for target in self.targets:
            await target.open()
            probe = getattr(target, "probe_access", None)
            if probe is not None and target.name not in self._probed:
                await probe()  # StartError when TLS or credentials are refused
                self._probed.add(target.name)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick_loop(), name=f"webhook:{self.name}:ticker")
            self._deliverers = [
                asyncio.create_task(
                    deliver_loop(
                        t, self.outboxes[t.name], self.config.retry, self.stats, self.persister, self.dlq, self.log
                    ),
                    name=f"webhook:{self.name}:{t.name}",
                )
                for t in self.targets
            ]

    def _restore(self, data: dict[str, Any]) -> None:
        self.aggregator.restore(data)
        saved = data.get("windowed") or {}
        for rule in self.windowed:
            if rule.name in saved:
                rule.restore(saved[rule.name], self._clock())
        for name, notes in (data.get("outboxes") or {}).items():
            outbox = self.outboxes.get(name)
            if outbox is None:
                self.log.warning(
                    "webhook state: notifications for a target no longer configured are dropped",
                    extra={"target": name, "notifications": len(notes)},
                )
                continue
            outbox.restore(notes)
        self.log.info(
            "webhook state restored",
            extra={
                "alerts": self.aggregator.active,
                "pending": {n: len(o) for n, o in self.outboxes.items()},
            },
        )

    def _snapshot(self) -> bytes:
        return orjson.dumps(
            {
                "version": STATE_VERSION,
                "component": self.name,
                "saved_at": self._clock(),
                **self.aggregator.snapshot(),
                "windowed": {rule.name: rule.snapshot() for rule in self.windowed},
                "outboxes": {name: outbox.snapshot() for name, outbox in self.outboxes.items()},
            }
        )

    async def healthcheck(self) -> None:
        problems = []
        for target in self.targets:
            try:
                await target.check()
            except DeliveryError as exc:
                problems.append(str(exc))
        if problems:
            raise TransientError("; ".join(problems))

    async def aclose(self) -> None:
        """Notify what is pending (new alerts, changed counts), deliver within flush_timeout, persist."""
        if self._closed:
            return
        self._closed = True
        if self._ticker is not None:
            self._wake.set()  # the ticker sees _closed and returns (after a write in progress)
            await asyncio.wait([self._ticker])  # (wait, not await: never re-raise from a ticker that died)
        if self._loaded:
            for rule in self.windowed:
                rule.flush()  # the partial step: what the data shows so far
            self._route(self.aggregator.due(self._clock(), flush=True))
            deadline = time.monotonic() + self.config.flush_timeout
            # Wait for targets that work; one that is failing keeps its notifications in the state file.
            # (Polling: the condition spans every outbox and target state; it runs once, at shutdown.)
            while time.monotonic() < deadline and any(  # noqa: ASYNC110
                len(self.outboxes[t.name]) and not t.last_error for t in self.targets
            ):
                await asyncio.sleep(0.02)
        for task in self._deliverers:
            task.cancel()  # a delivery cut short stays in its outbox (persisted below)
        if self._deliverers:
            await asyncio.wait(self._deliverers, timeout=5.0)
        for target in self.targets:
            try:
                await target.aclose()
            except Exception as exc:  # close the others all the same
                self.log.warning("webhook target close failed", extra={"target": target.name, "error": str(exc)})
        if self._loaded:  # never overwrite a state file that was not loaded
            try:
                await self.persister.flush()
            except OSError as exc:
                self.log.error("webhook state: final write failed", extra={"error": str(exc)})

    # -- the data path -------------------------------------------------------------------
    async def send(self, events: list[Event]) -> Outcome:
        retried = self._unpersisted.pop(id(events), None)
        if retried is not None and retried[0] is events:
            version = retried[1]  # already folded; only the write is missing
        else:
            opened = self.aggregator.active
            now = self._clock()
            counted = self.aggregator.fold(events, now)
            for rule in self.windowed:
                counted += rule.fold(events, now)
            if not counted:
                return Outcome.delivered()  # nothing matched: no state changed
            version = self.persister.changed()
            if self.aggregator.active != opened:
                self._wake.set()  # a new alert: let the ticker see it without waiting a full tick
        try:
            await self.persister.flush(version)
        except OSError as exc:
            self._unpersisted[id(events)] = (events, version)
            raise TransientError(f"cannot persist webhook state to {self.store.path}: {exc.strerror}") from None
        return Outcome.delivered()

    def _route(self, notes: list[Notification]) -> None:
        if not notes:
            return
        for note in notes:
            kind = note["kind"]
            for target in self.targets:
                if kind in target.notify_on:
                    self.outboxes[target.name].put(note)
        self.persister.changed()

    async def _tick_loop(self) -> None:
        while not self._closed:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that
            # arrives as the awaited event fires (send() sets it), and the loop would never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick_interval):
                    await self._wake.wait()
            if self._closed:
                return
            self._wake.clear()
            try:
                now = self._clock()
                revision = self.aggregator.revision
                for rule in self.windowed:
                    rule.tick(now)
                if self.aggregator.revision != revision:
                    self.persister.changed()  # an alert fired or resolved as the clock moved on
                self._route(self.aggregator.due(now))
                if self.persister.dirty:
                    await self.persister.flush()
            except OSError as exc:
                self.log.error("webhook state write failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(1.0)
            except Exception:  # a bug must not stop alerting: log it and keep ticking
                self.log.exception("webhook ticker failed")
                await asyncio.sleep(1.0)
