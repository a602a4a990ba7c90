"""Push request bodies: Loki's PushRequest as protobuf (snappy block format) or as JSON.

The protobuf schema (Loki's `push.proto`, package `logproto`) is small enough to
write by hand, which is faster than building message objects:

    PushRequest      { repeated StreamAdapter streams = 1; }
    StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; }
    EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
                       repeated LabelPairAdapter structuredMetadata = 3; }
    LabelPairAdapter { string name = 1; string value = 2; }
    Timestamp        { int64 seconds = 1; int32 nanos = 2; }

The body is compressed with snappy's *block* format (Go's `snappy.Encode`, what
Loki's `util.ParseProtoReader` decodes), not the framed stream format.

JSON: `{"streams": [{"stream": {label: value}, "values": [["<ns>", "<line>",
{metadata}]]}]}`; the third element of a value is Loki 3's structured metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import cramjam
import orjson

from sinks.loki.streams import Pairs, Stream

PROTOBUF_TYPE = "application/x-protobuf"
JSON_TYPE = "application/json"

# Field keys: (field number << 3) | wire type (0 = varint, 2 = length-delimited).
_STREAMS = b"\x0a"  # PushRequest.streams = 1
_LABELS = b"\x0a"  # StreamAdapter.labels = 1
_ENTRIES = b"\x12"  # StreamAdapter.entries = 2
_TIMESTAMP = b"\x0a"  # EntryAdapter.timestamp = 1
_LINE = b"\x12"  # EntryAdapter.line = 2
_METADATA = b"\x1a"  # EntryAdapter.structuredMetadata = 3
_NAME = b"\x0a"  # LabelPairAdapter.name = 1
_VALUE = b"\x12"  # LabelPairAdapter.value = 2
_SECONDS = b"\x08"  # Timestamp.seconds = 1 (varint)
_NANOS = b"\x10"  # Timestamp.nanos = 2 (varint)


def _varint_slow(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Lengths below 16 KiB (nearly every line, label set and entry) come from this table.
_SMALL = tuple(_varint_slow(n) for n in range(1 << 14))
_SMALL_LIMIT = 1 << 14


def varint(n: int) -> bytes:
    """Base-128 varint of a non-negative int."""
    if n < _SMALL_LIMIT:
        return _SMALL[n]
    return _varint_slow(n)


def _utf8(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "replace")


class ProtobufEncoder:
    """Streams -> a snappy-compressed PushRequest. Caches what repeats across sends (labels, metadata)."""

    __slots__ = ("_labels", "_pairs", "_seconds")

    def __init__(self) -> None:
        self._labels: dict[str, bytes] = {}  # stream key -> encoded `labels` field
        self._pairs: dict[tuple[str, str], bytes] = {}  # (name, value) -> encoded structuredMetadata field
        self._seconds: dict[int, bytes] = {}  # epoch seconds -> encoded Timestamp.seconds field

    def _metadata(self, metadata: Pairs) -> bytes:
        pairs = self._pairs
        out = []
        for pair in metadata:
            field = pairs.get(pair)
            if field is None:
                name, value = _utf8(pair[0]), _utf8(pair[1])
                body = _NAME + varint(len(name)) + name + _VALUE + varint(len(value)) + value
                field = _METADATA + varint(len(body)) + body
                if len(pairs) > 50_000:  # values such as trace ids rarely repeat: keep the cache bounded
                    pairs.clear()
                pairs[pair] = field
            out.append(field)
        return b"".join(out)

    def request(self, streams: Sequence[Stream]) -> bytes:
        """The PushRequest message, uncompressed.

        Lengths are added up rather than measured on concatenated bytes, so each line is
        copied once, into the final join."""
        seconds_cache = self._seconds
        if len(seconds_cache) > 100_000:
            seconds_cache.clear()
        parts: list[bytes] = []
        for stream in streams:
            labels = self._labels.get(stream.key)
            if labels is None:
                raw = stream.key.encode()
                if len(self._labels) > 50_000:
                    self._labels.clear()
                labels = self._labels[stream.key] = _LABELS + varint(len(raw)) + raw
            body = [labels]
            size = len(labels)
            for ns, line, metadata, _ in stream.entries:
                secs, nanos = divmod(ns, 1_000_000_000)
                ts = seconds_cache.get(secs)
                if ts is None:
                    ts = seconds_cache[secs] = _SECONDS + varint(secs) if secs > 0 else b""
                if nanos:
                    ts = ts + _NANOS + varint(nanos)
                text = _utf8(line)
                head = _TIMESTAMP + varint(len(ts)) + ts + _LINE + varint(len(text))
                meta = self._metadata(metadata) if metadata else b""
                length = len(head) + len(text) + len(meta)
                key = _ENTRIES + varint(length)
                body += (key, head, text, meta)
                size += len(key) + length
            parts.append(_STREAMS + varint(size))
            parts += body
        return b"".join(parts)

    def encode(self, streams: Sequence[Stream]) -> bytes:
        """The request body: the PushRequest in snappy's block format."""
        return bytes(cramjam.snappy.compress_raw(self.request(streams)))


def _text(line: str | bytes) -> str:
    return line.decode("utf-8", "replace") if isinstance(line, bytes) else line


def encode_json(streams: Sequence[Stream]) -> bytes:
    """The request body as JSON (timestamps as decimal strings of nanoseconds, as Loki requires)."""
    out = []
    for stream in streams:
        values: list[list[object]] = []
        for ns, line, metadata, _ in stream.entries:
            if metadata:
                values.append([str(ns), _text(line), dict(metadata)])
            else:
                values.append([str(ns), _text(line)])
        out.append({"stream": dict(stream.labels), "values": values})
    return orjson.dumps({"streams": out})


def gzip(body: bytes) -> bytes:
    return bytes(cramjam.gzip.compress(body, level=6))
