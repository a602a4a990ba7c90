"""Files in other encodings than UTF-8: lines are cut in the file's bytes and handed on as UTF-8.

The `encoding` option of the file and container sources names the encoding of
the file's bytes. Everything downstream of the line splitter (framers,
multiline, container decoding, worker processes) works on UTF-8, so a
non-UTF-8 file is *transcoded line by line* right after it is cut into lines:

- offsets stay those of the file's bytes (checkpoints, receipts, event ids);
- a line is decoded whole, so a character split across two reads, or a record
  joined from several lines, always decodes correctly;
- bytes that are not valid in the encoding become U+FFFD and the event is tagged
  `_invalid_utf8`, as for UTF-8 files (the tag means "not valid in the file's
  encoding"): the transcoded line carries a byte that is invalid UTF-8 in their
  place, which the framer replaces and tags like any other;
- a leading byte order mark at offset 0 is dropped.

ASCII-compatible encodings (gb18030 / gbk, big5, shift_jis, euc-kr, latin-1,
windows-125x ...) never use the byte 0x0A inside a character, so lines are cut
at b"\\n" as for UTF-8. UTF-16 is not: its newline is the 16-bit unit 0x000A,
cut by `Utf16LineSplitter` on unit boundaries; `utf-16` reads the byte order
from the BOM (little-endian without one), `utf-16le` / `utf-16be` fix it.
"""

from __future__ import annotations

import codecs
import os

from pipeline.sources.lines import Block, LineSplitter, RawLine

UTF16 = ("utf-16", "utf-16-le", "utf-16-be")
_REPLACED = "\ufffd".encode()


def check_encoding(name: str) -> str:
    """The codec's canonical name; ValueError when Python has no such codec or its lines
    cannot be cut at newline bytes (UTF-32, UTF-7, EBCDIC code pages ...)."""
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (use a Python codec name: utf-8, gb18030, latin-1 ...)") from None
    if canonical in UTF16:
        return canonical
    try:
        ascii_compatible = b"a\nz\r".decode(canonical) == "a\nz\r"
    except (UnicodeError, LookupError):
        ascii_compatible = False
    if not ascii_compatible:
        raise ValueError(
            f"encoding {name!r} is not supported: files must be ASCII-compatible (utf-8, gb18030, big5, "
            "shift_jis, euc-kr, latin-1 ...) or UTF-16 (utf-16, utf-16le, utf-16be)"
        )
    return canonical


def is_utf8(canonical: str) -> bool:
    return canonical == "utf-8"


class Utf16LineSplitter(LineSplitter):
    """`LineSplitter` for UTF-16: lines end at the unit 0x000A on a 2-byte boundary.

    Same contract (offsets, a line cut at `max_line_bytes` and skipped to its end,
    `flush`), except that `feed_block` never makes a block.
    """

    __slots__ = ("_sep", "_sniff", "_tail", "codec")

    def __init__(self, max_line_bytes: int, offset: int, big_endian: bool | None) -> None:
        """`big_endian` None: the byte order comes from a BOM in the first bytes fed at offset 0
        (little-endian without one)."""
        super().__init__(max(2, max_line_bytes - max_line_bytes % 2), offset)
        self._set_order(bool(big_endian))
        self._sniff = big_endian is None and offset == 0
        self._tail = b""  # while skipping a long line: its last byte, which may start a newline unit

    def _set_order(self, big_endian: bool) -> None:
        self._sep = b"\x00\n" if big_endian else b"\n\x00"
        self.codec = "utf-16-be" if big_endian else "utf-16-le"

    def _find(self, data: bytes, base: int, i: int) -> int:
        """Index in `data` (which starts at file offset `base`) of the next newline unit aligned
        with the current line's start, or -1."""
        sep = self._sep
        while True:
            j = data.find(sep, i)
            if j < 0 or (base + j - self._line_start) % 2 == 0:
                return j
            i = j + 1

    def feed(self, chunk: bytes) -> list[RawLine]:
        out: list[RawLine] = []
        if self._sniff and len(head := self._buf + chunk) >= 2:  # no line ends in fewer bytes
            self._sniff = False
            self._set_order(head[:2] == codecs.BOM_UTF16_BE)
        chunk_start = self._fed
        self._fed += len(chunk)
        limit = self.max_line_bytes
        if self._discarding:
            data = self._tail + chunk
            base = chunk_start - len(self._tail)
            j = self._find(data, base, 0)
            if j < 0:
                self._tail = data[-1:]
                return out
            end = base + j + 2
            out.append((self._buf, self._line_start, end, True))
            self._buf = self._tail = b""
            self._discarding = False
            self._line_start = end
            data = data[j + 2 :]
        else:
            data = self._buf + chunk if self._buf else chunk
        base = self._line_start
        i = 0
        while (j := self._find(data, base, i)) >= 0:
            line = data[i:j]
            start = base + i
            end = base + j + 2
            out.append((line[:limit], start, end, True) if len(line) > limit else (line, start, end, False))
            self._line_start = end
            i = j + 2
        rest = data[i:]
        if len(rest) > limit:
            self._buf = rest[:limit]
            self._tail = rest[-1:]
            self._discarding = True
        else:
            self._buf = rest
        return out

    def feed_block(self, chunk: bytes) -> Block | list[RawLine]:
        return self.feed(chunk)

    def flush(self) -> RawLine | None:
        self._tail = b""
        return super().flush()


