"""The dead-letter queue: events a sink rejected for good, with the reason.

JSON lines under `data_dir/dead_letter/`, one file per UTC day, shared by all
sinks. A write is flushed and fsynced before the caller settles the batch,
because a dead-lettered event counts as settled: the DLQ must hold it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from parsers.dates import rfc3339_ms
from pipeline.atomicfile import FILE_MODE, ensure_dir
from pipeline.logs import Throttle

log = logging.getLogger(__name__)
LOG_INTERVAL_S = 10.0


class DeadLetterQueue:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()  # sinks may write from worker threads
        self._throttle = Throttle(LOG_INTERVAL_S)
        self._pending: dict[str, int] = {}  # component -> events dead-lettered since its last log line

    def path_for(self, epoch: float | None = None) -> Path:
        day = time.strftime("%Y-%m-%d", time.gmtime(epoch))
        return self.directory / f"dead-letter-{day}.jsonl"

    def write(self, component: str, events: Sequence[dict[str, Any]], reasons: Sequence[str] | str) -> int:
        """Append events with their reasons; return how many were written.

        Each write logs one warning line per component at most every 10 s, with the
        first reason, the file, and how many events were dead-lettered since the
        previous line: a dead letter is never silent, and a flood is one line.
        """
        if not events:
            return 0
        now = time.time()
        stamp = rfc3339_ms(now)
        if isinstance(reasons, str):
            reasons = [reasons] * len(events)
        lines = b"".join(
            _encode({"@timestamp": stamp, "component": component, "reason": reason, "event": event}) + b"\n"
            for event, reason in zip(events, reasons, strict=True)
        )
        with self._lock:
            ensure_dir(self.directory)
            fd = os.open(self.path_for(now), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            try:
                os.write(fd, lines)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._pending[component] = self._pending.get(component, 0) + len(events)
            if self._throttle.allow(component) is not None:
                log.warning(
                    "events dead-lettered",
                    extra={
                        "component": component,
                        "events": self._pending.pop(component),
                        "reason": reasons[0],
                        "file": str(self.path_for(now)),
                    },
                )
        return len(events)

    def log_pending(self) -> None:
        """Log what the throttle held back (at shutdown): every dead letter is in some log line."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for component, count in pending.items():
            log.warning(
                "events dead-lettered",
                extra={"component": component, "events": count, "file": str(self.path_for())},
            )

    def read_all(self) -> list[dict[str, Any]]:
        """Every dead-lettered record, oldest file first (for tests and operators)."""
        records: list[dict[str, Any]] = []
        if not self.directory.exists():
            return records
        for path in sorted(self.directory.glob("dead-letter-*.jsonl")):
            with open(path, "rb") as fh:
                records.extend(_decode(line) for line in fh if line.strip())
        return records


def _encode(record: dict[str, Any]) -> bytes:
    """One record as a JSON line, whatever its event holds: the DLQ is where unencodable events end up."""
    try:
        return orjson.dumps(record, default=str)
    except orjson.JSONEncodeError:
        pass
    try:
        # The standard library takes integers beyond 64 bits, and escapes lone surrogates.
        return json.dumps(record, default=str, ensure_ascii=True).encode()
    except (TypeError, ValueError):
        # Keys it cannot write either (tuples) or a cycle: keep the event as its repr.
        return orjson.dumps({**record, "event": repr(record["event"])})


def _decode(line: bytes) -> dict[str, Any]:
    try:
        record: dict[str, Any] = orjson.loads(line)
    except orjson.JSONDecodeError:  # what only the standard library wrote (a lone surrogate)
        record = json.loads(line)
    return record
