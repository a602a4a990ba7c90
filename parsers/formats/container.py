"""What the container log formats share: records, times, partial reassembly, per-stream multiline.

The container runtimes write one log file per container, in one of two line
formats: Docker json-file (``parsers/formats/docker.py``) and CRI
(``parsers/formats/cri.py``). Both decoders are built from the parts here:

- ``ContainerEntry``: one decoded line ``(message, stream, time, partial)``.
- ``ContainerRecord``: ``(text, start, end, stream, time, tags)``, "line-like" (``text``,
  ``start``, ``end`` come first), so it can be fed to a ``parsers.multiline`` joiner.
- ``to_utc_millis``: RFC 3339 (nano) -> ``@timestamp`` form ``YYYY-MM-DDTHH:MM:SS.mmmZ``.
- ``ContainerDecoderBase``: the partial-reassembly machinery both decoders use, and the
  decoder interface (``feed`` / ``flush_idle`` / ``flush`` / ``pending_start_offset`` /
  ``resume_offset``, the same as the multiline joiner's).
- ``ContainerStreamDemux``: the per-file chain *decoder -> one multiline joiner per stream*.

Offsets and checkpoints: a reassembled record spans ``[start of its first raw line, end of its
last raw line)``; with interleaved streams the ranges of records overlap, so the source must
not derive its checkpoint from record offsets. Use ``resume_offset`` after each ``feed``: the
smallest start of anything still held, else the end of the last line fed. A batch's receipt
covers ``[previous resume_offset, resume_offset)`` (possibly empty); those ranges are
contiguous and a restart from any released position replays nothing that was lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import ClassVar, NamedTuple, Protocol, cast

from parsers.multiline import Joiner, LineLike, Record, cut_utf8, utf8_len
from parsers.types import TRUNCATED

__all__ = [
    "ContainerDecoder",
    "ContainerDecoderBase",
    "ContainerEntry",
    "ContainerRecord",
    "ContainerStreamDemux",
    "to_utc_millis",
]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 5.0


class ContainerEntry(NamedTuple):
    """One decoded container log entry (a Docker json-file line or a CRI line).

    ``message`` without the line terminator; ``stream`` "stdout" / "stderr" ("" if absent);
    ``time`` RFC 3339 UTC with milliseconds, or None if absent or unparseable; ``partial``
    true for a fragment that the next entry of the same stream continues.
    """

    message: str
    stream: str
    time: str | None
    partial: bool


class ContainerRecord(NamedTuple):
    """A decoded container log record, line-like: feed it to a multiline joiner as is.

    ``text`` the message; ``start``/``end`` the byte offsets spanning all its raw lines;
    ``stream`` "stdout" / "stderr" ("" when unknown: parse failures); ``time`` RFC 3339 UTC ms
    of its first fragment (None when unknown); ``tags`` usually ``()``.
    """

    text: str
    start: int
    end: int
    stream: str
    time: str | None
    tags: tuple[str, ...]


# -- time ----------------------------------------------------------------------------------

_TS_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?([Zz]|[+-]\d{2}:?\d{2})",
    re.ASCII,
)
# "YYYY-MM-DDTHH:MM:SS" prefixes already validated as a real UTC date-time; lines come in
# time order, so the same second repeats and the fast path below is a set lookup + slicing.
utc_heads: set[str] = set()
# ts[:19] + zone -> the UTC "YYYY-MM-DDTHH:MM:SS" it stands for (offset zones, e.g. CRI-O).
_zone_bases: dict[str, str] = {}
_CACHE_MAX = 4096


def to_utc_millis(ts: str) -> str | None:
    """RFC 3339 / RFC3339Nano -> ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, ms, truncated).

    ``2024-01-02T03:04:05.123456789Z`` -> ``2024-01-02T03:04:05.123Z``;
    ``2024-01-02T05:04:05.5+02:00`` -> ``2024-01-02T03:04:05.500Z``. None if not a valid time.
    The common ``...Z`` form costs a set lookup and a slice (no datetime per line).
    """
    if ts[-1:] == "Z" and ts[:19] in utc_heads and ts.isascii():
        n = len(ts)
        if n == 20:
            return ts[:19] + ".000Z"
        if ts[19] == ".":
            frac = ts[20:-1]
            if frac.isdigit():
                if n >= 24:
                    return ts[:23] + "Z"
                return ts[:20] + (frac + "00")[:3] + "Z"
    elif ts[-6:-5] in ("+", "-") and len(ts) >= 27 and ts[19] == ".":
        # "...SS.fff+02:00" (CRI-O local time): the converted second is cached per zone.
        base = _zone_bases.get(ts[:19] + ts[-6:])
        if base is not None and ts.isascii():
            frac = ts[20:-6]
            if frac.isdigit():
                return base + "." + (frac + "00")[:3] + "Z"
    return _to_utc_millis_slow(ts)


def _to_utc_millis_slow(ts: str) -> str | None:
    if type(ts) is not str:
        return None
    m = _TS_RE.fullmatch(ts)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    key = ts[:19] + zone
    base = _zone_bases.get(key)
    if base is None:
        try:
            dt = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
            if zone not in ("Z", "z"):
                oh, om = int(zone[1:3]), int(zone[-2:])
                if oh > 23 or om > 59:
                    return None
                delta = timedelta(hours=oh, minutes=om)
                dt = dt - delta if zone[0] == "+" else dt + delta
        except (ValueError, OverflowError):
            return None
        base = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
        if len(_zone_bases) >= _CACHE_MAX:
            _zone_bases.clear()
        _zone_bases[key] = base
        if zone == "Z" and ts[10] == "T":
            if len(utc_heads) >= _CACHE_MAX:
                utc_heads.clear()
            utc_heads.add(ts[:19])
    ms = (frac + "00")[:3] if frac else "000"
    return f"{base}.{ms}Z"


# -- decoders --------------------------------------------------------------------------------


class _Partial:
    """Fragments of one stream's record being reassembled."""

    __slots__ = ("end", "nbytes", "parts", "start", "tags", "time", "truncated")

    def __init__(self, start: int, time: str | None, tags: tuple[str, ...]) -> None:
        self.parts: list[str] = []
        self.start = start
        self.end = start
        self.time = time
        self.nbytes = 0
        self.truncated = False
        self.tags = tags


