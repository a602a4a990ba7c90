"""The worker pool itself: answers in order, a killed worker's tasks done again, a pool that keeps dying fails."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import orjson
import pytest

from pipeline.config import PipelineConfig, parse_config
from pipeline.workers import pool as pool_module
from pipeline.workers.pool import ChunkPool, PoolFailed
from pipeline.workers.tasks import ChainSpec, Result, Task

LINES_PER_TASK = 4000  # about 1.5 MB of JSON per answer: a kill often lands while a worker writes one


def config(tmp: Path) -> PipelineConfig:
    raw = {
        "data_dir": str(tmp / "data"),
        "api": {"enabled": False},
        "sources": {"app": {"type": "file", "include": [f"{tmp}/*.log"]}},
        "sinks": {"out": {"type": "file", "inputs": ["app"], "path": str(tmp / "out.jsonl")}},
    }
    return parse_config(raw, "<test>", {})


def task(number: int, chain: str = "app") -> Task:
    block = b"".join(b"task %06d line %06d %s\n" % (number, i, b"x" * 200) for i in range(LINES_PER_TASK))
    return Task(chain, "host", "key", "/logs/app.log", None, "2026-12-01T00:00:00.000Z", 0, block, None, False)


def first_message(result: Result) -> str:
    return str(orjson.loads(result.data.split(b"\n", 1)[0])["message"])


def worker_pids(pool: ChunkPool) -> list[int]:
    return [s.process.pid for s in pool._slots if s.process is not None and s.process.poll() is None]


async def test_answers_match_their_tasks(tmp_path: Path) -> None:
    pool = ChunkPool(config(tmp_path), [ChainSpec("app", ())], 2)
    try:
        futures = [pool.submit(task(n)) for n in range(6)]
        results = await asyncio.gather(*futures)
    finally:
        await pool.aclose()
    assert [r.n for r in results] == [LINES_PER_TASK] * 6
    assert [first_message(r)[:11] for r in results] == [f"task {n:06d}" for n in range(6)]
    assert not worker_pids(pool), "closed: no worker left running"


async def test_a_worker_killed_while_answering_is_replaced_and_its_tasks_done_again(tmp_path: Path) -> None:
    pool = ChunkPool(config(tmp_path), [ChainSpec("app", ())], 2)
    try:
        futures = [pool.submit(task(n)) for n in range(40)]
        await futures[0]
        for _ in range(3):  # three kills, each as answers stream back
            pids = worker_pids(pool)
            os.kill(pids[0], signal.SIGKILL)
            await asyncio.sleep(0.3)
        results = await asyncio.wait_for(asyncio.gather(*futures), 120)
    finally:
        await pool.aclose()
    assert [first_message(r)[:11] for r in results] == [f"task {n:06d}" for n in range(40)]
    assert len(pool._restarts) == 3


async def test_a_pool_that_keeps_dying_fails_its_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "MAX_RESTARTS", 1)
    pool = ChunkPool(config(tmp_path), [ChainSpec("app", ())], 1)
    try:
        futures = [pool.submit(task(n)) for n in range(200)]
        await futures[0]
        for _ in range(2):
            for _wait in range(200):  # the replacement starting
                if worker_pids(pool):
                    break
                await asyncio.sleep(0.05)
            os.kill(worker_pids(pool)[0], signal.SIGKILL)
            await asyncio.sleep(0.5)
        with pytest.raises(PoolFailed, match="died 2 times"):
            await asyncio.wait_for(futures[-1], 60)
        with pytest.raises(PoolFailed):
            pool.submit(task(0))
    finally:
        await pool.aclose()


async def test_a_task_that_fails_in_the_worker_fails_its_future_only(tmp_path: Path) -> None:
    pool = ChunkPool(config(tmp_path), [ChainSpec("app", ())], 1)
    try:
        bad = pool.submit(task(0, chain="no-such-chain"))
        good = pool.submit(task(1))
        with pytest.raises(RuntimeError, match="worker task failed"):
            await bad
        assert first_message(await good).startswith("task 000001")
    finally:
        await pool.aclose()


async def test_a_worker_that_cannot_be_started_fails_its_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot_start(workers: int) -> None:
        raise OSError(8, "Exec format error")

    monkeypatch.setattr(pool_module.spawn, "start", cannot_start)
    pool = ChunkPool(config(tmp_path), [ChainSpec("app", ())], 2)
    try:
        future = pool.submit(task(0))
        with pytest.raises(PoolFailed, match="Exec format error"):
            await asyncio.wait_for(future, 30)
    finally:
        await pool.aclose()


def test_an_exit_status_is_named() -> None:
    assert pool_module._exit_status(3) == "exit code 3"
    assert pool_module._exit_status(-9) == "signal SIGKILL"
    assert pool_module._exit_status(-40) == "signal 40"  # a real-time signal has no name
