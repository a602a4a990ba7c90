"""The block fast path (pipeline/workers/fastpath.py) gives exactly what framing + parsing give."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.dispatch import EventParser
from parsers.formats.access import _ACCESS_LINE_PLAIN, ACCESS_LINE, ACCESS_LINE_IN_PLAIN_BLOCK
from pipeline.sources.framing import PlainFramer, Stamp
from pipeline.sources.lines import LineSplitter
from pipeline.workers.fastpath import access_block, access_block_json
from pipeline.workers.worker import encode_event

TS = "2026-01-01T00:00:00.000Z"
LINES = [
    '1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET /a?x=1 HTTP/1.1" 200 12 "-" "curl/8" 0.123',
    '1.2.3.4 - bob [10/Oct/2024:13:55:36 +0200] "POST /b HTTP/2.0" 500 - "https://r/" "UA \\"quoted\\"" '
    "1.5 0.2 10.0.0.1:80",
    '203.0.113.7, 10.0.0.1 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 404 0 "-" "x"',
    'example.com 1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "x" rt=0.1 us="200"',
    '- - - [bad date] "\\x16\\x03" 400 0 "-" "-"',
    "not an access line at all",
    "",
    '::1 - - [10/Oct/2024:13:55:36 +0000] "" 408 0 "-" "-"',
    '1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET /x HTTP/1.1" 200 12 "-" "curl/8" "198.51.100.9"',
]


def slow_path(block: bytes, base: int, stamp: Stamp, parser: EventParser) -> list[bytes]:
    lines = LineSplitter(len(block) + 1, base).feed(block)
    events, _ = PlainFramer(stamp).feed(lines, 0.0, TS, False)
    parser.parse_batch(events)
    return [orjson.dumps(e) for e in events]


def fast_path(block: bytes, base: int, stamp: Stamp, parser: EventParser) -> list[bytes] | None:
    fmt = parser.access_only(stamp.log_type)
    assert fmt is not None
    events = access_block(block, base, stamp, TS, fmt, slow_line(stamp, parser))
    return None if events is None else [orjson.dumps(e) for e in events]


def slow_line(stamp: Stamp, parser: EventParser):  # type: ignore[no-untyped-def]
    def slow(text: str, offset: int) -> dict[str, object]:
        event = stamp.event(text, offset, TS, None)
        parser.parse_batch([event])
        return event

    return slow


@given(
    st.lists(
        st.one_of(
            st.sampled_from(LINES),
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from([("access", "access"), ("access", "auto"), (None, "access"), ("nginx", "access")]),
)
@settings(max_examples=300, deadline=None)
def test_the_block_scan_gives_what_framing_and_parsing_give(
    lines: list[str], base: int, types: tuple[str | None, str]
) -> None:
    declared, parse_type = types
    block = "".join(line + "\n" for line in lines).encode()
    stamp = Stamp("web-1", "2049:77:abc", "/var/log/nginx/access.log", declared)
    parser = EventParser(parse_type)
    if parser.access_only(declared) is None:
        return  # (auto without a declared access type: the fast path is not offered)
    assert fast_path(block, base, stamp, parser) == slow_path(block, base, stamp, parser)


def test_not_offered_when_the_parser_does_more_than_access() -> None:
    assert EventParser("access", user_agent=True).access_only("access") is None
    assert EventParser("access", ["%{WORD:w}"]).access_only("access") is None
    assert EventParser("auto").access_only("application") is None
    assert EventParser("auto").access_only("access") is not None


def test_a_block_with_carriage_returns_or_non_ascii_takes_the_general_path() -> None:
    stamp = Stamp("h", "k", "/p", "access")
    parser = EventParser("access")
    assert fast_path(b"a\r\nb\r\n", 0, stamp, parser) is None
    assert fast_path("caf\u00e9\n".encode(), 0, stamp, parser) is None


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="\\"), max_size=200))
@settings(max_examples=500, deadline=None)
def test_without_backslashes_the_plain_regexes_match_as_the_full_one(line: str) -> None:
    for candidate in (line, LINES[0].replace("\\", "") + line):
        full = ACCESS_LINE.match(candidate)
        plain = _ACCESS_LINE_PLAIN.match(candidate)
        assert (full and full.groups()) == (plain and plain.groups())
        in_block = ACCESS_LINE_IN_PLAIN_BLOCK.match(candidate + "\nnext line\n")
        assert (full and full.groups()) == (in_block and in_block.groups())


class TestFeedBlock:
    def test_complete_lines_come_as_one_block_with_their_offset(self) -> None:
        splitter = LineSplitter(1024, 100)
        assert splitter.feed_block(b"ab\ncd\nef") == (b"ab\ncd\n", 100)
        assert splitter.feed_block(b"gh") == (b"", 106)  # no newline yet: held
        assert splitter.feed_block(b"\nij\n") == (b"efgh\nij\n", 106)
        assert splitter.offset == 114 and splitter.pending_bytes == 0

    def test_a_line_that_may_be_cut_falls_back_to_lines(self) -> None:
        splitter = LineSplitter(8, 0)
        out = splitter.feed_block(b"0123456789abc\nok\n")
        assert out == [(b"01234567", 0, 14, True), (b"ok", 14, 17, False)]
        assert splitter.feed_block(b"x\n") == (b"x\n", 17)


class TestWrittenFromMatches:
    """`access_block_json`: the JSON lines are byte for byte those of encoding `access_block`'s events."""

    CLIENTS = [
        "1.2.3.4", "::1", "fe80::1", "cafe", "-", "--", "10.0.0.1, 1.2.3.4", "1.2.3.4:80", "[::1]:8", "h-1", '"q"',
    ]  # fmt: skip
    TIMES = ["10/Oct/2024:13:55:36 +0000", "01/Jan/2024:00:00:00 -0530", "bad date", "10/Oct/2024:13:55:36"]
    REQUESTS = [
        "GET / HTTP/1.1", "GET /a?x=1&y HTTP/1.1", "GET /a? HTTP/1.0", "POST /b HTTP/2.0", "GET /x", "-", "",
        "BREW ?q=1 HTTP/1.1", "GET  HTTP/1.1", "G3T /x HTTP/", "\\x16\\x03",
    ]  # fmt: skip
    STATUSES = ["200", "099", "-", "404", "500", "2000"]
    SIZES = ["0", "12", "007", "-", "123456789012345678", "1234567890123456789", "99999999999999999999"]
    QUOTED = [' "https://r/" "curl/8"', ' "" ""', ' "-" "-"', ' "-" "a b c"', ' "r" "-"', ""]
    TAILS = [
        " 0.120", "", " 0.123", " 1.000", " 0.000", " 12.5", " 1", " -", " 123456.999", " 1234567.1", " 0.1234",
        " 00.5", " 1.5 0.2", " 1.5 0.2 10.0.0.1:80", " rt=0.1 us=200", "  ", " 1.500  ", ' "198.51.100.9"',
    ]  # fmt: skip

    @staticmethod
    def both(block: bytes, base: int, stamp: Stamp, parser: EventParser) -> tuple[object, bytes | None]:
        fmt = parser.access_only(stamp.log_type)
        assert fmt is not None
        slow = slow_line(stamp, parser)
        built: list[dict[str, object]] = []  # the lines that went the dict way

        def finish(event: dict[str, object]) -> bytes:
            built.append(event)
            return encode_event(event)

        written = access_block_json(block, base, stamp, TS, fmt, slow, finish)
        events = access_block(block, base, stamp, TS, fmt, slow)
        if written is None:
            return None, None
        assert events is not None
        data, n = written
        assert n == len(events)
        # Only the events built as dicts carry tags: they are all the tags there are.
        tags = Counter(t for e in events for t in e.get("tags", []))
        assert Counter(t for e in built for t in e.get("tags", [])) == tags
        return data, b"".join(encode_event(e) for e in events)

    @given(
        st.lists(
            st.one_of(
                # Each part is the first (common) choice half the time: many lines have the common shape.
                st.tuples(*[
                    st.one_of(st.just(choices[0]), st.sampled_from(choices))
                    for choices in (CLIENTS, ["- -", "- bob", "x -"], TIMES, REQUESTS, STATUSES, SIZES, QUOTED, TAILS)
                ]).map(lambda p: f'{p[0]} {p[1]} [{p[2]}] "{p[3]}" {p[4]} {p[5]}{p[6]}{p[7]}'),
                st.sampled_from(LINES),
                st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
            ),
            min_size=1,
            max_size=30,
        ),
        st.integers(min_value=0, max_value=10**9),
        st.sampled_from([("access", "access"), (None, "access"), ("nginx", "access")]),
        st.sampled_from([("web-1", "/var/log/nginx/access.log"), ("h\u00f4te", '/logs/"quoted" \u00e9.log')]),
        st.booleans(),
    )  # fmt: skip
    @settings(max_examples=400, deadline=None)
    def test_the_same_bytes_as_the_events_encoded(
        self, lines: list[str], base: int, types: tuple[str | None, str], where: tuple[str, str], last_nl: bool
    ) -> None:
        declared, parse_type = types
        block = "\n".join(lines).encode() + (b"\n" if last_nl else b"")
        if not block:
            return
        stamp = Stamp(where[0], "2049:77:abc", where[1], declared)
        written, encoded = self.both(block, base, stamp, EventParser(parse_type))
        assert written == encoded

    @pytest.mark.parametrize(
        "block",
        [
            '1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "curl/8\nrest of it" 0.5\n',
            '1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-\n" "curl/8" 0.5\n',
            '1.2.3.4 - - [10/Oct/2024:13:55:36\n+0000] "GET / HTTP/1.1" 200 1 "-" "curl/8" 0.5\n',
        ],
    )
    def test_a_value_left_open_does_not_take_the_next_line(self, block: str) -> None:
        # Each is two lines that the common regex would take as one.
        stamp = Stamp("h", "k", "/p", "access")
        written, encoded = self.both(block.encode(), 0, stamp, EventParser("access"))
        assert written == encoded and written is not None and len(written.splitlines()) == 2

    def test_request_times_print_as_their_floats(self) -> None:
        # Every time up to 3 decimals below 100 s, and some longer ones: each line is written from
        # its match, and the number is what encoding the float gives.
        times = [f"{i}.{f:0{d}d}" for i in range(100) for d in (1, 2, 3) for f in range(10**d)]
        times += ["123456.999", "100000.100", "99999.5", "10.010"]
        line = '1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-" {}\n'
        block = "".join(line.format(t) for t in times).encode()
        stamp = Stamp("h", "k", "/p", "access")
        fmt = EventParser("access").access_only("access")
        assert fmt is not None
        built: list[dict[str, object]] = []
        written = access_block_json(block, 0, stamp, TS, fmt, slow_line(stamp, EventParser("access")), built.append)  # type: ignore[arg-type]
        assert written is not None
        data, n = written
        assert n == len(times) and built == []  # every line written from its match
        written_times = [orjson.loads(row)["request_time"] for row in data.splitlines()]
        assert [orjson.dumps(t) for t in written_times] == [orjson.dumps(float(t)) for t in times]
        assert data == b"".join(encode_event(e) for e in access_block(block, 0, stamp, TS, fmt, lambda t, o: {}) or [])

    @pytest.mark.parametrize("base", [0, 2**48 - 200, 2**48 - 100, 2**48])
    def test_event_ids_near_256_tib(self, base: int) -> None:
        # Ids written from matches have 12 hex digits of offset; past 2**48 the general path writes more.
        line = b'1.2.3.4 - - [10/Oct/2024:13:55:36 +0000] "GET / HTTP/1.1" 200 1 "-" "-" 0.5\n'
        stamp = Stamp("h", "k", "/p", "access")
        written, encoded = self.both(line * 2, base, stamp, EventParser("access"))
        if base + 2 * len(line) <= 2**48:
            assert written == encoded and written is not None
        else:  # the block goes the dict way
            assert written is None

    @pytest.mark.parametrize("block", [b"a\\b\n", b"tab\there\n", b"bell\x07\n", b"a\r\n", "caf\u00e9\n".encode()])
    def test_not_written_from_matches_when_a_value_would_need_escapes(self, block: bytes) -> None:
        stamp = Stamp("h", "k", "/p", "access")
        fmt = EventParser("access").access_only("access")
        assert fmt is not None
        assert access_block_json(block, 0, stamp, TS, fmt, lambda t, o: {}, encode_event) is None
