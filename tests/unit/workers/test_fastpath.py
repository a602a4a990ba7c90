"""The block fast path (pipeline/workers/fastpath.py) gives exactly what framing + parsing give."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.dispatch import EventParser
from parsers.formats.access import _ACCESS_LINE_PLAIN, ACCESS_LINE, ACCESS_LINE_IN_PLAIN_BLOCK
from pipeline.sources.framing import PlainFramer, Stamp
from pipeline.sources.lines import LineSplitter
from pipeline.workers.fastpath import access_block

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

    def slow(text: str, offset: int) -> dict[str, object]:
        event = stamp.event(text, offset, TS, None)
        parser.parse_batch([event])
        return event

    events = access_block(block, base, stamp, TS, fmt, slow)
    return None if events is None else [orjson.dumps(e) for e in events]


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
