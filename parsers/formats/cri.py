"""CRI (containerd, CRI-O) log lines -> container records; and container-format detection.

A CRI log line is ``<RFC3339Nano time> <stdout|stderr> <tag> <message>``, e.g.
``2024-01-02T03:04:05.123456789Z stdout F hello``. The tag is ``:``-separated flags whose
first is ``P`` (partial: a fragment the next line of the same stream continues) or ``F``
(full: the last fragment). ``CriDecoder`` joins ``P`` fragments with the following ones up to
the ``F``, per stream, with the same interface and offset rules as
``parsers.formats.docker.DockerDecoder`` (see ``parsers/formats/container.py`` for the
checkpoint recipe and ``ContainerStreamDemux``, which adds per-stream multiline on top).

Times become ``@timestamp`` form (UTC, milliseconds): containerd writes ``...Z``, CRI-O may
write local time with an offset (``+02:00``), which is converted to UTC.

Two details of the line, decided on purpose:

- **Spaces after the tag belong to the message.** containerd and CRI-O write exactly one space
  between the tag and the message, the kubelet's own reader (``kubectl logs``) takes everything
  after that one space, and so do Fluent Bit's and Vector's CRI parsers: in
  ``<time> stdout F  indented``, the message is `` indented``. Stripping more would change what
  the application wrote (indentation, a deliberate leading space).
- **No tag: a full line.** Runtimes from before the tag was added (Kubernetes < 1.10, early
  cri-containerd) write ``<time> <stream> <message>``. A third field that is not a valid tag
  (``P``, ``F``, or one of them followed by ``:flags``) means the line has none: everything after
  ``<stream> `` is the message, and the line is full (those runtimes never split lines). The
  rule is per line and prefers the tag: a tagless line whose message starts with ``P `` or
  ``F `` (or ``P:``/``F:``) cannot be told from a tagged one, and is read as tagged (its first
  word taken for the tag, ``P`` holding it as a fragment). Every runtime in use writes the
  tag, so reading it wrongly is the rare case; remembering per file that lines were tagless
  would let one corrupt line turn every later line of a current runtime's file into
  ``F message`` text.

Outcome for a malformed line (fewer than two fields, a stream other than stdout/stderr, an
invalid time): it is never dropped and never raises; it becomes a record whose text is the raw
line, ``stream=""``, ``time=None``, tagged ``_cri_parse_failure``. It does not disturb
fragments being reassembled.

Files that mix the formats: ``decoder_for(fmt, ...)`` builds the decoder of a file detected as
``fmt`` (the fast guess) that also decodes a line of the other format, when one does not fit
``fmt`` but fits the other (``other=`` of ``CriDecoder`` / ``DockerDecoder``). Fragments are
reassembled per stream whatever format each line is in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from parsers.formats.container import (
    DEFAULT_MAX_BYTES,
    DEFAULT_TIMEOUT,
    ContainerDecoder,
    ContainerDecoderBase,
    ContainerEntry,
    ContainerRecord,
    to_utc_millis,
    utc_heads,
)
from parsers.formats.docker import DockerDecoder, LineParser, decode_docker
from parsers.multiline import LineLike
from parsers.types import TRUNCATED

__all__ = [
    "TAG_CRI_PARSE_FAILURE",
    "TAG_TRUNCATED",
    "CriDecoder",
    "CriEntry",
    "decoder_for",
    "detect_container_format",
    "parse_cri",
]

TAG_TRUNCATED = TRUNCATED
TAG_CRI_PARSE_FAILURE = "_cri_parse_failure"

CriEntry = ContainerEntry

_NO_TAGS: tuple[str, ...] = ()
_FAILED_CRI = (TAG_CRI_PARSE_FAILURE,)
# NamedTuple construction through tuple.__new__ skips a Python-level __new__ (hot loop).
_tuple_new = tuple.__new__


def _flag(tag: str) -> bool | None:
    """The tag's first flag: True for P (partial), False for F (full), None otherwise."""
    first = tag.split(":", 1)[0]
    if first == "F":
        return False
    if first == "P":
        return True
    return None


