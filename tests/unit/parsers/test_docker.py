"""Tests for parsers/formats/docker.py: json-file decoding, partials, time, stream demux."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.formats.container import ContainerEntry, ContainerRecord, ContainerStreamDemux, to_utc_millis
from parsers.formats.cri import decoder_for
from parsers.formats.docker import (
    TAG_DOCKER_PARSE_FAILURE,
    TAG_INVALID_UTF8,
    TAG_TRUNCATED,
    DockerDecoder,
    decode_docker,
)
from parsers.multiline import Line, MultilineJoiner, joiner_from_preset

DATA = Path(__file__).resolve().parents[2] / "data" / "containers"
LONG = "".join(chr(ord("a") + i % 26) for i in range(40000))


def fixture_lines(name: str) -> list[Line]:
    data = (DATA / name).read_bytes()
    out = []
    pos = 0
    for raw in data.splitlines(keepends=True):
        out.append(Line(raw.rstrip(b"\n").decode("utf-8", "surrogateescape"), pos, pos + len(raw)))
        pos += len(raw)
    return out


def make_lines(texts: Sequence[str], start: int = 0) -> list[Line]:
    out = []
    pos = start
    for text in texts:
        end = pos + len(text.encode("utf-8", "surrogateescape")) + 1
        out.append(Line(text, pos, end))
        pos = end
    return out


def entry(log: str, stream: str = "stdout", time: str = "2024-01-02T03:04:05.123456789Z") -> str:
    """A json-file line; lone surrogates in ``log`` (bytes a reader decoded with
    surrogateescape) are kept raw, as they would appear in the line's text."""
    placeholder = "\x00SURROGATE\x00"
    surrogates = [c for c in log if "\ud800" <= c <= "\udfff"]
    for c in surrogates:
        log = log.replace(c, placeholder, 1)
    text = orjson.dumps({"log": log, "stream": stream, "time": time}).decode()
    for c in surrogates:
        text = text.replace("\\u0000SURROGATE\\u0000", c, 1)
    return text


class TestToUtcMillis:
    @pytest.mark.parametrize(
        ("ts", "expected"),
        [
            pytest.param("2024-01-02T03:04:05.123456789Z", "2024-01-02T03:04:05.123Z", id="nano"),
            pytest.param("2024-01-02T03:04:05.999999999Z", "2024-01-02T03:04:05.999Z", id="truncates"),
            pytest.param("2024-01-02T03:04:05.1234Z", "2024-01-02T03:04:05.123Z", id="micro-ish"),
            pytest.param("2024-01-02T03:04:05.123Z", "2024-01-02T03:04:05.123Z", id="milli"),
            pytest.param("2024-01-02T03:04:05.12Z", "2024-01-02T03:04:05.120Z", id="two-digits"),
            pytest.param("2024-01-02T03:04:05.2Z", "2024-01-02T03:04:05.200Z", id="go-trimmed-zeros"),
            pytest.param("2024-01-02T03:04:05Z", "2024-01-02T03:04:05.000Z", id="no-fraction"),
            pytest.param("2024-01-02t03:04:05.5z", "2024-01-02T03:04:05.500Z", id="lowercase"),
            pytest.param("2024-01-02 03:04:05,5Z", "2024-01-02T03:04:05.500Z", id="space-comma"),
            pytest.param("2024-01-02T05:04:05.123456789+02:00", "2024-01-02T03:04:05.123Z", id="plus-offset"),
            pytest.param("2024-01-01T22:04:05.987654321-05:00", "2024-01-02T03:04:05.987Z", id="minus-offset"),
            pytest.param("2024-01-01T00:30:00+05:30", "2023-12-31T19:00:00.000Z", id="year-boundary"),
            pytest.param("2024-01-02T03:04:05.1+0200", "2024-01-02T01:04:05.100Z", id="offset-no-colon"),
            pytest.param("2024-01-02T03:04:05-00:00", "2024-01-02T03:04:05.000Z", id="minus-zero"),
            pytest.param("2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z", id="leap-day"),
        ],
    )
    def test_valid(self, ts: str, expected: str) -> None:
        assert to_utc_millis(ts) == expected
        assert to_utc_millis(ts) == expected  # second call takes the cached fast path

    @pytest.mark.parametrize(
        "ts",
        [
            pytest.param("", id="empty"),
            pytest.param("garbage", id="garbage"),
            pytest.param("2023-02-29T12:00:00Z", id="not-leap"),
            pytest.param("2024-13-02T03:04:05Z", id="month-13"),
            pytest.param("2024-01-02T24:00:00Z", id="hour-24"),
            pytest.param("2024-01-02T03:04:05.Z", id="empty-fraction"),
            pytest.param("2024-01-02T03:04:05.12a4Z", id="bad-fraction"),
            pytest.param("2024-01-02T03:04:05.1\u0663Z", id="non-ascii-digit"),
            pytest.param("2024-01-02T03:04:05", id="no-zone"),
            pytest.param("2024-01-02T03:04:05+25:00", id="offset-hours"),
            pytest.param("0001-01-01T00:00:00+01:00", id="underflow"),
            pytest.param("2024-01-02T03:04:05.123Z trailing", id="trailing"),
        ],
    )
    def test_invalid(self, ts: str) -> None:
        # Warm the cache with a valid time in the same second: the fast path must still reject.
        to_utc_millis("2024-01-02T03:04:05.000Z")
        assert to_utc_millis(ts) is None