class TranscodingSplitter:
    """Cuts a file in another encoding into lines and hands them on as UTF-8 (same offsets)."""

    __slots__ = ("_codec", "_inner")

    def __init__(self, inner: LineSplitter, codec: str = "utf-8") -> None:
        """`codec`: the file's encoding; over a `Utf16LineSplitter`, the byte order it found instead."""
        self._inner = inner
        self._codec = codec

    @property
    def pending_bytes(self) -> int:
        return self._inner.pending_bytes

    @property
    def offset(self) -> int:
        return self._inner.offset

    def _line(self, line: RawLine) -> RawLine:
        raw, start, end, truncated = line
        inner = self._inner
        codec = inner.codec if isinstance(inner, Utf16LineSplitter) else self._codec
        try:
            text = raw.decode(codec)
            bad = False
        except UnicodeDecodeError:
            text = raw.decode(codec, "replace")
            bad = True
        if start == 0 and text[:1] == "\ufeff":
            text = text[1:]
        out = text.encode("utf-8", "surrogatepass")
        if bad:  # a byte invalid in UTF-8 where the input was invalid: the framer replaces and tags it
            out = out.replace(_REPLACED, b"\xff")
        return out, start, end, truncated

    def feed(self, chunk: bytes) -> list[RawLine]:
        return [self._line(line) for line in self._inner.feed(chunk)]

    def feed_block(self, chunk: bytes) -> Block | list[RawLine]:
        # A block's line offsets are derived from byte lengths, which transcoding changes.
        return self.feed(chunk)

    def flush(self) -> RawLine | None:
        line = self._inner.flush()
        return self._line(line) if line is not None else None


Splitter = LineSplitter | TranscodingSplitter


def line_splitter(fd: int | None, offset: int, max_line_bytes: int, encoding: str) -> Splitter:
    """The splitter for a file in `encoding` (canonical name), read from `offset`.

    For `utf-16` the byte order comes from the BOM at the file's start (read from
    `fd`, little-endian when there is none or no fd).
    """
    if is_utf8(encoding):
        return LineSplitter(max_line_bytes, offset)
    if encoding in UTF16:
        big_endian: bool | None = encoding == "utf-16-be"
        if encoding == "utf-16":
            head = os.pread(fd, 2, 0) if fd is not None else b""
            big_endian = head == codecs.BOM_UTF16_BE if len(head) == 2 else None
        return TranscodingSplitter(Utf16LineSplitter(max_line_bytes, offset, big_endian))
    return TranscodingSplitter(LineSplitter(max_line_bytes, offset), encoding)
