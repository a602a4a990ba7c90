"""A tiny protobuf wire-format reader for Loki push requests, independent of sinks/loki/encoding.py.

It knows only the wire format (varints, length-delimited fields) and the field
numbers of Loki's push.proto, so a test can check the encoder's bytes without
trusting the encoder.
"""

from __future__ import annotations

from typing import Any

import cramjam

Field = tuple[int, int | bytes]


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def fields(buf: bytes) -> list[Field]:
    """(field number, value) in order: an int for varints, bytes for length-delimited fields."""
    out: list[Field] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = read_varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("length-delimited field runs past the end")
            out.append((number, buf[pos : pos + size]))
            pos += size
        else:
            raise ValueError(f"unexpected wire type {wire} for field {number}")
    return out


def _entry(buf: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {"ns": 0, "line": "", "metadata": []}
    for number, value in fields(buf):
        assert isinstance(value, bytes), f"EntryAdapter field {number} is not length-delimited"
        if number == 1:  # google.protobuf.Timestamp
            seconds = nanos = 0
            for n, v in fields(value):
                assert isinstance(v, int)
                if n == 1:
                    seconds = v
                elif n == 2:
                    nanos = v
            entry["ns"] = seconds * 1_000_000_000 + nanos
        elif number == 2:
            entry["line"] = value.decode("utf-8")
        elif number == 3:
            pair = {n: v for n, v in fields(value)}
            assert isinstance(pair.get(1, b""), bytes) and isinstance(pair.get(2, b""), bytes)
            entry["metadata"].append((pair.get(1, b"").decode(), pair.get(2, b"").decode()))  # type: ignore[union-attr]
        else:
            raise ValueError(f"unknown EntryAdapter field {number}")
    return entry


def decode_request(message: bytes) -> list[dict[str, Any]]:
    """An uncompressed PushRequest -> [{"labels": str, "entries": [{"ns", "line", "metadata"}]}]."""
    streams = []
    for number, value in fields(message):
        assert number == 1 and isinstance(value, bytes), f"unexpected PushRequest field {number}"
        stream: dict[str, Any] = {"labels": "", "entries": []}
        for n, v in fields(value):
            assert isinstance(v, bytes)
            if n == 1:
                stream["labels"] = v.decode("utf-8")
            elif n == 2:
                stream["entries"].append(_entry(v))
            else:
                raise ValueError(f"unknown StreamAdapter field {n}")
        streams.append(stream)
    return streams


def decode_body(body: bytes) -> list[dict[str, Any]]:
    """A push body (snappy block format) -> streams."""
    return decode_request(bytes(cramjam.snappy.decompress_raw(body)))


def parse_labels(text: str) -> dict[str, str]:
    """`{a="x", b="y\\"z"}` -> {"a": "x", "b": 'y"z'} (Go string escapes, as Loki reads them)."""
    import json

    assert text.startswith("{") and text.endswith("}"), text
    out: dict[str, str] = {}
    pos = 1
    while pos < len(text) - 1:
        eq = text.index("=", pos)
        name = text[pos:eq].strip(" ,")
        assert text[eq + 1] == '"', text
        end = eq + 2
        while text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        out[name] = json.loads(text[eq + 1 : end + 1])
        pos = end + 1
    return out