class TestDecodeDocker:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            pytest.param(
                entry("hello\n"), ContainerEntry("hello", "stdout", "2024-01-02T03:04:05.123Z", False), id="line"
            ),
            pytest.param(
                entry("oops\n", "stderr"),
                ContainerEntry("oops", "stderr", "2024-01-02T03:04:05.123Z", False),
                id="stderr",
            ),
            pytest.param(
                entry("part"), ContainerEntry("part", "stdout", "2024-01-02T03:04:05.123Z", True), id="partial"
            ),
            pytest.param(
                entry("hello\n").encode(),
                ContainerEntry("hello", "stdout", "2024-01-02T03:04:05.123Z", False),
                id="bytes",
            ),
            pytest.param(entry("\n"), ContainerEntry("", "stdout", "2024-01-02T03:04:05.123Z", False), id="empty-line"),
            pytest.param(entry("a\r\n"), ContainerEntry("a\r", "stdout", "2024-01-02T03:04:05.123Z", False), id="crlf"),
            pytest.param(
                '{"log":"h\\u00e9 \\u2713\\n","stream":"stdout","time":"2024-01-02T03:04:05Z"}',
                ContainerEntry("hé ✓", "stdout", "2024-01-02T03:04:05.000Z", False),
                id="unicode-escapes",
            ),
            pytest.param('{"log":"x\\n"}', ContainerEntry("x", "", None, False), id="no-stream-no-time"),
            pytest.param(
                '{"log":"x\\n","stream":1,"time":"yesterday"}', ContainerEntry("x", "", None, False), id="bad-fields"
            ),
            pytest.param(
                '{"log":"x\\n","stream":"stdout","attrs":{"tag":"t"},"time":"2024-01-02T03:04:05.5Z"}',
                ContainerEntry("x", "stdout", "2024-01-02T03:04:05.500Z", False),
                id="attrs",
            ),
        ],
    )
    def test_valid(self, raw: str | bytes, expected: ContainerEntry) -> None:
        assert decode_docker(raw) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param('{"log":"truncated', id="truncated"),
            pytest.param("plain text", id="not-json"),
            pytest.param("", id="empty"),
            pytest.param("[1, 2]", id="list"),
            pytest.param('"log"', id="string"),
            pytest.param("42", id="number"),
            pytest.param("null", id="null"),
            pytest.param('{"stream":"stdout"}', id="no-log"),
            pytest.param('{"log":42}', id="log-not-string"),
            pytest.param('{"log":["a"]}', id="log-list"),
            pytest.param(b'{"log":"\xff\\n"}', id="invalid-utf8-bytes"),
        ],
    )
    def test_invalid_is_none(self, raw: str | bytes) -> None:
        assert decode_docker(raw) is None


def decode_all(decoder: DockerDecoder, lines: Sequence[Line]) -> list[ContainerRecord]:
    return decoder.feed(lines, 0.0) + decoder.flush()


