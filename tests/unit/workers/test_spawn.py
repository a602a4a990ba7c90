"""Workers started first thing by `pipeline run`: guessed from the config's text, taken by the pool, or ended."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import parse_config
from pipeline.daemon import Daemon
from pipeline.workers import spawn
from pipeline.workers.pool import ChunkPool
from pipeline.workers.spawn import available_cpus, expected_workers, worker_count
from pipeline.workers.tasks import ChainSpec, Task
from tests.unit.workers.test_pool import config

FILE_SOURCE = "sources:\n  app:\n    type: file\n    include: [/var/log/app/*.log]\n"


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    yield
    spawn.discard()


def test_auto_is_the_cpus_this_process_may_use() -> None:
    assert worker_count("auto") == available_cpus() >= 1
    assert worker_count(3) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workers: 3\n" + FILE_SOURCE, 3),
        ("workers: '4'  # one per core\n" + FILE_SOURCE, 4),
        ('sources: {app: {type: "file", include: [x]}}\nworkers: 2\n', 2),
        ("workers: 1\n" + FILE_SOURCE, 0),  # one process does everything
        (FILE_SOURCE, 0),  # the default is 1
        ("api:\n  workers: 4\n" + FILE_SOURCE, 0),  # not the top-level key
        ("workers: ${WORKERS}\n" + FILE_SOURCE, 0),  # known only once interpolated
        ("workers: 4\nsources:\n  k:\n    type: kafka\n", 0),  # nothing a worker could take
        ("workers: 4\nsources:\n  k:\n    type: files\n", 0),
    ],
)
def test_the_workers_a_config_will_ask_for_are_read_from_its_text(text: str, expected: int) -> None:
    assert expected_workers(text) == expected


def test_auto_counts_the_cpus_when_there_is_more_than_one() -> None:
    cpus = available_cpus()
    assert expected_workers("workers: auto\n" + FILE_SOURCE) == (cpus if cpus > 1 else 0)


def test_a_config_that_cannot_be_read_starts_nothing(tmp_path: Path) -> None:
    assert spawn.start_early(str(tmp_path / "missing.yaml")) == 0
    assert spawn.take() is None


def write_config(tmp: Path, workers: int) -> str:
    path = tmp / "pipeline.yaml"
    path.write_text(f"workers: {workers}\n" + FILE_SOURCE)
    return str(path)


def task(number: int) -> Task:
    block = b"".join(b"task %d line %d\n" % (number, i) for i in range(100))
    return Task("app", "host", "key", "/logs/app.log", None, "2026-12-01T00:00:00.000Z", 0, block, None, False)


async def test_the_pool_takes_the_workers_started_early(tmp_path: Path) -> None:
    assert spawn.start_early(write_config(tmp_path, 2)) == 2
    early = {p.pid for p in spawn._early}
    pool = ChunkPool(config(tmp_path), [ChainSpec("app", ())], 2)
    try:
        results = await asyncio.gather(*[pool.submit(task(n)) for n in range(4)])
        assert {s.process.pid for s in pool._slots if s.process is not None} == early
    finally:
        await pool.aclose()
    assert [r.n for r in results] == [100] * 4
    assert spawn.take() is None


async def test_workers_started_early_beyond_the_pool_are_ended(tmp_path: Path) -> None:
    spawn.start_early(write_config(tmp_path, 3))
    early = list(spawn._early)
    pool = ChunkPool(config(tmp_path), [ChainSpec("app", ())], 1)
    try:
        assert (await pool.submit(task(0))).n == 100
        taken = [p for p in early if p.poll() is None]
        assert len(taken) == 1 and pool._slots[0].process is taken[0]
    finally:
        await pool.aclose()
    assert all(p.poll() is not None for p in early)


async def test_a_daemon_that_offloads_nothing_ends_the_workers_started_early(tmp_path: Path) -> None:
    spawn.start_early(write_config(tmp_path, 2))
    early = list(spawn._early)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("one\ntwo\nthree\nfour\n")
    raw = {
        "data_dir": str(tmp_path / "data"),
        "api": {"enabled": False},
        "workers": 2,
        "sources": {  # multiline joining keeps a source in the main process
            "app": {"type": "file", "include": [f"{logs}/*.log"], "start_at": "beginning", "watch": False,
                    "multiline": {"type": "count", "count_lines": 2}},
        },
        "sinks": {"out": {"type": "file", "inputs": ["app"], "path": str(tmp_path / "out.jsonl")}},
    }
    daemon = Daemon(parse_config(raw, "<test>", {}), once=True, show_progress=False)
    await daemon.run()
    assert len((tmp_path / "out.jsonl").read_bytes().splitlines()) == 2
    assert len(early) == 2 and all(p.poll() is not None for p in early)


def test_a_worker_s_pipes_hold_a_whole_answer() -> None:
    process = spawn.start(2)
    try:
        assert process.stdin is not None and process.stdout is not None
        for pipe in (process.stdin, process.stdout):
            assert fcntl.fcntl(pipe.fileno(), fcntl.F_GETPIPE_SZ) == spawn.pipe_bytes(2) > 64 * 1024
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    ("workers", "soft_pages", "size"),
    [
        (2, 16384, 1 << 20),  # the default limit (64 MiB): 1 MiB pipes up to 16 workers
        (16, 16384, 1 << 20),
        (17, 16384, 512 << 10),  # then smaller, so the pipes stay within half the limit
        (64, 16384, 256 << 10),
        (4096, 16384, 64 << 10),  # never below Linux's default
        (64, 0, 1 << 20),  # no limit
    ],
)
def test_many_workers_get_smaller_pipes(workers: int, soft_pages: int, size: int) -> None:
    assert os.sysconf("SC_PAGE_SIZE") == 4096  # (the cases are in 4 KiB pages)
    assert spawn.pipe_bytes(workers, soft_pages) == size
    assert 2 * workers * size <= soft_pages * 4096 // 2 or size == 64 << 10 or soft_pages == 0