class ContainerDecoder(Protocol):
    """The decoder interface (``DockerDecoder``, ``CriDecoder``); mirrors the joiner's."""

    @property
    def failure_tag(self) -> str:
        """The tag of records that are raw lines which failed to decode (they skip multiline)."""
        ...

    def feed(self, lines: Sequence[LineLike], now: float) -> list[ContainerRecord]: ...
    def flush_idle(self, now: float) -> list[ContainerRecord]: ...
    def flush(self) -> list[ContainerRecord]: ...
    @property
    def pending(self) -> bool: ...
    @property
    def pending_start_offset(self) -> int | None: ...
    @property
    def resume_offset(self) -> int | None: ...
    @property
    def idle_deadline(self) -> float | None: ...


class ContainerDecoderBase:
    """Partial-fragment reassembly per stream, idle flush and offsets; subclasses parse lines.

    ``max_bytes`` caps a reassembled message (UTF-8 bytes; past it the text is cut and the
    record tagged ``_truncated``). ``timeout``: ``flush_idle(now)`` emits fragments still
    waiting for their final entry when no line was fed for that long (a container that died
    mid-line), so they cannot hold the checkpoint back forever. Subclasses set
    ``failure_tag``, the tag of the raw lines they could not decode.
    """

    __slots__ = ("_fed_end", "_last_feed", "_partials", "max_bytes", "timeout")
    failure_tag: ClassVar[str]

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DEFAULT_TIMEOUT) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._partials: dict[str, _Partial] = {}
        self._last_feed = 0.0
        self._fed_end: int | None = None

    @property
    def pending(self) -> bool:
        """True while fragments wait for the entry that completes them."""
        return bool(self._partials)

    @property
    def pending_start_offset(self) -> int | None:
        """Smallest start offset of a held fragment (the checkpoint must not pass it)."""
        if not self._partials:
            return None
        return min(p.start for p in self._partials.values())

    @property
    def resume_offset(self) -> int | None:
        """Where a restart must resume: the pending start, else the end of the last line fed."""
        pending = self.pending_start_offset
        return pending if pending is not None else self._fed_end

    @property
    def idle_deadline(self) -> float | None:
        """Clock value at which ``flush_idle`` will emit the held fragments (None: nothing)."""
        return self._last_feed + self.timeout if self._partials else None

    def feed(self, lines: Sequence[LineLike], now: float) -> list[ContainerRecord]:
        raise NotImplementedError

    def flush_idle(self, now: float) -> list[ContainerRecord]:
        """Emit held fragments as records if nothing was fed for ``timeout`` seconds."""
        if self._partials and now - self._last_feed >= self.timeout:
            return self.flush()
        return []

    def flush(self) -> list[ContainerRecord]:
        """Emit every held fragment group as a record (end of file, rotation, shutdown)."""
        if not self._partials:
            return []
        held = sorted(self._partials.items(), key=lambda item: item[1].start)
        self._partials.clear()
        return [self._finish(stream, p) for stream, p in held]

    def _assemble(
        self,
        line: LineLike,
        piece: str,
        stream: str,
        time: str | None,
        partial: bool,
        tags: tuple[str, ...],
    ) -> ContainerRecord | None:
        """Add one decoded fragment; return the record it completes, if any."""
        partials = self._partials
        p = partials.get(stream)
        if p is None:
            if not partial:
                return ContainerRecord(piece, line.start, line.end, stream, time, tags)
            p = partials[stream] = _Partial(line.start, time, tags)
        elif tags:
            p.tags = _merge_tags(p.tags, tags)
        p.end = line.end
        if not p.truncated:
            size = len(piece) if piece.isascii() else utf8_len(piece)
            room = self.max_bytes - p.nbytes
            if size <= room:
                p.parts.append(piece)
                p.nbytes += size
            else:
                p.parts.append(cut_utf8(piece, room))
                p.nbytes = self.max_bytes
                p.truncated = True
        if partial:
            return None
        del partials[stream]
        return self._finish(stream, p)

    @staticmethod
    def _finish(stream: str, p: _Partial) -> ContainerRecord:
        tags = _merge_tags(p.tags, (TRUNCATED,)) if p.truncated else p.tags
        return ContainerRecord("".join(p.parts), p.start, p.end, stream, p.time, tags)


