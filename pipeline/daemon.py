"""Lifecycle: load, build, start, signals, reload, ordered shutdown.

- SIGTERM / SIGINT: sources stop reading; their end-of-stream flows through
  the graph; sinks finish in-flight sends within `shutdown_timeout`; sources
  persist checkpoints of what was released. Anything unreleased is replayed
  after a restart (at-least-once).
- SIGHUP: the config file is read and validated first. Invalid: the errors are
  logged and the running topology carries on untouched. Valid: the running
  topology drains exactly as for SIGTERM (checkpoints written), then the new
  one is built and resumes from those checkpoints, so nothing is lost or read
  twice. Draining first is what makes the swap safe: the new file sources load
  checkpoints only after the old ones wrote their last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from pipeline import __version__
from pipeline.config import PipelineConfig, load_config
from pipeline.errors import ConfigError
from pipeline.metrics import Metrics
from pipeline.sdnotify import Notifier
from pipeline.status import DaemonStatus
from pipeline.topology import Topology

log = logging.getLogger(__name__)


class Daemon:
    def __init__(self, config: PipelineConfig, *, once: bool = False, show_progress: bool = True) -> None:
        self.config = config
        self.once = once
        self.show_progress = show_progress
        self.metrics = Metrics()
        self.topology = Topology(config, once=once, metrics=self.metrics)
        self.started = time.monotonic()
        self.reloads = 0
        self._stop = asyncio.Event()
        self._next_config: PipelineConfig | None = None
        self.on_ready: list[Callable[[], None]] = []
        self.on_stopping: list[Callable[[], None]] = []
        self.on_reloading: list[Callable[[], None]] = []

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info(
                "stopping: draining in-flight batches", extra={"shutdown_timeout_s": self.config.root.shutdown_timeout}
            )
            for cb in self.on_stopping:
                cb()
        self._stop.set()
        self.topology.stop()

    def request_reload(self) -> bool:
        """Validate the config file again; swap topologies only if it is valid."""
        if self.once or self._stop.is_set():
            return False
        try:
            config = load_config(self.config.path)
        except ConfigError as exc:
            log.error(
                "reload rejected: the new config is invalid; the running topology is kept",
                extra={"config": self.config.path, "problems": exc.problems},
            )
            return False
        log.info("reloading: draining the running topology", extra={"config": self.config.path})
        for cb in self.on_reloading:
            cb()
        self._next_config = config
        self.topology.stop()
        return True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        handled: list[tuple[signal.Signals, Callable[[], object]]] = [
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
        ]
        if not self.once:
            handled.append((signal.SIGHUP, self.request_reload))
        for sig, handler in handled:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, handler)
        # sd_notify (systemd Type=notify; a no-op without NOTIFY_SOCKET): READY=1 with the
        # on_ready callbacks, STOPPING=1 with on_stopping, WATCHDOG=1 from a task on this loop.
        notifier = Notifier()
        self.on_ready.append(
            lambda: notifier.ready(f"running: {len(self.config.sources)} sources, {len(self.config.sinks)} sinks")
        )
        self.on_stopping.append(notifier.stopping)
        self.on_reloading.append(notifier.reloading)
        watchdog = notifier.start_watchdog()
        api = None
        progress: asyncio.Task[None] | None = None
        if self.once and self.show_progress:
            from pipeline.progress import ProgressReporter

            progress = asyncio.create_task(ProgressReporter(lambda: self.topology.status()).run())
        try:
            if self.config.root.api.enabled and not self.once:
                from pipeline.api import start_api

                api = await start_api(self, self.config.root.api)
            while True:
                await self._run_topology()
                if self._next_config is None or self._stop.is_set():
                    break
                self._swap()
        finally:
            if progress is not None:
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
            if api is not None:
                await api.stop()
            if watchdog is not None:
                watchdog.cancel()
            notifier.close()
            for sig, _ in handled:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
            log.info("stopped", extra=self.summary())
        return 0

    def summary(self) -> dict[str, object]:
        """What the run did, for the final log line (the --once table prints the same numbers)."""
        stats = self.metrics.stats.values()
        return {
            "uptime_s": round(self.elapsed, 3),
            "reloads": self.reloads,
            "events_read": sum(s.events_out for s in stats if s.kind == "source"),
            "events_delivered": sum(s.events_out for s in stats if s.kind == "sink"),
            **self.metrics.totals(),
        }

    def _swap(self) -> None:
        assert self._next_config is not None
        config, self._next_config = self._next_config, None
        try:
            topology = Topology(config, once=False, metrics=self.metrics)
        except ConfigError as exc:
            # Valid on paper but not buildable (e.g. an unreadable GeoIP database): go back to the old one.
            log.error(
                "reload failed while building; restarting the previous topology", extra={"problems": exc.problems}
            )
            topology = Topology(self.config, once=False, metrics=self.metrics)
            config = self.config
        self.config = config
        self.topology = topology
        self.reloads += 1
        log.info(
            "reloaded", extra={"config": config.path, "sources": list(config.sources), "sinks": list(config.sinks)}
        )

    async def _run_topology(self) -> None:
        topology = self.topology
        run_task = asyncio.create_task(topology.run(), name="topology")
        log.info(
            "pipeline running",
            extra={
                "config": self.config.path,
                "once": self.once,
                "sources": list(self.config.sources),
                "sinks": list(self.config.sinks),
            },
        )
        for cb in self.on_ready:
            cb()
        # Wait for the run to end by itself (--once) or for a stop/reload request.
        stop_task = asyncio.create_task(topology.shutdown.wait())
        await asyncio.wait({run_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        if not run_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(run_task), self.config.root.shutdown_timeout)
            except TimeoutError:
                log.warning("shutdown timeout: abandoning unsettled batches (they will be replayed)")
                run_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run_task
        if not run_task.cancelled():
            run_task.result()  # re-raise a crash of the topology

    def status(self) -> DaemonStatus:
        """A read-only snapshot for the API."""
        return DaemonStatus(
            version=__version__,
            config=self.config.path,
            uptime_s=self.elapsed,
            reloads=self.reloads,
            stopping=self.stopping,
            topology=self.topology.status(),
        )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