def parse_cri(line: str) -> ContainerEntry | None:
    """Parse one CRI line (without its newline); None if it is not a valid CRI line.

    A line without a tag (older runtimes) is a full line; see the module docstring.
    """
    parts = line.split(" ", 3)
    if len(parts) < 2:
        return None
    ts, stream = parts[0], parts[1]
    if stream != "stdout" and stream != "stderr":
        return None
    time = to_utc_millis(ts)
    if time is None:
        return None
    partial = _flag(parts[2]) if len(parts) > 2 else None
    if partial is None:  # no tag: the rest of the line after "<stream> " is the message
        return ContainerEntry(line[len(ts) + len(stream) + 2 :], stream, time, False)
    return ContainerEntry(parts[3] if len(parts) == 4 else "", stream, time, partial)


class CriDecoder(ContainerDecoderBase):
    """Decode the CRI lines of one file; join P fragments up to their F, per stream.

    ``CriDecoder(max_bytes=10 MiB, timeout=5.0, other=None)``; ``feed(lines, now) -> list[ContainerRecord]``,
    ``flush_idle(now)``, ``flush()``, ``pending``, ``pending_start_offset``,
    ``resume_offset``, ``idle_deadline``: see ``ContainerDecoderBase``. ``other``: the parser
    of another format (``decode_docker``) tried on a line that is not CRI before it is tagged
    a failure (files that mix formats; only lines that fail pay for it).
    """

    __slots__ = ("_other",)
    failure_tag = TAG_CRI_PARSE_FAILURE

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
        partials = self._partials
        for line in lines:
            text = line.text
            try:
                ts, stream, tag, message = text.split(" ", 3)
            except ValueError:
                # The 3-field form (empty message, no trailing space) or a malformed line.
                entry = parse_cri(text)
                if entry is None:
                    self._not_cri(line, emit)
                    continue
                message, stream, time, partial = entry
            else:
                if tag == "F":
                    partial = False
                elif tag == "P":
                    partial = True
                else:
                    flag = _flag(tag)
                    if flag is None:  # no tag (an older runtime): a full line
                        message = text[len(ts) + len(stream) + 2 :]
                        partial = False
                    else:
                        partial = flag
                if stream != "stdout" and stream != "stderr":
                    time = None
                # to_utc_millis's fast path, inlined: containerd's "...SS.fffffffffZ" form.
                elif len(ts) == 30 and ts[29] == "Z" and ts[:19] in heads and ts[20:29].isdigit() and ts.isascii():
                    time = ts[:23] + "Z"
                else:
                    time = to_utc_millis(ts)
                if time is None:
                    self._not_cri(line, emit)
                    continue
            if partial or partials:
                rec = self._assemble(line, message, stream, time, partial, _NO_TAGS)
                if rec is not None:
                    emit(rec)
                continue
            emit(new(ContainerRecord, (message, line.start, line.end, stream, time, _NO_TAGS)))
        return out

    def _not_cri(self, line: LineLike, emit: Callable[[ContainerRecord], None]) -> None:
        """A line that is not CRI: decoded by the other format's parser if it fits, else a failure."""
        entry = self._other(line.text) if self._other is not None else None
        if entry is None:
            emit(ContainerRecord(line.text, line.start, line.end, "", None, _FAILED_CRI))
            return
        rec = self._assemble(line, entry.message, entry.stream, entry.time, entry.partial, _NO_TAGS)
        if rec is not None:
            emit(rec)


def decoder_for(fmt: str, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = DEFAULT_TIMEOUT) -> ContainerDecoder:
    """The decoder of a file detected as ``fmt`` ("docker" or "cri"), which also decodes the lines
    of the other format that do not fit ``fmt`` (the per-file guess stays the fast path)."""
    if fmt == "docker":
        return DockerDecoder(max_bytes, timeout, other=parse_cri)
    return CriDecoder(max_bytes, timeout, other=decode_docker)


def detect_container_format(first_line: bytes | str) -> Literal["docker", "cri"] | None:
    """Which container log format a file is in, from its first line (newline optional).

    "docker" for a Docker json-file entry, "cri" for a valid CRI line, None for neither
    (the caller then treats the file as plain lines, or waits for a complete first line).
    """
    if isinstance(first_line, bytes | bytearray | memoryview):
        text = bytes(first_line).decode("utf-8", "replace")
    elif isinstance(first_line, str):
        text = first_line
    else:
        return None
    text = text.rstrip("\r\n")
    if text.startswith("{"):
        return "docker" if decode_docker(text) is not None else None
    return "cri" if parse_cri(text) is not None else None
