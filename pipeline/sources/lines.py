"""Split a byte stream into lines with their offsets, bounding memory per line.

Each line comes out as (raw bytes without the newline, start offset, end offset
just past the newline, truncated flag). A line longer than `max_line_bytes`
keeps only its head in memory; the rest is skipped up to its newline, and the
line is emitted (truncated) with an end offset past that newline, so a
checkpoint never lands in the middle of a line.
"""

from __future__ import annotations

RawLine = tuple[bytes, int, int, bool]
# Complete lines as one block: (their bytes, each line ending with a newline; the first's offset).
Block = tuple[bytes, int]


class LineSplitter:
    __slots__ = ("_buf", "_discarding", "_fed", "_line_start", "max_line_bytes")

    def __init__(self, max_line_bytes: int, offset: int = 0) -> None:
        self.max_line_bytes = max_line_bytes
        self._buf = b""
        self._discarding = False
        self._fed = offset  # stream offset just past the last byte fed
        self._line_start = offset  # stream offset of the pending line's first byte

    @property
    def pending_bytes(self) -> int:
        """Bytes fed but not yet part of a complete line."""
        return self._fed - self._line_start

    @property
    def offset(self) -> int:
        """The offset just past every byte fed so far."""
        return self._fed

    def feed(self, chunk: bytes) -> list[RawLine]:
        out: list[RawLine] = []
        chunk_start = self._fed
        self._fed += len(chunk)
        limit = self.max_line_bytes
        if self._discarding:
            nl = chunk.find(b"\n")
            if nl < 0:
                return out
            end = chunk_start + nl + 1
            out.append((self._buf, self._line_start, end, True))
            self._buf = b""
            self._discarding = False
            self._line_start = end
            chunk = chunk[nl + 1 :]
        data = self._buf + chunk if self._buf else chunk
        parts = data.split(b"\n")
        rest = parts.pop()
        start = self._line_start
        for part in parts:
            end = start + len(part) + 1
            if len(part) > limit:
                out.append((part[:limit], start, end, True))
            else:
                out.append((part, start, end, False))
            start = end
        self._line_start = start
        if len(rest) > limit:
            self._buf = rest[:limit]
            self._discarding = True
        else:
            self._buf = rest
        return out

    def feed_block(self, chunk: bytes) -> Block | list[RawLine]:
        """Like `feed`, but complete lines come back as one block: (bytes ending with a newline,
        its start offset), without a Python step per line. Used when lines are framed elsewhere
        (worker processes). When a line may be cut (longer than `max_line_bytes`), or one is being
        skipped, it falls back to `feed`'s list of lines."""
        buf = self._buf
        if self._discarding or len(buf) + len(chunk) > self.max_line_bytes:
            return self.feed(chunk)
        data = buf + chunk if buf else chunk
        self._fed += len(chunk)
        nl = data.rfind(b"\n")
        if nl < 0:
            self._buf = data
            return (b"", self._line_start)
        start = self._line_start
        self._buf = data[nl + 1 :]
        self._line_start = start + nl + 1
        return (data[: nl + 1], start)

    def flush(self) -> RawLine | None:
        """The unterminated last line, if any (end of input or idle timeout)."""
        if self._fed == self._line_start:
            return None
        line = (self._buf, self._line_start, self._fed, self._discarding)
        self._buf = b""
        self._discarding = False
        self._line_start = self._fed
        return line
