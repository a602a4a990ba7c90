"""Docker json-file lines -> container records.

A Docker json-file log line is ``{"log": "hello\\n", "stream": "stdout", "time": "<RFC3339Nano>"}``.
Docker splits a line longer than 16 KiB into several entries; every entry but the last lacks
the trailing ``\\n`` (a *partial* entry). ``decode_docker`` decodes one line; ``DockerDecoder``
decodes a stream of lines and reassembles partial entries, per output stream (stdout and
stderr entries interleave in one file), into one ``ContainerRecord`` each. What Docker and
CRI share (records, times, reassembly, per-stream multiline, the offset rules) is in
``parsers/formats/container.py``.

Outcomes, never an exception and never a dropped line:

- a line that is not a Docker entry (invalid or truncated JSON, no string ``log``) but fits
  the decoder's ``other`` parser (a CRI line in a file that mixes formats, see
  ``parsers.formats.cri.decoder_for``) is decoded as that format;
- a line that is neither becomes a record whose text is the raw line, ``stream=""``,
  ``time=None``, tag ``_docker_parse_failure``. It has no stream, so it cannot tell which
  pending partial it interrupts; it ends them all: each stream's held fragments are emitted
  as their own record first (as at end of file), then the line. Joining a fragment with an
  entry that comes after a broken line would splice text that may not belong together (the
  broken line may be the lost continuation: a daemon that died mid-write leaves half a JSON
  line), and joining "around" it would also put the record after it out of order;
- a line whose JSON only fails because of invalid UTF-8 (lone surrogates left by the reader's
  ``surrogateescape``) is decoded after replacing the bad bytes with U+FFFD, tag
  ``_invalid_utf8``;
- a reassembled record longer than ``max_bytes`` keeps its first ``max_bytes`` bytes and is
  tagged ``_truncated`` (its offsets still span all its raw lines);
- an unparseable ``time`` gives ``time=None`` (the caller stamps the ingest time);
  a missing ``stream`` gives ``stream=""``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from parsers.formats.container import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    ContainerDecoderBase,
    ContainerEntry,
    ContainerRecord,
    to_utc_millis,
    utc_heads,
)
from parsers.multiline import LineLike
from parsers.types import INVALID_UTF8, TRUNCATED

__all__ = [
    "TAG_DOCKER_PARSE_FAILURE",
    "TAG_INVALID_UTF8",
    "TAG_TRUNCATED",
    "DockerDecoder",
    "DockerEntry",
    "LineParser",
    "decode_docker",
]

TAG_TRUNCATED = TRUNCATED
TAG_INVALID_UTF8 = INVALID_UTF8
TAG_DOCKER_PARSE_FAILURE = "_docker_parse_failure"

DockerEntry = ContainerEntry
# One line's text -> its entry in some container format, or None (``decode_docker``, ``parse_cri``).
LineParser = Callable[[str], ContainerEntry | None]

_NO_TAGS: tuple[str, ...] = ()
_FAILED_DOCKER = (TAG_DOCKER_PARSE_FAILURE,)
# NamedTuple construction through tuple.__new__ skips a Python-level __new__ (hot loops).
_tuple_new = tuple.__new__


# -- docker line -----------------------------------------------------------------------------


def decode_docker(raw: bytes | str) -> ContainerEntry | None:
    """Decode one Docker json-file line; None if it is not one (invalid/truncated JSON, no log).

    ``partial`` is ``not log.endswith("\\n")``; the message is the log without that newline.
    """
    try:
        obj = orjson.loads(raw)
        log = obj["log"]
        partial = not log.endswith("\n")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None
    if type(log) is not str:
        return None
    stream = obj.get("stream", "")
    ts = obj.get("time")
    return ContainerEntry(
        log if partial else log[:-1],
        stream if type(stream) is str else "",
        to_utc_millis(ts) if type(ts) is str else None,
        partial,
    )


class DockerDecoder(ContainerDecoderBase):
    """Decode Docker json-file lines of one file; reassemble partial entries per stream.

    ``feed(lines, now)`` takes ``Line``s (the raw JSON text and offsets) and returns
    ``ContainerRecord``s in completion order; fragments of an unfinished line stay inside
    (see ``pending_start_offset`` / ``resume_offset``). See the module docstring for the
    outcome of bad lines. ``other``: the parser of another format (``parse_cri``) tried on a
    line that is not a Docker entry (files that mix formats; only such lines pay for it).
    """

    __slots__ = ("_other",)
    failure_tag = TAG_DOCKER_PARSE_FAILURE

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DEFAULT_TIMEOUT, other: LineParser | None = None
    ) -> None:
        super().__init__(max_bytes, timeout)
        self._other = other

    def feed(self, lines: Sequence[LineLike], now: float) -> list[ContainerRecord]:
        if not lines:
            return []
        self._last_feed = now
        self._fed_end = lines[-1].end
        out: list[ContainerRecord] = []
        emit = out.append
        new = _tuple_new
        heads = utc_heads
        loads = orjson.loads
        partials = self._partials
        for line in lines:
            text = line.text
            try:
                obj = loads(text)
                log = obj["log"]
                partial = not log.endswith("\n")
                stream = obj.get("stream", "")
                ts = obj.get("time")
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                self._fallback(line, emit)
                continue
            if type(stream) is not str:
                stream = ""
            if type(ts) is not str:
                time = None
            # to_utc_millis's fast path, inlined: the common "...SS.fffffffffZ" form.
            elif len(ts) == 30 and ts[29] == "Z" and ts[:19] in heads and ts[20:29].isdigit() and ts.isascii():
                time = ts[:23] + "Z"
            else:
                time = to_utc_millis(ts)
            if partial or partials:
                rec = self._assemble(line, log if partial else log[:-1], stream, time, partial, _NO_TAGS)
                if rec is not None:
                    emit(rec)
                continue
            emit(new(ContainerRecord, (log[:-1], line.start, line.end, stream, time, _NO_TAGS)))
        return out

    def _fallback(self, line: LineLike, emit: Callable[[ContainerRecord], None]) -> None:
        """A line that did not decode: retry with invalid UTF-8 replaced, then as the other format;
        else it ends every pending partial and passes raw (see the module docstring)."""
        text = line.text
        entry = None
        tags = _NO_TAGS
        if not text.isascii():
            try:
                repaired = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            except UnicodeError:
                repaired = text.encode("utf-8", "replace").decode("utf-8", "replace")
            if repaired != text:
                entry = decode_docker(repaired)
                tags = (TAG_INVALID_UTF8,)
        if entry is None and self._other is not None:
            entry = self._other(text)
            tags = _NO_TAGS
        if entry is not None:
            rec = self._assemble(line, entry.message, entry.stream, entry.time, entry.partial, tags)
            if rec is not None:
                emit(rec)
            return
        for held in self.flush():
            emit(held)
        emit(ContainerRecord(text, line.start, line.end, "", None, _FAILED_DOCKER))
