"""Progress of a `--once` run: a status line on a terminal, a periodic log line otherwise.

Events read, bytes read of bytes to read (when the sources can tell how much is
left), the rate, and an ETA. On a terminal the line is redrawn in place on
stderr twice a second and cleared at the end; when stderr is not a terminal
(CI, systemd, a pipe) an `info` log line `progress` is written every 10 s
instead, so logs stay line-oriented.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from pipeline.status import TopologyStatus
from pipeline.units import format_size

log = logging.getLogger(__name__)

TTY_INTERVAL_S = 0.5
LOG_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    events: int
    bytes_read: int
    bytes_left: int | None  # None when a source cannot tell (Kafka counts records, stdin nothing)
    elapsed: float

    @property
    def rate(self) -> float:
        return self.events / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        if self.bytes_left is None or self.elapsed <= 0 or self.bytes_read <= 0:
            return None
        return self.bytes_left / (self.bytes_read / self.elapsed)

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {
            "events": self.events,
            "bytes_read": self.bytes_read,
            "events_per_s": round(self.rate),
        }
        if self.bytes_left is not None:
            out["bytes_total"] = self.bytes_read + self.bytes_left
        eta = self.eta_s
        if eta is not None:
            out["eta_s"] = round(eta, 1)
        return out

    def line(self) -> str:
        parts = [f"{self.events:,} events"]
        if self.bytes_left is not None:
            total = self.bytes_read + self.bytes_left
            pct = 100.0 * self.bytes_read / total if total else 100.0
            parts.append(f"{format_size(self.bytes_read)} of {format_size(total)} ({pct:.0f}%)")
        else:
            parts.append(f"{format_size(self.bytes_read)} read")
        parts.append(f"{self.rate:,.0f} events/s")
        eta = self.eta_s
        if eta is not None:
            parts.append(f"ETA {int(eta) // 60}:{int(eta) % 60:02d}")
        return "  ".join(parts)


def snapshot(status: TopologyStatus, elapsed: float) -> Snapshot:
    events = bytes_read = 0
    left: int | None = 0
    for c in status.components:
        if c.kind != "source":
            continue
        events += c.events_out
        bytes_read += c.bytes_in
        if c.backlog_bytes is None:
            left = None
        elif left is not None:
            left += c.backlog_bytes
    return Snapshot(events, bytes_read, left, elapsed)


class ProgressReporter:
    def __init__(
        self,
        status: Callable[[], TopologyStatus],
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._status = status
        self._stream = stream or sys.stderr
        self.tty = self._stream.isatty() if tty is None else tty
        self._clock = clock
        self._started = clock()
        self._drawn = False

    def current(self) -> Snapshot:
        return snapshot(self._status(), self._clock() - self._started)

    async def run(self) -> None:
        """Report until cancelled."""
        interval = TTY_INTERVAL_S if self.tty else LOG_INTERVAL_S
        try:
            while True:
                await asyncio.sleep(interval)
                self.report()
        finally:
            self.clear()

    def report(self) -> None:
        snap = self.current()
        if self.tty:
            self._stream.write("\r\x1b[2K" + snap.line())
            self._stream.flush()
            self._drawn = True
        else:
            log.info("progress", extra=snap.fields())

    def clear(self) -> None:
        """Erase the terminal line, so the summary table starts on a clean line."""
        if self._drawn:
            self._stream.write("\r\x1b[2K")
            self._stream.flush()
            self._drawn = False
