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

Outcome for a malformed line (fewer than three fields, a stream other than stdout/stderr, a
tag not starting with P or F, an invalid time): it is never dropped and never raises; it
becomes a record whose text is the raw line, ``stream=""``, ``time=None``, tagged
``_cri_parse_failure``. It does not disturb fragments being reassembled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from parsers.formats.container import (
    ContainerDecoderBase,
    ContainerEntry,
    ContainerRecord,
    to_utc_millis,
    utc_heads,
)
from parsers.formats.docker import decode_docker
from parsers.multiline import LineLike
from parsers.types import TRUNCATED

__all__ = [
    "TAG_CRI_PARSE_FAILURE",
    "TAG_TRUNCATED",
    "CriDecoder",
    "CriEntry",
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
    """Parse one CRI line (without its newline); None if it is not a valid CRI line."""
    parts = line.split(" ", 3)
    if len(parts) == 4:
        ts, stream, tag, message = parts
    elif len(parts) == 3:
        ts, stream, tag = parts
        message = ""
    else:
        return None
    if stream != "stdout" and stream != "stderr":
        return None
    partial = _flag(tag)
    if partial is None:
        return None
    time = to_utc_millis(ts)
    if time is None:
        return None
    return ContainerEntry(message, stream, time, partial)


class CriDecoder(ContainerDecoderBase):
    """Decode the CRI lines of one file; join P fragments up to their F, per stream.

    ``CriDecoder(max_bytes=10 MiB, timeout=5.0)``; ``feed(lines, now) -> list[ContainerRecord]``,
    ``flush_idle(now)``, ``flush()``, ``pending``, ``pending_start_offset``,
    ``resume_offset``, ``idle_deadline``: see ``ContainerDecoderBase``.
    """

    __slots__ = ()
    failure_tag = TAG_CRI_PARSE_FAILURE

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
                    emit(ContainerRecord(text, line.start, line.end, "", None, _FAILED_CRI))
                    continue
                message, stream, time, partial = entry
            else:
                if tag == "F":
                    partial = False
                elif tag == "P":
                    partial = True
                else:
                    flag = _flag(tag)
                    partial = bool(flag)
                    if flag is None:
                        stream = ""  # rejected just below
                if stream != "stdout" and stream != "stderr":
                    time = None
                # to_utc_millis's fast path, inlined: containerd's "...SS.fffffffffZ" form.
                elif len(ts) == 30 and ts[29] == "Z" and ts[:19] in heads and ts[20:29].isdigit() and ts.isascii():
                    time = ts[:23] + "Z"
                else:
                    time = to_utc_millis(ts)
                if time is None:
                    emit(ContainerRecord(text, line.start, line.end, "", None, _FAILED_CRI))
                    continue
            if partial or partials:
                rec = self._assemble(line, message, stream, time, partial, _NO_TAGS)
                if rec is not None:
                    emit(rec)
                continue
            emit(new(ContainerRecord, (message, line.start, line.end, stream, time, _NO_TAGS)))
        return out


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
