"""sinks/loki/encoding.py: push bodies decode back (by an independent wire reader) to what was encoded."""

from __future__ import annotations

import gzip as stdlib_gzip
from typing import Any

import cramjam
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.loki.encoding import ProtobufEncoder, encode_json, gzip, varint
from sinks.loki.streams import Entry, Stream, label_key
from tests.unit.sinks.loki_decode import decode_body, decode_request, parse_labels, read_varint

NS = 1_700_000_000_123_456_789


def stream(labels: dict[str, str], entries: list[Entry]) -> Stream:
    pairs = tuple(sorted(labels.items()))
    return Stream(label_key(pairs), pairs, entries)


def as_decoded(streams: list[Stream]) -> list[dict[str, Any]]:
    """What the reader should give back for `streams`."""
    return [
        {
            "labels": s.key,
            "entries": [
                {"ns": ns, "line": line if isinstance(line, str) else line.decode(), "metadata": list(meta)}
                for ns, line, meta, _ in s.entries
            ],
        }
        for s in streams
    ]


class TestVarint:
    @pytest.mark.parametrize(("value", "expected"), [
        pytest.param(0, b"\x00", id="0"),
        pytest.param(1, b"\x01", id="1"),
        pytest.param(127, b"\x7f", id="127"),
        pytest.param(128, b"\x80\x01", id="128"),
        pytest.param(300, b"\xac\x02", id="300"),
        pytest.param(16383, b"\xff\x7f", id="16383-last-in-table"),
        pytest.param(16384, b"\x80\x80\x01", id="16384-first-computed"),
        pytest.param(150, b"\x96\x01", id="150-the-protobuf-docs-example"),
        pytest.param(2**63 - 1, b"\xff" * 8 + b"\x7f", id="int64-max"),
    ])
    def test_known_encodings(self, value: int, expected: bytes) -> None:
        assert varint(value) == expected

    @given(st.integers(0, 2**63 - 1))
    def test_reads_back(self, value: int) -> None:
        assert read_varint(varint(value), 0) == (value, len(varint(value)))


class TestProtobuf:
    def test_request_decodes_back(self) -> None:
        streams = [
            stream({"job": "api", "level": "error"}, [
                (NS, "first line", (), 0),
                (NS + 1_000_000_000, "naïve ünïcode ✓", (("trace_id", "abc123"), ("request_id", "r-1")), 1),
            ]),
            stream({"job": 'quote"and\\slash', "ns": "new\nline"}, [
                (1_000_000_000, "", (), 2),  # a whole second: nanos field left out; an empty line
                (NS, b"already bytes", (("user", ""),), 3),
            ]),
        ]
        assert decode_request(ProtobufEncoder().request(streams)) == as_decoded(streams)

    def test_labels_field_is_the_label_string(self) -> None:
        s = stream({"job": 'say "hi"', "app": "a\\b"}, [(NS, "x", (), 0)])
        decoded = decode_request(ProtobufEncoder().request([s]))
        assert parse_labels(decoded[0]["labels"]) == {"app": "a\\b", "job": 'say "hi"'}

    def test_long_lines_and_many_entries(self) -> None:
        big = "x" * 70_000  # a length past the varint table
        entries: list[Entry] = [(NS + i, f"line {i}", (("i", str(i)),), i) for i in range(2000)]
        entries.append((NS + 5000, big, (), 2000))
        streams = [stream({"job": "bulk"}, entries)]
        assert decode_request(ProtobufEncoder().request(streams)) == as_decoded(streams)

    def test_caches_do_not_leak_between_requests(self) -> None:
        encoder = ProtobufEncoder()
        a = [stream({"job": "a"}, [(NS, "one", (("k", "v"),), 0)])]
        b = [stream({"job": "b"}, [(NS + 7, "two", (("k", "w"),), 0)])]
        encoder.request(a)
        assert decode_request(encoder.request(b)) == as_decoded(b)
        assert decode_request(encoder.request(a)) == as_decoded(a)

    def test_body_is_snappy_block_format(self) -> None:
        streams = [stream({"job": "a"}, [(NS, "hello " * 100, (), 0)])]
        body = ProtobufEncoder().encode(streams)
        # The framed format starts with its stream identifier chunk; Loki reads the block format only.
        assert not body.startswith(b"\xff\x06\x00\x00sNaPpY")
        assert len(body) < 200  # compressed
        assert decode_body(body) == as_decoded(streams)
        with pytest.raises(cramjam.DecompressionError):
            cramjam.snappy.decompress(body)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(
        st.tuples(
            st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), st.text(min_size=1, max_size=20),
                            min_size=1, max_size=4),
            st.lists(st.tuples(st.integers(0, 2**62), st.text(max_size=200),
                               st.lists(st.tuples(st.from_regex(r"[a-z_]{1,6}", fullmatch=True), st.text(max_size=30)),
                                        max_size=3)),
                     min_size=1, max_size=20),
        ),
        min_size=1, max_size=5,
    ))
    def test_round_trip_property(self, raw: list[tuple[dict[str, str], list[tuple[int, str, list[tuple[str, str]]]]]]
                                 ) -> None:
        def clean(text: str) -> str:  # lone surrogates are not text: events never carry them
            return text.encode("utf-8", "replace").decode()

        streams = [
            stream({k: clean(v) for k, v in labels.items()},
                   [(ns, clean(line), tuple((n, clean(v)) for n, v in meta), i)
                    for i, (ns, line, meta) in enumerate(entries)])
            for labels, entries in raw
        ]
        assert decode_request(ProtobufEncoder().request(streams)) == as_decoded(streams)


class TestJson:
    def test_shape(self) -> None:
        streams = [
            stream({"job": "api"}, [(NS, "plain", (), 0), (NS + 1, b"bytes line", (("trace_id", "t1"),), 1)]),
            stream({"job": "web", "env": "prod"}, [(5, "x", (), 2)]),
        ]
        assert orjson.loads(encode_json(streams)) == {"streams": [
            {"stream": {"job": "api"},
             "values": [[str(NS), "plain"], [str(NS + 1), "bytes line", {"trace_id": "t1"}]]},
            {"stream": {"env": "prod", "job": "web"}, "values": [["5", "x"]]},
        ]}

    def test_gzip(self) -> None:
        body = encode_json([stream({"job": "api"}, [(NS, "line " * 50, (), 0)])])
        packed = gzip(body)
        assert packed[:2] == b"\x1f\x8b" and len(packed) < len(body)
        assert stdlib_gzip.decompress(packed) == body
