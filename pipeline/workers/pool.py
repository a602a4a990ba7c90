"""The worker processes, seen from the main process: submit a task, await its result.

A `concurrent.futures.ProcessPoolExecutor` of `spawn`ed processes (never
forked: the main process runs an event loop and client-library threads), each
initialised once with the offloaded chains (`worker.init`). Tasks carry a block
of raw lines (bytes) and come back as JSON lines (bytes): cheap to move between
processes, unlike pickled dicts.

A worker that dies (killed, out of memory) breaks the executor: every task in
flight fails with BrokenProcessPool. The readers that submitted them call
`restart(generation)` and submit them again, in order, to a fresh set of
processes: their lines are still in the main process, and nothing was
settled for them, so nothing is lost and nothing is written twice. A pool that
keeps dying (more than `MAX_RESTARTS` in `RESTART_WINDOW_S`) gives up with an
error instead of spinning.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pipeline.config import PipelineConfig
from pipeline.workers import worker
from pipeline.workers.worker import ChainSpec, Result, Task

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0

__all__ = ["BrokenProcessPool", "ChunkPool", "PoolFailed"]


class PoolFailed(RuntimeError):
    """The worker processes kept dying: the run stops rather than retry forever."""


class ChunkPool:
    def __init__(self, config: PipelineConfig, chains: list[ChainSpec], workers: int) -> None:
        self.config = config
        self.chains = chains
        self.workers = workers
        self.generation = 0
        self.inflight = 0  # tasks submitted and not yet taken back, over every reader
        self._executor: ProcessPoolExecutor | None = None
        self._restarts: list[float] = []

    def _start(self) -> None:
        self.generation += 1
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.init,
            initargs=(self.config, self.chains),
        )

    def submit(self, task: Task) -> tuple[int, asyncio.Future[Result]]:
        """Queue `task`; (the pool generation it went to, its future)."""
        if self._executor is None:
            self._start()
        assert self._executor is not None
        try:
            future = self._executor.submit(worker.run, task)
        except BrokenProcessPool:  # a worker died since the last submit: new processes, then this task
            self.restart(self.generation)
            assert self._executor is not None
            future = self._executor.submit(worker.run, task)
        return self.generation, asyncio.wrap_future(future)

    def restart(self, generation: int) -> None:
        """Replace a broken pool (once per generation, whoever notices first)."""
        if generation != self.generation:
            return
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
        if len(self._restarts) > MAX_RESTARTS:
            raise PoolFailed(f"worker processes died {len(self._restarts)} times in {RESTART_WINDOW_S:.0f} s")
        log.warning(
            "a worker process died; starting new ones and processing its chunks again",
            extra={"workers": self.workers, "restarts": len(self._restarts)},
        )
        old, self._executor = self._executor, None
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
        self._start()

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
