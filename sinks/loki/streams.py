"""Turn a send's events into Loki streams: labels from templates, a cap on distinct streams, sorted entries.

Each event renders its label templates; the label set is its stream. A stream
is admitted while the send holds fewer than `max_streams_per_batch` streams and
the sink tracks fewer than `max_streams` (a stream is tracked until unseen for
`stream_ttl`). An event whose stream is not admitted is never dropped: it goes
to the overflow stream (the constant labels plus `pipeline_overflow="true"`,
its own label values kept as structured metadata under the label names), or,
with `overflow: dead_letter`, it is handed back as rejected with the reason.

Entries keep the index of their event in the send, so the sink can retry or
dead-letter exactly the events of a failed request.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson

from pipeline.template import Template, to_text
from sinks.encoding import ENCODE_ERRORS, unencodable
from sinks.loki.config import OVERFLOW_LABEL, LokiSinkConfig

Pairs = tuple[tuple[str, str], ...]
# (timestamp in ns since the epoch, line, structured metadata, index of the event in the send)
Entry = tuple[int, str | bytes, Pairs, int]
Render = Callable[[dict[str, Any]], str]

_BY_TIME = itemgetter(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CACHE_LIMIT = 50_000
_PLAIN_FIELD = re.compile(r"^\{[A-Za-z0-9_@][A-Za-z0-9_@\-]*\}$")  # `{field}`: no dots, no default, no cut


@dataclass(slots=True)
class Stream:
    key: str  # the label set as Loki writes it: {a="x", b="y"} (names sorted)
    labels: Pairs
    entries: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class Grouped:
    """A send's events as streams, plus what the stream caps did to them."""

    streams: list[Stream]
    rejected: list[tuple[int, str]]  # over a cap with `overflow: dead_letter`
    over_batch: int = 0  # events over max_streams_per_batch
    over_total: int = 0  # events over max_streams
    example: str = ""  # one label set that was over a cap, for the warning


def quote(value: str) -> str:
    """A label value as a double-quoted string Loki's label parser reads back (Go string escapes)."""
    # JSON string escapes (\" \\ \n \t \uXXXX) are all valid Go escapes.
    return orjson.dumps(value).decode()


def label_key(pairs: Pairs) -> str:
    return "{" + ", ".join(f"{name}={quote(value)}" for name, value in pairs) + "}"


class Timestamps:
    """`@timestamp` (RFC 3339) -> nanoseconds since the epoch; the ingest time when missing or invalid."""

    __slots__ = ("_seconds",)

    def __init__(self) -> None:
        self._seconds: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds

    def ns(self, value: Any, now_ns: int) -> int:
        if value.__class__ is not str:
            return now_ns
        # The shape every parser and source writes: 2024-01-02T03:04:05.678Z
        if len(value) == 24 and value[19] == "." and value[23] == "Z":
            head = value[:19]
            secs = self._seconds.get(head)
            if secs is None:
                try:
                    secs = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
                except ValueError:
                    return now_ns
                if len(self._seconds) > _CACHE_LIMIT:
                    self._seconds.clear()
                self._seconds[head] = secs
            millis = value[20:23]
            if millis.isdigit() and secs >= 0:
                return secs * 1_000_000_000 + int(millis) * 1_000_000
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return now_ns
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - _EPOCH
        ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
        return ns if ns >= 0 else now_ns  # before 1970: not a real log time


def _json_line(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS)


