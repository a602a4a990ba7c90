"""Events that travel as JSON lines: encoded once (in a worker process), decoded only if needed.

A worker process frames, transforms and encodes a chunk of a file and hands back
one `bytes` of JSON lines. `EncodedEvents` carries them through the rest of the
pipeline as a read-only sequence of events: a byte-oriented sink (the file sink)
writes `data` as it is, the Kafka sink sends its `lines` as record values, and
anything that reads the events themselves decodes them all once, on first access
(orjson, a C loop). Batches of encoded events
merge by joining their bytes, so a sink's group stays encoded too.

The events are never changed after encoding (sinks do not mutate events; every
transform that could runs before the encoding, in the worker), so `data` and
the decoded events always agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import orjson

from parsers.types import Event


class EncodedEvents(Sequence[Event]):
    """`n` events as JSON lines (each ends with a newline)."""

    __slots__ = ("_decoded", "data", "n")

    def __init__(self, data: bytes, n: int) -> None:
        self.data = data
        self.n = n
        self._decoded: list[Event] | None = None

    @classmethod
    def join(cls, parts: Sequence[EncodedEvents]) -> EncodedEvents:
        return cls(b"".join([p.data for p in parts]), sum(p.n for p in parts))

    def decoded(self, lines: list[bytes] | None = None) -> list[Event]:
        """The events, decoded once (from `lines`, this batch's `lines()`, when the caller has them)."""
        events = self._decoded
        if events is None:
            loads = orjson.loads
            events = self._decoded = [loads(line) for line in (self.lines() if lines is None else lines)]
        return events

    def lines(self) -> list[bytes]:
        """Each event's JSON, without its newline (a sink that sends events one by one, as Kafka
        records, reuses them instead of encoding the decoded events again)."""
        lines = self.data.split(b"\n")
        lines.pop()  # after the last newline
        return lines

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Event]:
        return iter(self.decoded())

    @overload
    def __getitem__(self, index: int) -> Event: ...

    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self.decoded()[index]

    def __repr__(self) -> str:
        return f"EncodedEvents({self.n} events, {len(self.data)} bytes)"
