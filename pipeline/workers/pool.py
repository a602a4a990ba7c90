"""The worker processes, seen from the main process: submit a task, await its result.

`workers` processes (`python -m pipeline.workers`, started fresh: the main
process runs an event loop and client-library threads, so it is never forked;
those `pipeline run` started early are taken first, see `spawn.py`), each fed
through its own stdin and answering on its own stdout with frames (`wire.py`).
The first frame builds the offloaded chains (`worker.init`); each later one is
a task, a block of raw lines (bytes), answered in order by its JSON lines
(bytes): cheap to move between processes, unlike pickled dicts.

A task goes to the worker with the fewest unanswered tasks. A worker that dies
(killed, out of memory) is replaced, and its unanswered tasks go, in order, to
the replacement: their lines are still here and nothing was settled for them,
so nothing is lost or written twice, and the readers awaiting them never see
the death. Workers dying more than `MAX_RESTARTS` times in `RESTART_WINDOW_S`
fail every pending task with `PoolFailed`, which stops the run with an error
instead of spinning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field

from pipeline.config import PipelineConfig
from pipeline.logs import logging_setup
from pipeline.workers import spawn, wire
from pipeline.workers.tasks import ChainSpec, Result, Task

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
# How long a closing pool waits for its workers to finish what they were sent.
CLOSE_TIMEOUT_S = 30.0

__all__ = ["ChunkPool", "PoolFailed"]


class PoolFailed(RuntimeError):
    """The worker processes kept dying: the run stops rather than retry forever."""


@dataclass(slots=True)
class _Slot:
    """One worker: its current process and its tasks sent and not yet answered, oldest first."""

    index: int
    pending: deque[tuple[Task, asyncio.Future[Result]]] = field(default_factory=deque)
    stdin: asyncio.WriteTransport | None = None  # None while (re)starting
    process: subprocess.Popen[bytes] | None = None
    runner: asyncio.Task[None] | None = None


class ChunkPool:
    def __init__(self, config: PipelineConfig, chains: list[ChainSpec], workers: int) -> None:
        self.workers = workers
        self.inflight = 0  # tasks submitted and not yet taken back, over every reader (the readers count)
        self._init = wire.frame((config, chains, logging_setup()))
        self._slots = [_Slot(i) for i in range(workers)]
        self._restarts: list[float] = []
        self._failed: PoolFailed | None = None
        self._closing = False

    def submit(self, task: Task) -> asyncio.Future[Result]:
        """Queue `task` on the least busy worker; its future resolves when that worker answers."""
        if self._failed is not None:
            raise self._failed
        loop = asyncio.get_running_loop()
        if self._slots[0].runner is None:
            early = [spawn.take() for _ in self._slots]
            spawn.discard()  # any started early beyond this pool's size
            for slot, process in zip(self._slots, early, strict=True):  # all at once: they start in parallel
                slot.runner = loop.create_task(self._run(slot, process), name=f"worker-{slot.index}")
        slot = min(self._slots, key=lambda s: len(s.pending))
        future: asyncio.Future[Result] = loop.create_future()
        slot.pending.append((task, future))
        if slot.stdin is not None:
            _send(slot.stdin, wire.frame(task))
        return future

    async def _run(self, slot: _Slot, process: subprocess.Popen[bytes] | None) -> None:
        """Keep one worker running (the first one `process`, when one was started early); whatever goes
        wrong here fails the readers rather than leaving them waiting."""
        try:
            while await self._serve(slot, process):
                process = None
        except Exception as exc:  # a bug in this loop (or a worker that cannot be started)
            log.exception("the worker pool failed", extra={"worker": slot.index})
            self._fail(PoolFailed(f"the worker pool failed: {exc!r}"))

    async def _serve(self, slot: _Slot, process: subprocess.Popen[bytes] | None) -> bool:
        """Start one worker (or take `process`), feed it what its slot owes, hand out its answers until
        it ends. True when a replacement should start (it died, and not too often)."""
        if process is None:
            process = spawn.start(self.workers)
        slot.process = process
        try:
            stdin, stdout = await _adopt(process)
        except BaseException:
            spawn.end(process)
            raise
        _send(stdin, self._init)
        for task, _ in slot.pending:  # what a dead predecessor owed, in order
            _send(stdin, wire.frame(task))
        slot.stdin = stdin
        with contextlib.suppress(EOFError):
            while True:
                ok, answer = await stdout.read()
                if self._failed is not None:  # its tasks were failed already: nothing to hand out
                    break
                _, future = slot.pending.popleft()
                if not future.done():  # a reader that shut down without draining cancelled it
                    if ok:
                        future.set_result(answer)
                    else:
                        future.set_exception(answer)
        slot.stdin = None
        stdin.close()
        if self._failed is not None:  # failed while this one was starting: _fail could not end it
            _kill(process)
        code = await _wait(process)
        return not self._closing and self._failed is None and self._may_restart(slot, code)

    def _may_restart(self, slot: _Slot, code: int) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
        how = _exit_status(code)
        if len(self._restarts) > MAX_RESTARTS:
            deaths = len(self._restarts)
            self._fail(PoolFailed(f"worker processes died {deaths} times in {RESTART_WINDOW_S:.0f} s (last: {how})"))
            return False
        log.warning(
            "a worker process died; starting a new one and processing its chunks again",
            extra={"how": how, "chunks": len(slot.pending), "restarts": len(self._restarts)},
        )
        return True

    def _fail(self, error: PoolFailed) -> None:
        """Fail every pending task and end every worker: the run stops with `error`."""
        if self._failed is not None:
            return
        self._failed = error
        for slot in self._slots:
            for _, future in slot.pending:
                if not future.done():
                    future.set_exception(error)
            slot.pending.clear()
            if slot.process is not None:
                _kill(slot.process)

    async def aclose(self) -> None:
        """Let each worker finish what it was sent, then end it (killed after `CLOSE_TIMEOUT_S`)."""
        self._closing = True
        spawn.discard()  # started early for workers this pool did not need
        runners = [slot.runner for slot in self._slots if slot.runner is not None]
        for slot in self._slots:
            if slot.stdin is not None:
                slot.stdin.close()  # end of input: the worker exits after its last answer
        if not runners:
            return
        _, late = await asyncio.wait(runners, timeout=CLOSE_TIMEOUT_S)
        for slot in self._slots:
            if slot.process is not None:
                _kill(slot.process)
        for runner in late:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        for slot in self._slots:
            for _, future in slot.pending:
                future.cancel()
            slot.pending.clear()


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()  # (a no-op once it was reaped)


async def _adopt(process: subprocess.Popen[bytes]) -> tuple[asyncio.WriteTransport, wire.FrameReader]:
    """The worker's stdin and stdout as the event loop's: a transport to write frames to, a reader of answers."""
    assert process.stdin is not None and process.stdout is not None
    loop = asyncio.get_running_loop()
    stdout = wire.FrameReader()
    await loop.connect_read_pipe(lambda: stdout, process.stdout)
    stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
    return stdin, stdout


async def _wait(process: subprocess.Popen[bytes]) -> int:
    """The exit code of a worker whose output ended (so it is exiting, or killed)."""
    delay = 0.001
    while (code := process.poll()) is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return code


def _exit_status(code: int) -> str:
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:  # a signal without a name (real-time signals)
        return f"signal {-code}"


def _send(stdin: asyncio.WriteTransport, frame: tuple[bytes, bytes]) -> None:
    # No drain: the readers bound what is in flight (RemoteFramer.must_wait), so the buffer is bounded.
    header, body = frame
    stdin.write(header)
    stdin.write(body)