class TestDockerDecoder:
    def test_fixture(self) -> None:
        lines = fixture_lines("docker-json.log")
        records = decode_all(DockerDecoder(), lines)
        messages = [(r.stream, r.text[:42]) for r in records]
        assert messages[:4] == [
            ("stdout", "2024-01-02 03:04:05,100 INFO app: starting"),
            ("stderr", "warning: deprecated flag"),
            ("stderr", "interleaved stderr line"),
            ("stdout", LONG[:42]),
        ]
        long_rec = records[3]
        assert long_rec.text == LONG
        assert (long_rec.start, long_rec.end) == (lines[2].start, lines[5].end)
        assert long_rec.time == "2024-01-02T03:04:05.300Z"
        assert long_rec.tags == ()
        assert records[1].time == "2024-01-02T03:04:05.200Z"
        failures = [r for r in records if r.tags]
        assert [r.text for r in failures] == [lines[14].text, lines[15].text]
        assert all(r.tags == (TAG_DOCKER_PARSE_FAILURE,) and r.stream == "" and r.time is None for r in failures)
        assert [r.text for r in records[-3:]] == ["héllo ✓ unicode", "", "2024-01-02 03:04:07,000 INFO app: done"]
        assert records[-1].time == "2024-01-02T03:04:07.999Z"
        assert len(records) == len(lines) - 2  # three fragments became one record

    def test_partial_is_held_and_blocks_the_checkpoint(self) -> None:
        lines = make_lines([entry("a" * 10), entry("other\n", "stderr"), entry("b" * 5)], start=50)
        decoder = DockerDecoder()
        out = decoder.feed(lines, 0.0)
        assert [r.text for r in out] == ["other"]
        assert decoder.pending
        assert decoder.pending_start_offset == 50
        assert decoder.resume_offset == 50
        more = make_lines([entry("c\n")], start=lines[-1].end)
        (rec,) = decoder.feed(more, 1.0)
        assert rec.text == "a" * 10 + "b" * 5 + "c"
        assert (rec.start, rec.end) == (50, more[0].end)
        assert not decoder.pending
        assert decoder.resume_offset == more[0].end

    def test_partials_per_stream(self) -> None:
        lines = make_lines([entry("o1 "), entry("e1 ", "stderr"), entry("o2\n"), entry("e2\n", "stderr")])
        records = decode_all(DockerDecoder(), lines)
        assert [(r.stream, r.text, r.start, r.end) for r in records] == [
            ("stdout", "o1 o2", lines[0].start, lines[2].end),
            ("stderr", "e1 e2", lines[1].start, lines[3].end),
        ]

    def test_reassembly_cap(self) -> None:
        chunks = [LONG[i : i + 16384] for i in range(0, len(LONG), 16384)]
        texts = [entry(c) for c in chunks[:-1]] + [entry(chunks[-1] + "\n"), entry("next\n")]
        lines = make_lines(texts)
        rec, nxt = decode_all(DockerDecoder(max_bytes=20000), lines)
        assert rec.text == LONG[:20000]
        assert rec.tags == (TAG_TRUNCATED,)
        assert (rec.start, rec.end) == (0, lines[2].end)
        assert nxt.text == "next"
        assert nxt.tags == ()

    def test_reassembly_cap_multibyte(self) -> None:
        lines = make_lines([entry("éééé"), entry("é\n")])
        (rec,) = decode_all(DockerDecoder(max_bytes=5), lines)
        assert rec.text == "éé"
        assert TAG_TRUNCATED in rec.tags

    def test_flush_idle_with_injected_clock(self) -> None:
        decoder = DockerDecoder(timeout=2.0)
        decoder.feed(make_lines([entry("no newline at exit")]), now=10.0)
        assert decoder.idle_deadline == 12.0
        assert decoder.flush_idle(11.0) == []
        (rec,) = decoder.flush_idle(12.0)
        assert rec.text == "no newline at exit"
        assert not decoder.pending
        assert decoder.idle_deadline is None

    def test_flush_emits_partials_in_file_order(self) -> None:
        decoder = DockerDecoder()
        decoder.feed(make_lines([entry("err", "stderr"), entry("out")]), 0.0)
        assert [r.stream for r in decoder.flush()] == ["stderr", "stdout"]
        assert decoder.flush() == []

    def test_a_broken_line_ends_the_pending_partials_of_every_stream(self) -> None:
        lines = make_lines([entry("a"), entry("e", "stderr"), "{broken", entry("b\n"), entry("f\n", "stderr")])
        records = decode_all(DockerDecoder(), lines)
        assert [(r.text, r.stream, r.start, r.end, r.tags) for r in records] == [
            ("a", "stdout", lines[0].start, lines[0].end, ()),
            ("e", "stderr", lines[1].start, lines[1].end, ()),
            ("{broken", "", lines[2].start, lines[2].end, (TAG_DOCKER_PARSE_FAILURE,)),
            ("b", "stdout", lines[3].start, lines[3].end, ()),
            ("f", "stderr", lines[4].start, lines[4].end, ()),
        ]

    def test_a_broken_line_without_partials_changes_nothing_else(self) -> None:
        lines = make_lines([entry("a\n"), "not json", entry("b")])
        decoder = DockerDecoder()
        assert [r.text for r in decoder.feed(lines, 0.0)] == ["a", "not json"]
        assert decoder.pending_start_offset == lines[2].start

    def test_cri_lines_in_a_docker_file_are_decoded_as_cri(self) -> None:
        cri = "2024-01-02T03:04:05.5Z stderr F from containerd"
        lines = make_lines([entry("docker\n"), cri, entry("a"), "2024-01-02T03:04:06Z stdout F b", "{broken"])
        records = decode_all(decoder_for("docker"), lines)
        assert [(r.text, r.stream, r.time, r.tags) for r in records] == [
            ("docker", "stdout", "2024-01-02T03:04:05.123Z", ()),
            ("from containerd", "stderr", "2024-01-02T03:04:05.500Z", ()),
            # Fragments are reassembled per stream, whatever format each line is in.
            ("ab", "stdout", "2024-01-02T03:04:05.123Z", ()),
            ("{broken", "", None, (TAG_DOCKER_PARSE_FAILURE,)),
        ]

    def test_without_another_format_a_cri_line_is_a_failure(self) -> None:
        (rec,) = decode_all(DockerDecoder(), make_lines(["2024-01-02T03:04:05.5Z stderr F x"]))
        assert rec.tags == (TAG_DOCKER_PARSE_FAILURE,)

    def test_invalid_utf8_is_repaired_and_tagged(self) -> None:
        raw = entry("caf\udce9 ok\n")  # orjson rejects the lone surrogate left by surrogateescape
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(raw)
        (rec,) = decode_all(DockerDecoder(), make_lines([raw]))
        assert rec.text == "caf\ufffd ok"
        assert rec.tags == (TAG_INVALID_UTF8,)
        assert rec.stream == "stdout"

    def test_invalid_utf8_in_a_partial_tags_the_record(self) -> None:
        lines = make_lines([entry("a"), entry("\udcff"), entry("c\n")])
        (rec,) = decode_all(DockerDecoder(), lines)
        assert rec.text == "a\ufffdc"
        assert rec.tags == (TAG_INVALID_UTF8,)

    def test_single_line_agrees_with_decode_docker(self) -> None:
        for line in fixture_lines("docker-json.log"):
            e = decode_docker(line.text)
            if e is None or e.partial:
                continue
            (rec,) = DockerDecoder().feed([line], 0.0)
            assert (rec.text, rec.stream, rec.time) == (e.message, e.stream, e.time)


