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


# The `entries` key and length prefix of an entry, for the usual entry sizes.
_ENTRY_PREFIX = tuple(_ENTRIES + _SMALL[n] for n in range(_SMALL_LIMIT))
_BOUND = 50_000  # entries per cache before it is cleared (values such as trace ids rarely repeat)


class ProtobufEncoder:
    """Streams -> a snappy-compressed PushRequest. Caches what repeats across sends (labels, times, names)."""

    __slots__ = ("_labels", "_names", "_nanos", "_seconds")

    def __init__(self) -> None:
        self._labels: dict[str, bytes] = {}  # stream key -> encoded `labels` field
        self._names: dict[str, bytes] = {}  # metadata name -> encoded LabelPairAdapter.name field
        self._seconds: dict[int, bytes] = {}  # epoch seconds -> encoded Timestamp.seconds field
        self._nanos: dict[int, bytes] = {}  # nanoseconds -> encoded Timestamp.nanos field

    def _field(self, cache: dict[int, bytes], key: bytes, value: int) -> bytes:
        encoded = key + varint(value) if value > 0 else b""  # proto3 leaves zero out
        if len(cache) > _BOUND:
            cache.clear()
        cache[value] = encoded
        return encoded

    def _metadata(self, metadata: Pairs, parts: list[bytes]) -> int:
        """Append the structuredMetadata fields to `parts`; return their encoded length."""
        names = self._names
        total = 0
        for name, value in metadata:
            name_field = names.get(name)
            if name_field is None:
                raw = _utf8(name)
                name_field = names[name] = _NAME + varint(len(raw)) + raw
            text = _utf8(value)
            text_len = varint(len(text))
            length = len(name_field) + 1 + len(text_len) + len(text)
            key = _METADATA + varint(length)
            parts += (key, name_field, _VALUE, text_len, text)
            total += len(key) + length
        return total

    def request(self, streams: Sequence[Stream]) -> bytes:
        """The PushRequest message, uncompressed.

        Every field goes into one list of parts whose lengths are added up as they go, so
        no bytes are concatenated per entry and each line is copied once, by the final join."""
        if len(self._labels) > _BOUND:
            self._labels.clear()
        seconds, nanos_cache, field = self._seconds, self._nanos, self._field
        parts: list[bytes] = []
        for stream in streams:
            labels = self._labels.get(stream.key)
            if labels is None:
                raw = stream.key.encode()
                labels = self._labels[stream.key] = _LABELS + varint(len(raw)) + raw
            body = [labels]
            size = len(labels)
            for ns, line, metadata, _ in stream.entries:
                secs, nanos = divmod(ns, 1_000_000_000)
                sec_field = seconds.get(secs)
                if sec_field is None:
                    sec_field = field(seconds, _SECONDS, secs)
                nano_field = nanos_cache.get(nanos)
                if nano_field is None:
                    nano_field = field(nanos_cache, _NANOS, nanos)
                ts_len = len(sec_field) + len(nano_field)  # at most 11 + 6 bytes: a one-byte length
                text = line if isinstance(line, bytes) else line.encode("utf-8", "replace")
                text_len = varint(len(text))
                start = len(body)
                body += (b"", _TIMESTAMP, _SMALL[ts_len], sec_field, nano_field, _LINE, text_len, text)
                length = 3 + ts_len + len(text_len) + len(text)
                if metadata:
                    length += self._metadata(metadata, body)
                key = _ENTRY_PREFIX[length] if length < _SMALL_LIMIT else _ENTRIES + varint(length)
                body[start] = key
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