def _merge_tags(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    if not a:
        return b
    new = tuple(t for t in b if t not in a)
    return a + new if new else a


# -- per-stream multiline ----------------------------------------------------------------------


class ContainerStreamDemux:
    """One container log file: decoder -> one multiline joiner per stream (stdout, stderr).

    ``joiner_factory(stream)`` builds the joiner for a stream the first time it is seen
    (e.g. ``lambda s: MultilineJoiner(...)``); None means no multiline (records pass
    through). Records that failed to decode (the decoder's ``failure_tag``) skip the joiners. Joined
    records keep the first fragment's time, the union of their lines' tags, and
    ``_truncated`` when the joiner dropped text. Same interface as the decoders and joiners;
    ``flush_idle`` also flushes idle joiners. Output order is completion order; within a
    stream it is stream order.
    """

    __slots__ = ("_decoder", "_factory", "_fed_end", "_joiners", "_now", "_tagged")

    def __init__(
        self,
        decoder: ContainerDecoder,
        joiner_factory: Callable[[str], Joiner] | None = None,
    ) -> None:
        self._decoder = decoder
        self._factory = joiner_factory
        self._joiners: dict[str, Joiner] = {}
        # stream -> [(start offset, tags)] of tagged records held in that stream's joiner.
        self._tagged: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
        self._fed_end: int | None = None
        self._now = 0.0

    @property
    def decoder(self) -> ContainerDecoder:
        return self._decoder

    @property
    def pending(self) -> bool:
        return self._decoder.pending or any(j.pending for j in self._joiners.values())

    @property
    def pending_start_offset(self) -> int | None:
        starts = [self._decoder.pending_start_offset]
        starts.extend(j.pending_start_offset for j in self._joiners.values())
        held = [s for s in starts if s is not None]
        return min(held) if held else None

    @property
    def resume_offset(self) -> int | None:
        pending = self.pending_start_offset
        return pending if pending is not None else self._fed_end

    @property
    def idle_deadline(self) -> float | None:
        deadlines = [self._decoder.idle_deadline]
        deadlines.extend(j.idle_deadline for j in self._joiners.values())
        due = [d for d in deadlines if d is not None]
        return min(due) if due else None

    def feed(self, lines: Sequence[LineLike], now: float) -> list[ContainerRecord]:
        if lines:
            self._fed_end = lines[-1].end
            self._now = now
        recs = self._decoder.feed(lines, now)
        if self._factory is None or not recs:
            return recs
        return self._join(recs, now)

    def flush_idle(self, now: float) -> list[ContainerRecord]:
        out: list[ContainerRecord] = []
        recs = self._decoder.flush_idle(now)
        if recs:
            # Fed as of the time their last fragment arrived, so joiners see their true age.
            out = recs if self._factory is None else self._join(recs, self._now)
        for stream, joiner in self._joiners.items():
            for rec in joiner.flush_idle(now):
                out.append(self._convert(stream, rec))
        return out

    def flush(self) -> list[ContainerRecord]:
        out: list[ContainerRecord] = []
        recs = self._decoder.flush()
        if recs:
            out = recs if self._factory is None else self._join(recs, self._now)
        for stream, joiner in self._joiners.items():
            for rec in joiner.flush():
                out.append(self._convert(stream, rec))
        return out

    def _join(self, recs: list[ContainerRecord], now: float) -> list[ContainerRecord]:
        out: list[ContainerRecord] = []
        run: list[ContainerRecord] = []
        run_stream: str | None = None
        failure = self._decoder.failure_tag
        for r in recs:
            if r.tags:
                if failure in r.tags:
                    # Keep stream order: what came before the failure goes out first.
                    if run:
                        self._feed_run(cast(str, run_stream), run, now, out)
                        run = []
                        run_stream = None
                    out.append(r)
                    continue
                self._tagged.setdefault(r.stream, []).append((r.start, r.tags))
            if r.stream != run_stream:
                if run:
                    self._feed_run(cast(str, run_stream), run, now, out)
                run = [r]
                run_stream = r.stream
            else:
                run.append(r)
        if run:
            self._feed_run(cast(str, run_stream), run, now, out)
        return out

    def _feed_run(self, stream: str, run: list[ContainerRecord], now: float, out: list[ContainerRecord]) -> None:
        joiner = self._joiners.get(stream)
        if joiner is None:
            assert self._factory is not None
            joiner = self._joiners[stream] = self._factory(stream)
        emit = out.append
        convert = self._convert
        for rec in joiner.feed(run, now):
            # A single untruncated line is the decoder's record itself: hand it back as is.
            first = cast(ContainerRecord, rec.first)
            if rec.lines == 1 and not rec.truncated and not first.tags:
                emit(first)
            else:
                emit(convert(stream, rec))

    def _convert(self, stream: str, rec: Record) -> ContainerRecord:
        first = cast(ContainerRecord, rec.first)
        tagged = self._tagged.get(stream)
        if not tagged:
            if rec.lines == 1 and not rec.truncated:
                return first
            tags = first.tags
        else:
            tags = first.tags
            while tagged and tagged[0][0] < rec.end:
                tags = _merge_tags(tags, tagged.pop(0)[1])
        if rec.truncated:
            tags = _merge_tags(tags, (TRUNCATED,))
        if rec.lines == 1 and tags is first.tags:
            return first
        return ContainerRecord(rec.text, rec.start, rec.end, stream, first.time, tags)
