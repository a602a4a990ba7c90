"""pipeline/workers/inline.py: `workers: 1` runs the worker's batch path in this process."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from pipeline.config import PipelineConfig, parse_config
from pipeline.workers.inline import InlinePool
from pipeline.workers.tasks import ChainSpec, Task

TS = "2026-01-01T00:00:00.000Z"
LINE = '10.0.0.{i} - - [10/Oct/2024:13:55:{i:02d} +0000] "GET /p/{i} HTTP/1.1" 200 {i} "-" "curl/8"\n'


def config(tmp: Path) -> PipelineConfig:
    return parse_config(
        {
            "data_dir": str(tmp / "data"),
            "api": {"enabled": False},
            "sources": {"logs": {"type": "file", "include": [str(tmp / "*.log")], "log_type": "access"}},
            "transforms": {"parsed": {"type": "parse", "inputs": ["logs"]}},
            "sinks": {"out": {"type": "file", "inputs": ["parsed"], "path": str(tmp / "out.jsonl")}},
        },
        "<test>",
        {},
    )


def task(chain: str, block: bytes) -> Task:
    return Task(chain, "host-1", "file-key", "/var/log/a.log", "access", TS, 0, block, None, False)


async def test_a_task_is_answered_when_submitted(tmp_path: Path) -> None:
    pool = InlinePool(config(tmp_path), [ChainSpec("logs", ("parsed",))])
    block = "".join(LINE.format(i=i) for i in range(1, 6)).encode() + b"not an access line\n"
    future = pool.submit(task("logs", block))
    assert future.done()  # no process: nothing to wait for
    result = await future
    events = [orjson.loads(line) for line in result.data.splitlines()]
    assert result.n == len(events) == 6
    assert [e.get("status") for e in events] == [200] * 5 + [None]
    assert events[0]["source"] == {"path": "/var/log/a.log", "offset": 0}
    assert result.counts["parsed"].events_in == 6
    assert result.counts["parsed"].tags == {"_grokparsefailure": 1}
    await pool.aclose()


async def test_a_failing_task_fails_its_reader_and_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pool = InlinePool(config(tmp_path), [ChainSpec("logs", ("parsed",))])
    with caplog.at_level(logging.ERROR):
        future = pool.submit(task("no-such-chain", b"x\n"))  # a bug: a task for a chain that was not built
    with pytest.raises(RuntimeError, match="worker task failed"):
        await future
    assert "batch task failed" in caplog.text
