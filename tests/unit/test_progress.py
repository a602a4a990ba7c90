"""Progress of --once runs (pipeline/progress.py): the terminal line, the log line, the numbers."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest

from pipeline.progress import ProgressReporter, snapshot
from pipeline.status import ComponentStatus, TopologyStatus


def source(events: int, read: int, backlog: int | None) -> ComponentStatus:
    return ComponentStatus(
        "s", "source", "file", 0, events, 0, 0, 0, {}, {}, bytes_in=read, backlog_bytes=backlog
    )


def status(*sources: ComponentStatus) -> TopologyStatus:
    sink = ComponentStatus("k", "sink", "file", 5, 5, 0, 0, 0, {}, {})
    return TopologyStatus(True, (*sources, sink))


class TestSnapshot:
    def test_sums_sources_and_estimates_eta(self) -> None:
        snap = snapshot(status(source(1000, 1024 * 1024, 3 * 1024 * 1024), source(500, 0, 0)), elapsed=2.0)
        assert (snap.events, snap.bytes_read, snap.bytes_left) == (1500, 1024 * 1024, 3 * 1024 * 1024)
        assert snap.rate == 750.0
        assert snap.eta_s == 6.0  # 3 MiB left at 0.5 MiB/s
        assert snap.line() == "1,500 events  1 MiB of 4 MiB (25%)  750 events/s  ETA 0:06"

    def test_unknown_backlog_gives_no_total_and_no_eta(self) -> None:
        snap = snapshot(status(source(10, 2048, None), source(1, 1, 5)), elapsed=1.0)
        assert snap.bytes_left is None and snap.eta_s is None
        assert snap.line() == "11 events  2.0 KiB read  11 events/s"
        assert "bytes_total" not in snap.fields()


class TestReporter:
    def test_terminal_line_is_redrawn_and_cleared(self) -> None:
        out = io.StringIO()
        clock = iter([0.0, 2.0, 4.0]).__next__
        reporter = ProgressReporter(lambda: status(source(100, 10, 10)), stream=out, tty=True, clock=clock)
        reporter.report()
        reporter.report()
        reporter.clear()
        assert out.getvalue() == (
            "\r\x1b[2K100 events  10 B of 20 B (50%)  50 events/s  ETA 0:02"
            "\r\x1b[2K100 events  10 B of 20 B (50%)  25 events/s  ETA 0:04"
            "\r\x1b[2K"
        )

    def test_not_a_terminal_logs_a_line(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO)
        out = io.StringIO()
        clock = iter([0.0, 10.0]).__next__
        reporter = ProgressReporter(lambda: status(source(100, 10, 30)), stream=out, tty=False, clock=clock)
        reporter.report()
        assert out.getvalue() == ""
        record: Any = caplog.records[-1]
        assert record.getMessage() == "progress"
        assert (record.events, record.bytes_read, record.bytes_total, record.eta_s) == (100, 10, 40, 30.0)

    async def test_run_reports_until_cancelled_then_clears(self) -> None:
        out = io.StringIO()
        reporter = ProgressReporter(lambda: status(source(1, 1, 1)), stream=out, tty=True)
        task = asyncio.create_task(reporter.run())
        await asyncio.sleep(1.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        text = out.getvalue()
        assert text.count("1 events") >= 1 and text.endswith("\r\x1b[2K")