class StreamMapper:
    """Groups events into streams for one sink; remembers the streams it sent to (the cap)."""

    def __init__(self, config: LokiSinkConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_per_batch = config.max_streams_per_batch
        self.max_streams = config.max_streams
        self.ttl = config.stream_ttl
        self.dead_letter = config.overflow == "dead_letter"
        self._clock = clock
        names = sorted(config.labels)
        templates = [Template(config.labels[n]) for n in names]
        self._names = tuple(names)
        self._renders: tuple[Render, ...] = tuple(t.renderer for t in templates)
        constant = tuple((n, t.constant) for n, t in zip(names, templates, strict=True) if t.constant)
        self._templated = frozenset(n for n, t in zip(names, templates, strict=True) if t.constant is None)
        overflow_pairs: Pairs = tuple(sorted((*constant, (OVERFLOW_LABEL, "true"))))
        self._overflow_labels = overflow_pairs
        self.overflow_key = label_key(overflow_pairs)
        metadata = config.metadata_templates
        self._meta: tuple[tuple[str, Render], ...] = tuple(
            (name, Template(source).renderer) for name, source in sorted(metadata.items())
        )
        # Fast paths for the common shapes (C-level `map(event.get, ...)` instead of a render call
        # per field). Labels: their values are a function of the fields their templates read; when
        # no field is dotted, `event.get` reads each as the templates do, so the raw values can key
        # the send's streams. Metadata: when every template is a plain `{field}`.
        fields = sorted({f for t in templates for f in t.fields})
        self._label_fields = tuple(fields) if not any("." in f for f in fields) else None
        plain = [(name, source[1:-1]) for name, source in sorted(metadata.items())]
        simple = all(_PLAIN_FIELD.match(source) for _, source in sorted(metadata.items()))
        self._meta_names = tuple(name for name, _ in plain) if simple else None
        self._meta_fields = tuple(field for _, field in plain)
        self._line: Callable[[dict[str, Any]], str | bytes] = (
            Template(config.line).renderer if config.line is not None else _json_line
        )
        self._timestamps = Timestamps()
        self._keys: dict[tuple[str, ...], tuple[str, Pairs]] = {}  # rendered values -> (key, labels)
        self.known: dict[str, float] = {}  # stream key -> last seen (clock)
        self._next_prune = 0.0

    # -- labels ------------------------------------------------------------------------------
    def _stream_of(self, values: tuple[str, ...]) -> tuple[str, Pairs]:
        found = self._keys.get(values)
        if found is None:
            pairs = tuple((n, v) for n, v in zip(self._names, values, strict=True) if v)
            if not pairs:  # Loki refuses a stream without labels
                pairs = (("service_name", "unknown_service"),)
            found = (label_key(pairs), pairs)
            if len(self._keys) > _CACHE_LIMIT:
                self._keys.clear()
            self._keys[values] = found
        return found

    def _admit(self, key: str, now: float, in_batch: int) -> str | None:
        """None when the stream may be sent to, else the cap it is over (`batch` or `total`)."""
        if in_batch >= self.max_per_batch:
            return "batch"
        known = self.known
        if key in known:
            known[key] = now
            return None
        if len(known) >= self.max_streams:
            self.prune(now)
            if len(known) >= self.max_streams:
                return "total"
        known[key] = now
        return None

    def prune(self, now: float) -> None:
        """Forget streams unseen for `stream_ttl` (at most once a second: this is O(streams))."""
        if now < self._next_prune:
            return
        self._next_prune = now + 1.0
        horizon = now - self.ttl
        stale = [key for key, seen in self.known.items() if seen < horizon]
        for key in stale:
            del self.known[key]

    # -- grouping ----------------------------------------------------------------------------
    def _target(self, values: tuple[str, ...], streams: dict[str, Stream], now: float, out: Grouped) -> Stream | str:
        """The stream of this send that label values go to, or the cap they are over."""
        key, pairs = self._stream_of(values)
        stream = streams.get(key)
        if stream is not None:
            return stream
        admitted = len(streams) - (self.overflow_key in streams)
        cap = self._admit(key, now, admitted)
        if cap is not None:
            out.example = out.example or key
            return cap
        stream = streams[key] = Stream(key, pairs)
        return stream

    def group(self, events: list[dict[str, Any]]) -> Grouped:
        now = self._clock()
        now_ns = time.time_ns()
        renders = self._renders
        meta = self._meta
        line_of = self._line
        ns_of = self._timestamps.ns
        streams: dict[str, Stream] = {}
        # Rendered label values -> their stream in this send (or the cap they are over): one
        # dict lookup per event once a label set was seen.
        targets: dict[tuple[Any, ...], Stream | str] = {}
        out = Grouped([], [])
        label_fields = self._label_fields
        meta_names, meta_fields = self._meta_names, self._meta_fields
        for i, event in enumerate(events):
            if label_fields is not None:
                raw: tuple[Any, ...] | None = tuple(map(event.get, label_fields))
                try:
                    target = targets.get(raw)  # type: ignore[arg-type]
                except TypeError:  # a dict or list value: not a key
                    target, raw = None, None
                if target is None:
                    target = self._target(tuple([render(event) for render in renders]), streams, now, out)
                    # Only str/None keys: 1 == True == 1.0 as keys, yet they render "1", "true", "1.0".
                    if raw is not None and all(v is None or v.__class__ is str for v in raw):
                        targets[raw] = target
            else:
                values = tuple([render(event) for render in renders])
                target = targets.get(values)
                if target is None:
                    target = targets[values] = self._target(values, streams, now, out)
            metadata: Pairs = ()
            if meta_names is not None:
                if meta_names:
                    metadata = tuple(
                        [
                            (name, v if v.__class__ is str else to_text(v))
                            for name, v in zip(meta_names, map(event.get, meta_fields), strict=True)
                            if v is not None and v != ""
                        ]
                    )
            elif meta:
                metadata = tuple([(name, v) for name, render in meta if (v := render(event))])
            if isinstance(target, str):
                values = tuple([render(event) for render in renders])
                moved = self._overflow(i, values, target, metadata, streams, out)
                if moved is None:
                    continue
                stream, metadata = moved
            else:
                stream = target
            try:
                line = line_of(event)
            except ENCODE_ERRORS as exc:  # the same every time: dead-letter it, never retry the push
                out.rejected.append((i, unencodable(exc)))
                continue
            stream.entries.append((ns_of(event.get("@timestamp"), now_ns), line, metadata, i))
        for stream in streams.values():
            stream.entries.sort(key=_BY_TIME)  # stable: equal timestamps keep their order
        out.streams = [stream for stream in streams.values() if stream.entries]
        return out

    def _overflow(
        self, i: int, values: tuple[str, ...], cap: str, metadata: Pairs, streams: dict[str, Stream], out: Grouped
    ) -> tuple[Stream, Pairs] | None:
        """Count an event over a cap; (the overflow stream, its metadata), or None when it is dead-lettered."""
        if cap == "batch":
            out.over_batch += 1
        else:
            out.over_total += 1
        key, pairs = self._stream_of(values)
        if self.dead_letter:
            out.rejected.append((i, f"loki: over the stream cap ({cap}): labels {key}"))
            return None
        stream = streams.get(self.overflow_key)
        if stream is None:
            stream = streams[self.overflow_key] = Stream(self.overflow_key, self._overflow_labels)
        # The labels it would have had travel as structured metadata (the config keeps label and
        # metadata names apart), so a `| service="api"` filter still finds the event.
        return stream, tuple([(n, v) for n, v in pairs if n in self._templated]) + metadata
