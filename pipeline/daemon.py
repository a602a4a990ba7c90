"""Lifecycle: load, build, start, signals (TERM/INT drain), ordered shutdown.

Shutdown order: sources stop reading; their end-of-stream flows through the
graph; sinks finish in-flight sends within `shutdown_timeout`; then sources
persist checkpoints of what was released. Anything unreleased is replayed
after a restart (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from pipeline.config import PipelineConfig
from pipeline.metrics import Metrics
from pipeline.topology import Topology

log = logging.getLogger("pipeline.daemon")


class Daemon:
    def __init__(self, config: PipelineConfig, *, once: bool = False) -> None:
        self.config = config
        self.once = once
        self.metrics = Metrics()
        self.topology = Topology(config, once=once, metrics=self.metrics)
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self.on_ready: list[Callable[[], None]] = []
        self.on_stopping: list[Callable[[], None]] = []

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping: draining in-flight batches",
                     extra={"shutdown_timeout_s": self.config.root.shutdown_timeout})
            for cb in self.on_stopping:
                cb()
        self._stop.set()
        self.topology.stop()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        run_task = asyncio.create_task(self.topology.run(), name="topology")
        log.info("pipeline running", extra={
            "config": self.config.path, "once": self.once,
            "sources": list(self.config.sources), "sinks": list(self.config.sinks)})
        for cb in self.on_ready:
            cb()
        stop_task = asyncio.create_task(self._stop.wait())
        await asyncio.wait({run_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if not run_task.done():
            try:
                await asyncio.wait_for(asyncio.shield(run_task), self.config.root.shutdown_timeout)
            except TimeoutError:
                log.warning("shutdown timeout: abandoning unsettled batches (they will be replayed)")
                run_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run_task
        stop_task.cancel()
        if not run_task.cancelled():
            run_task.result()  # re-raise a crash of the topology
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        return 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
