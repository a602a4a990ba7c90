"""Framing: one file's raw lines -> events, in one loop per chunk.

A *framer* turns one file's raw lines into events and holds what is not
complete yet:

- `PlainFramer`: one event per line (the hot path; builds the dicts directly).
- `MultilineFramer`: lines -> `parsers.multiline` joiner -> one event per record.
- (`pipeline.sources.container.ContainerFramer`: container decoding + per-stream joiners.)

Every `feed` also returns the *resume offset*: the position a restart may
resume from once everything emitted so far is delivered (the end of the last
line, or the start of a record still held by a joiner). A batch's receipt
covers [previous resume offset, this resume offset).

Line policy: a trailing `\\r` is dropped (CRLF files); invalid UTF-8 is
replaced with U+FFFD and the event tagged `_invalid_utf8`; a line cut at
`max_line_bytes` is tagged `_truncated` (its offsets still span the whole line,
so the next line starts intact and a checkpoint never lands inside a line).

A source picks its framers with a `FramerFactory`: `line_framers(config)` for
the `file` source, `ContainerFramers` for the `container` source.
"""

from __future__ import annotations

from typing import Protocol

from parsers.multiline import Joiner, Line, Record
from parsers.types import INVALID_UTF8, TRUNCATED
from pipeline.event import Event
from pipeline.sources.file_config import FileSourceConfig
from pipeline.sources.fileid import event_id_prefix
from pipeline.sources.lines import RawLine

# (events completed, resume offset or None if nothing was ever fed)
FeedResult = tuple[list[Event], int | None]


class Stamp:
    """What every event of one file carries: host, path, log_type, the event-id hasher."""

    __slots__ = ("host", "id_prefix", "key", "log_type", "path")

    def __init__(self, host: str, key: str, path: str, log_type: str | None) -> None:
        self.host = host
        self.key = key
        self.path = path
        self.log_type = log_type
        self.id_prefix = event_id_prefix(host, key)

    def event_id(self, offset: int) -> str:
        return f"{self.id_prefix}{offset:012x}"

    def event(self, text: str, offset: int, ts: str, tags: list[str] | None) -> Event:
        event: Event = {"@timestamp": ts, "message": text, "host": self.host}
        if self.log_type:
            event["log_type"] = self.log_type
        event["source"] = {"path": self.path, "offset": offset}
        event["event_id"] = self.event_id(offset)
        if tags:
            event["tags"] = tags
        return event


class Framer(Protocol):
    """Turns one file's raw lines into events; holds what is not complete yet."""

    stamp: Stamp

    def feed(self, lines: list[RawLine], now: float, ts: str, crlf: bool) -> FeedResult:
        """Events completed by `lines` (in file order) and the resume offset after them."""
        ...

    def flush_idle(self, now: float, ts: str) -> FeedResult:
        """Events held longer than their idle timeout (multiline), and the resume offset."""
        ...

    def flush(self, ts: str) -> FeedResult:
        """Everything held (end of input, file closed)."""
        ...

    @property
    def pending(self) -> bool:
        """True while lines are held for a record that is not complete."""
        ...

    @property
    def idle_deadline(self) -> float | None:
        """Monotonic time at which `flush_idle` has something to emit."""
        ...


class PlainFramer:
    """One event per line, built directly in one loop (no joiner)."""

    __slots__ = ("_fed_end", "stamp")

    def __init__(self, stamp: Stamp) -> None:
        self.stamp = stamp
        self._fed_end: int | None = None

    pending = False
    idle_deadline = None

    def feed(self, lines: list[RawLine], now: float, ts: str, crlf: bool) -> FeedResult:
        if not lines:
            return [], self._fed_end
        stamp = self.stamp
        host = stamp.host
        path = stamp.path
        log_type = stamp.log_type
        prefix = stamp.id_prefix
        events: list[Event] = []
        append = events.append
        for raw, start, _end, truncated in lines:
            if crlf and raw[-1:] == b"\r":
                raw = raw[:-1]
            try:
                text = raw.decode()
                tags = [TRUNCATED] if truncated else None
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "replace")
                tags = [INVALID_UTF8, TRUNCATED] if truncated else [INVALID_UTF8]
            if log_type:
                event = {
                    "@timestamp": ts,
                    "message": text,
                    "host": host,
                    "log_type": log_type,
                    "source": {"path": path, "offset": start},
                    "event_id": f"{prefix}{start:012x}",
                }
            else:
                event = {
                    "@timestamp": ts,
                    "message": text,
                    "host": host,
                    "source": {"path": path, "offset": start},
                    "event_id": f"{prefix}{start:012x}",
                }
            if tags:
                event["tags"] = tags
            append(event)
        self._fed_end = lines[-1][2]
        return events, self._fed_end

    def flush_idle(self, now: float, ts: str) -> FeedResult:
        return [], self._fed_end

    def flush(self, ts: str) -> FeedResult:
        return [], self._fed_end