class TestContainerStreamDemux:
    def test_without_multiline_records_pass_through(self) -> None:
        lines = fixture_lines("docker-json.log")
        plain = decode_all(DockerDecoder(), lines)
        demux = ContainerStreamDemux(DockerDecoder())
        assert demux.feed(lines, 0.0) + demux.flush() == plain

    def test_python_traceback_on_stderr_is_joined(self) -> None:
        lines = fixture_lines("docker-json.log")
        demux = ContainerStreamDemux(DockerDecoder(), lambda stream: joiner_from_preset("python_traceback"))
        records = demux.feed(lines, 0.0) + demux.flush()
        stderr = [r for r in records if r.stream == "stderr"]
        assert [r.text.split("\n")[0] for r in stderr] == [
            "warning: deprecated flag",
            "interleaved stderr line",
            "2024-01-02 03:04:05,051 ERROR app: parse failed",
        ]
        tb = stderr[-1]
        assert tb.text.endswith("ValueError: invalid literal for int() with base 10: 'x'")
        assert tb.text.count("\n") == 7
        assert tb.time == "2024-01-02T03:04:05.400Z"  # the first line's time
        assert (tb.start, tb.end) == (lines[6].start, lines[13].end)
        stdout = [r.text for r in records if r.stream == "stdout"]
        assert len(stdout) == 4
        # The preset joins blank lines (they separate chained tracebacks): the empty log line
        # after "héllo" continues it.
        assert stdout[2] == "héllo ✓ unicode\n"
        assert sum(1 for r in records if r.tags == (TAG_DOCKER_PARSE_FAILURE,)) == 2

    def test_joiners_are_per_stream(self) -> None:
        made: list[str] = []

        def factory(stream: str) -> MultilineJoiner:
            made.append(stream)
            return MultilineJoiner(r"^\s")

        lines = make_lines(
            [entry("out head\n"), entry("err head\n", "stderr"), entry("  out cont\n"), entry("  err cont\n", "stderr")]
        )
        demux = ContainerStreamDemux(DockerDecoder(), factory)
        out = demux.feed(lines, 0.0)
        assert out == []
        assert demux.pending_start_offset == lines[0].start
        assert demux.resume_offset == lines[0].start
        records = demux.flush()
        assert sorted((r.stream, r.text) for r in records) == [
            ("stderr", "err head\n  err cont"),
            ("stdout", "out head\n  out cont"),
        ]
        assert made == ["stdout", "stderr"]
        assert not demux.pending
        assert demux.resume_offset == lines[-1].end

    def test_flush_idle_reaches_decoder_and_joiners(self) -> None:
        demux = ContainerStreamDemux(DockerDecoder(timeout=1.0), lambda s: MultilineJoiner(r"^\s", timeout=1.0))
        lines = make_lines([entry("head\n"), entry("  cont\n"), entry("dangling")])
        assert demux.feed(lines, now=0.0) == []
        assert demux.idle_deadline == 1.0
        assert demux.flush_idle(0.5) == []
        records = demux.flush_idle(1.0)
        assert [r.text for r in records] == ["head\n  cont", "dangling"]
        assert not demux.pending
        assert demux.idle_deadline is None

    def test_tags_of_continuation_lines_are_kept(self) -> None:
        demux = ContainerStreamDemux(DockerDecoder(), lambda s: MultilineJoiner(r"^\s"))
        lines = make_lines([entry("head\n"), entry("  bad \udcff\n"), entry("next\n")])
        records = demux.feed(lines, 0.0) + demux.flush()
        assert [(r.text, r.tags) for r in records] == [
            ("head\n  bad \ufffd", (TAG_INVALID_UTF8,)),
            ("next", ()),
        ]

    def test_tags_do_not_leak_to_the_next_record(self) -> None:
        demux = ContainerStreamDemux(DockerDecoder(), lambda s: MultilineJoiner(r"^\s"))
        lines = make_lines([entry("bad \udcff\n"), entry("next\n"), entry("  cont\n"), entry("last\n")])
        records = demux.feed(lines, 0.0) + demux.flush()
        assert [(r.text, r.tags) for r in records] == [
            ("bad \ufffd", (TAG_INVALID_UTF8,)),
            ("next\n  cont", ()),
            ("last", ()),
        ]

    def test_joiner_truncation_tags_the_record(self) -> None:
        demux = ContainerStreamDemux(DockerDecoder(), lambda s: MultilineJoiner(r"^\s", max_lines=2))
        lines = make_lines([entry("head\n"), entry(" 1\n"), entry(" 2\n"), entry("next\n")])
        first, *_ = demux.feed(lines, 0.0)
        assert first.text == "head\n 1"
        assert first.tags == (TAG_TRUNCATED,)
        assert first.end == lines[2].end


