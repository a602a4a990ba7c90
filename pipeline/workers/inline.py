"""`workers: 1`: the worker processes' batch path, run in this process, without processes.

A worker process takes a block of raw lines and hands back JSON lines; for access
lines it writes them straight from the regex matches (fastpath.py), with no event
dict at all. That is also the cheapest way through for a single process whose
sinks write bytes (a `file` sink with one path, `kafka`): they take the JSON lines
as they are. So with `workers: 1`, a source the worker plan would offload still
takes that path (plan.py decides, only when every sink at its chain's end takes
encoded events): `InlinePool` has the pool's interface (submit a task, await its
future) and runs each task as it is submitted, on the event loop, like the
transforms it replaces. Readers, ordering, receipts and checkpoints are those of
the worker mode (pipeline/sources/offload.py); nothing here can die on its own.
"""

from __future__ import annotations

import asyncio
import logging

from pipeline.config import PipelineConfig
from pipeline.workers import worker
from pipeline.workers.tasks import ChainSpec, Result, Task

log = logging.getLogger(__name__)


class InlinePool:
    """Runs each task at once in this process; its future is done when `submit` returns."""

    def __init__(self, config: PipelineConfig, chains: list[ChainSpec]) -> None:
        self.workers = 1
        self.inflight = 0  # tasks submitted and not yet taken back (the readers count)
        self._chains = worker.build_chains(config, chains)

    def submit(self, task: Task) -> asyncio.Future[Result]:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(worker.run(task, self._chains))
        except Exception as exc:  # a bug: the reader that submitted the task fails with it, as with workers
            log.exception("batch task failed", extra={"source": task.chain, "path": task.path})
            future.set_exception(RuntimeError(f"worker task failed: {exc!r}"))
        return future

    async def aclose(self) -> None:
        return None