class LineFlags:
    """Tags of individual lines (truncated, invalid UTF-8) carried onto the records that hold them.

    Rare, so kept aside instead of on every line: (start offset, tag) in file order.
    """

    __slots__ = ("_flags",)

    def __init__(self) -> None:
        self._flags: list[tuple[int, str]] = []

    def add(self, start: int, tag: str) -> None:
        self._flags.append((start, tag))

    def __bool__(self) -> bool:
        return bool(self._flags)

    def take(self, start: int, end: int) -> list[str] | None:
        """Tags of lines starting in [start, end); flags before `end` are consumed."""
        flags = self._flags
        tags: list[str] | None = None
        while flags and flags[0][0] < end:
            pos, tag = flags.pop(0)
            if pos >= start:
                if tags is None:
                    tags = [tag]
                elif tag not in tags:
                    tags.append(tag)
        return tags


class MultilineFramer:
    """Lines -> multiline joiner -> one event per complete record."""

    __slots__ = ("_flags", "joiner", "stamp")

    def __init__(self, stamp: Stamp, joiner: Joiner) -> None:
        self.stamp = stamp
        self.joiner = joiner
        self._flags = LineFlags()

    @property
    def pending(self) -> bool:
        return self.joiner.pending

    @property
    def idle_deadline(self) -> float | None:
        return self.joiner.idle_deadline

    def feed(self, lines: list[RawLine], now: float, ts: str, crlf: bool) -> FeedResult:
        flags = self._flags
        out: list[Line] = []
        append = out.append
        for raw, start, end, truncated in lines:
            if crlf and raw[-1:] == b"\r":
                raw = raw[:-1]
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                text = raw.decode("utf-8", "replace")
                flags.add(start, INVALID_UTF8)
            if truncated:
                flags.add(start, TRUNCATED)
            append(Line(text, start, end))
        return self._events(self.joiner.feed(out, now), ts), self.joiner.resume_offset

    def flush_idle(self, now: float, ts: str) -> FeedResult:
        return self._events(self.joiner.flush_idle(now), ts), self.joiner.resume_offset

    def flush(self, ts: str) -> FeedResult:
        return self._events(self.joiner.flush(), ts), self.joiner.resume_offset

    def _events(self, records: list[Record], ts: str) -> list[Event]:
        stamp = self.stamp
        flags = self._flags
        events = []
        for rec in records:
            tags = flags.take(rec.start, rec.end) if flags else None
            if rec.truncated:
                if tags is None:
                    tags = [TRUNCATED]
                elif TRUNCATED not in tags:
                    tags.append(TRUNCATED)
            events.append(stamp.event(rec.text, rec.start, ts, tags))
        return events


class FramerFactory(Protocol):
    """Builds the framer of one file identity (`key`) found at `path`."""

    def __call__(self, host: str, key: str, path: str) -> Framer: ...


def line_framers(config: FileSourceConfig) -> FramerFactory:
    """The `file` source's framers: one event per line, or per multiline record."""
    multiline = config.multiline
    log_type = config.log_type

    def build(host: str, key: str, path: str) -> Framer:
        stamp = Stamp(host, key, path, log_type)
        if multiline is not None:
            return MultilineFramer(stamp, multiline.build())
        return PlainFramer(stamp)

    return build