# -- property: the checkpoint recipe never skips an unemitted line --------------------------

ENTRIES = st.lists(
    st.tuples(st.sampled_from(["stdout", "stderr", "garbage"]), st.booleans(), st.text("ab é", max_size=4)),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(items=ENTRIES, cuts=st.lists(st.integers(0, 40), max_size=5))
def test_resume_offset_never_passes_an_unemitted_line(items: list[tuple[str, bool, str]], cuts: list[int]) -> None:
    texts = []
    for stream, partial, msg in items:
        texts.append("not json " + msg if stream == "garbage" else entry(msg if partial else msg + "\n", stream))
    lines = make_lines(texts, start=3)
    # Model: which record (by index of its first line) each line belongs to.
    owner: list[int] = []
    open_by_stream: dict[str, int] = {}
    for i, (stream, partial, _) in enumerate(items):
        if stream == "garbage":
            owner.append(i)
            open_by_stream.clear()  # a line that is not an entry ends every pending partial
            continue
        head = open_by_stream.get(stream, i)
        owner.append(head)
        if partial:
            open_by_stream[stream] = head
        else:
            open_by_stream.pop(stream, None)

    decoder = DockerDecoder()
    demux = ContainerStreamDemux(decoder)
    emitted_starts: set[int] = set()
    bounds = sorted({0, len(lines), *(c % (len(lines) + 1) for c in cuts)})
    previous = lines[0].start if lines else 0
    for lo, hi in itertools.pairwise(bounds):
        for rec in demux.feed(lines[lo:hi], 0.0):
            emitted_starts.add(rec.start)
        resume = demux.resume_offset
        assert resume is not None
        assert resume >= previous  # receipts [previous, resume) are contiguous and never go back
        previous = resume
        for i, line in enumerate(lines):
            if line.end <= resume:
                assert lines[owner[i]].start in emitted_starts
    for rec in demux.flush():
        emitted_starts.add(rec.start)
    assert emitted_starts == {lines[h].start for h in set(owner)}
