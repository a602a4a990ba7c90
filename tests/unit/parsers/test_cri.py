"""Tests for parsers/formats/cri.py: CRI lines, P/F reassembly, offsets, format detection."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.formats.container import ContainerEntry, ContainerRecord, ContainerStreamDemux
from parsers.formats.cri import (
    TAG_CRI_PARSE_FAILURE,
    TAG_TRUNCATED,
    CriDecoder,
    decoder_for,
    detect_container_format,
    parse_cri,
)
from parsers.multiline import Line, joiner_from_preset

DATA = Path(__file__).resolve().parents[2] / "data" / "containers"
LONG = "".join(chr(ord("a") + i % 26) for i in range(40000))
TS = "2024-01-02T03:04:05.123456789Z"
MS = "2024-01-02T03:04:05.123Z"


def fixture_lines(name: str) -> list[Line]:
    data = (DATA / name).read_bytes()
    out = []
    pos = 0
    for raw in data.splitlines(keepends=True):
        out.append(Line(raw.rstrip(b"\n").decode(), pos, pos + len(raw)))
        pos += len(raw)
    return out


def make_lines(texts: Sequence[str], start: int = 0) -> list[Line]:
    out = []
    pos = start
    for text in texts:
        end = pos + len(text.encode("utf-8", "surrogatepass")) + 1
        out.append(Line(text, pos, end))
        pos = end
    return out


def decode_all(decoder: CriDecoder, lines: Sequence[Line]) -> list[ContainerRecord]:
    return decoder.feed(lines, 0.0) + decoder.flush()


class TestParseCri:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(f"{TS} stdout F hello", ContainerEntry("hello", "stdout", MS, False), id="full"),
            pytest.param(f"{TS} stderr F oops", ContainerEntry("oops", "stderr", MS, False), id="stderr"),
            pytest.param(f"{TS} stdout P part", ContainerEntry("part", "stdout", MS, True), id="partial"),
            pytest.param(f"{TS} stdout F ", ContainerEntry("", "stdout", MS, False), id="empty-message"),
            pytest.param(f"{TS} stdout F", ContainerEntry("", "stdout", MS, False), id="no-trailing-space"),
            pytest.param(
                f"{TS} stdout F  two  spaces ", ContainerEntry(" two  spaces ", "stdout", MS, False), id="spaces-kept"
            ),
            pytest.param(f"{TS} stdout F:x:y msg", ContainerEntry("msg", "stdout", MS, False), id="future-flags"),
            pytest.param(f"{TS} stdout P:x msg", ContainerEntry("msg", "stdout", MS, True), id="partial-flags"),
            pytest.param(
                "2024-01-02T05:04:05.123456789+02:00 stdout F crio",
                ContainerEntry("crio", "stdout", MS, False),
                id="crio-offset",
            ),
            pytest.param(f"{TS} stdout F a\tb\r", ContainerEntry("a\tb\r", "stdout", MS, False), id="control-chars"),
            pytest.param(f"{TS} stdout P  x", ContainerEntry(" x", "stdout", MS, True), id="partial-spaces-kept"),
        ],
    )
    def test_valid(self, line: str, expected: ContainerEntry) -> None:
        assert parse_cri(line) == expected

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("", id="empty"),
            pytest.param("hello world", id="two-fields"),
            pytest.param("this line is not cri", id="words"),
            pytest.param(f"{TS} stdlog F x", id="bad-stream"),
            pytest.param(f"{TS}", id="time-only"),
            pytest.param("2024-13-02T03:04:05Z stdout F x", id="bad-month"),
            pytest.param("yesterday stdout F x", id="bad-time"),
            pytest.param(f"{TS}  stdout F x", id="double-space"),
        ],
    )
    def test_malformed_is_none(self, line: str) -> None:
        assert parse_cri(line) is None

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            pytest.param(f"{TS} stdout hello world", "hello world", id="words"),
            pytest.param(f"{TS} stdout X x", "X x", id="not-a-tag"),
            pytest.param(f"{TS} stdout FP x", "FP x", id="tag-like-word"),
            pytest.param(f"{TS} stdout  x", " x", id="leading-space"),
            pytest.param(f"{TS} stdout single", "single", id="one-word"),
            pytest.param(f"{TS} stdout ", "", id="empty"),
            pytest.param(f"{TS} stdout", "", id="empty-no-space"),
            pytest.param(f"{TS} stdout {{\"json\": 1}}", '{"json": 1}', id="json-message"),
        ],
    )
    def test_no_tag_is_a_full_line(self, line: str, message: str) -> None:
        """Older runtimes wrote no P/F tag: everything after the stream and one space is the message."""
        assert parse_cri(line) == ContainerEntry(message, "stdout", MS, False)

    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(f"{TS} stdout F rest", ContainerEntry("rest", "stdout", MS, False), id="F"),
            pytest.param(f"{TS} stdout P rest", ContainerEntry("rest", "stdout", MS, True), id="P"),
            pytest.param(f"{TS} stdout F:x rest", ContainerEntry("rest", "stdout", MS, False), id="F-flags"),
        ],
    )
    def test_ambiguous_tagless_lines_are_read_as_tagged(self, line: str, expected: ContainerEntry) -> None:
        """A tagless message starting with "P " / "F " cannot be told apart: the tag wins (documented)."""
        assert parse_cri(line) == expected


class TestCriDecoder:
    def test_containerd_fixture(self) -> None:
        lines = fixture_lines("cri-containerd.log")
        records = decode_all(CriDecoder(), lines)
        assert [(r.stream, r.text[:42]) for r in records[:4]] == [
            ("stdout", "2024-01-02 03:04:05,100 INFO app: starting"),
            ("stderr", "warning: deprecated flag"),
            ("stderr", "interleaved stderr line"),
            ("stdout", LONG[:42]),
        ]
        long_rec = records[3]
        assert long_rec.text == LONG
        assert (long_rec.start, long_rec.end) == (lines[2].start, lines[5].end)
        assert long_rec.time == "2024-01-02T03:04:05.300Z"
        failures = [r for r in records if r.tags]
        assert [r.text for r in failures] == [ln.text for ln in (lines[14], lines[15], lines[17])]
        # "<time> stdout X bad tag": no valid tag, so an older runtime's tagless line.
        assert [(r.text, r.stream) for r in records if r.start == lines[16].start] == [("X bad tag", "stdout")]
        assert all(r.tags == (TAG_CRI_PARSE_FAILURE,) and r.stream == "" and r.time is None for r in failures)
        assert [r.text for r in records[-5:]] == [
            "héllo ✓ unicode",
            "",
            "",
            "future flags",
            "2024-01-02 03:04:07,000 INFO app: done  with  spaces ",
        ]
        assert records[-1].time == "2024-01-02T03:04:07.999Z"
        assert len(records) == len(lines) - 2


class TestTaglessAndMixed:
    def test_tagless_lines_through_the_decoder(self) -> None:
        lines = make_lines([f"{TS} stdout first", f"{TS} stderr  indented", f"{TS} stdout F tagged", f"{TS} stdout"])
        records = decode_all(CriDecoder(), lines)
        assert [(r.text, r.stream, r.tags) for r in records] == [
            ("first", "stdout", ()), (" indented", "stderr", ()), ("tagged", "stdout", ()), ("", "stdout", ())]
        assert not any(r.tags for r in records)

    def test_spaces_after_the_tag_belong_to_the_message(self) -> None:
        lines = make_lines([f"{TS} stdout P  two", f"{TS} stdout F   three "])
        (rec,) = decode_all(CriDecoder(), lines)
        assert rec.text == " two  three "  # one space separates; the others are the message's

    def test_docker_lines_in_a_cri_file_are_decoded_as_docker(self) -> None:
        docker = '{"log":"from docker\\n","stream":"stderr","time":"2024-01-02T03:04:06.25Z"}'
        lines = make_lines([f"{TS} stdout F cri", docker, '{"log":"half","stream":"stdout"}', f"{TS} stdout F end",
                            "garbage"])
        records = decode_all(decoder_for("cri"), lines)
        assert [(r.text, r.stream, r.time, r.tags) for r in records] == [
            ("cri", "stdout", MS, ()),
            ("from docker", "stderr", "2024-01-02T03:04:06.250Z", ()),
            ("halfend", "stdout", None, ()),
            ("garbage", "", None, (TAG_CRI_PARSE_FAILURE,)),
        ]

    def test_without_another_format_a_docker_line_is_a_failure(self) -> None:
        (rec,) = decode_all(CriDecoder(), make_lines(['{"log":"x\\n","stream":"stdout"}']))
        assert rec.tags == (TAG_CRI_PARSE_FAILURE,)

    def test_crio_offsets_become_utc(self) -> None:
        records = decode_all(CriDecoder(), fixture_lines("cri-crio-offset.log"))
        assert [(r.stream, r.text, r.time) for r in records] == [
            ("stdout", "local time east", "2024-01-02T03:04:05.123Z"),
            ("stderr", "part one, part two", "2024-01-02T03:04:05.987Z"),
            ("stdout", "half hour offset, short fraction", "2024-01-02T00:00:00.500Z"),
        ]

    def test_single_line_agrees_with_parse_cri(self) -> None:
        for line in fixture_lines("cri-containerd.log"):
            e = parse_cri(line.text)
            if e is None or e.partial:
                continue
            (rec,) = CriDecoder().feed([line], 0.0)
            assert (rec.text, rec.stream, rec.time) == (e.message, e.stream, e.time)

    def test_partial_held_until_full(self) -> None:
        decoder = CriDecoder()
        lines = make_lines([f"{TS} stdout P a", f"{TS} stderr F e", f"{TS} stdout P b"], start=10)
        assert [r.text for r in decoder.feed(lines, 0.0)] == ["e"]
        assert decoder.pending_start_offset == 10
        assert decoder.resume_offset == 10
        more = make_lines([f"{TS} stdout F c"], start=lines[-1].end)
        (rec,) = decoder.feed(more, 1.0)
        assert (rec.text, rec.start, rec.end) == ("abc", 10, more[0].end)
        assert decoder.resume_offset == more[0].end

    def test_reassembly_cap(self) -> None:
        lines = make_lines([f"{TS} stdout P {'x' * 100}", f"{TS} stdout F {'y' * 100}", f"{TS} stdout F z"])
        rec, nxt = decode_all(CriDecoder(max_bytes=150), lines)
        assert rec.text == "x" * 100 + "y" * 50
        assert rec.tags == (TAG_TRUNCATED,)
        assert rec.end == lines[1].end
        assert (nxt.text, nxt.tags) == ("z", ())

    def test_flush_idle(self) -> None:
        decoder = CriDecoder(timeout=5.0)
        decoder.feed(make_lines([f"{TS} stdout P died mid-line"]), now=100.0)
        assert decoder.flush_idle(104.0) == []
        (rec,) = decoder.flush_idle(105.0)
        assert rec.text == "died mid-line"
        assert decoder.resume_offset == rec.end

    def test_malformed_between_fragments(self) -> None:
        lines = make_lines([f"{TS} stdout P a", "garbage", f"{TS} stdout F b"])
        records = decode_all(CriDecoder(), lines)
        assert [(r.text, r.tags) for r in records] == [("garbage", (TAG_CRI_PARSE_FAILURE,)), ("ab", ())]

    def test_traceback_join_through_demux(self) -> None:
        lines = fixture_lines("cri-containerd.log")
        demux = ContainerStreamDemux(CriDecoder(), lambda s: joiner_from_preset("python_traceback"))
        records = demux.feed(lines, 0.0) + demux.flush()
        (tb,) = [r for r in records if "Traceback" in r.text]
        assert tb.stream == "stderr"
        assert tb.text.startswith("2024-01-02 03:04:05,051 ERROR app: parse failed\nTraceback")
        assert tb.text.endswith("ValueError: invalid literal for int() with base 10: 'x'")
        assert (tb.start, tb.end) == (lines[6].start, lines[13].end)


class TestDetect:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            pytest.param("docker-json.log", "docker", id="docker"),
            pytest.param("cri-containerd.log", "cri", id="containerd"),
            pytest.param("cri-crio-offset.log", "cri", id="crio"),
            pytest.param("python-traceback.log", None, id="plain"),
        ],
    )
    def test_fixture_first_line(self, name: str, expected: str | None) -> None:
        first = (DATA / name).read_bytes().split(b"\n", 1)[0] + b"\n"
        assert detect_container_format(first) == expected
        assert detect_container_format(first.decode()) == expected

    @pytest.mark.parametrize(
        "raw",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b"{", id="brace"),
            pytest.param(b'{"log":"x\\n"', id="truncated-json"),
            pytest.param(b"\xff\xfe garbage", id="invalid-utf8"),
            pytest.param(b'{"msg":"structured app log"}', id="json-not-docker"),
        ],
    )
    def test_not_a_container_format(self, raw: bytes) -> None:
        assert detect_container_format(raw) is None


# -- properties ----------------------------------------------------------------------------

ITEM = st.one_of(
    st.tuples(st.sampled_from(["stdout", "stderr"]), st.sampled_from(["P", "F"]), st.text("ab é", max_size=4)),
    st.tuples(st.just("junk"), st.just(""), st.text("ab é\t", max_size=12)),
)


@settings(max_examples=300, deadline=None)
@given(items=st.lists(ITEM, max_size=30), cuts=st.lists(st.integers(0, 40), max_size=5))
def test_never_drops_never_raises(items: list[tuple[str, str, str]], cuts: list[int]) -> None:
    texts = [msg if stream == "junk" else f"{TS} {stream} {tag} {msg}" for stream, tag, msg in items]
    lines = make_lines(texts)
    # Model: per stream, P fragments join up to F; junk that isn't valid CRI passes through.
    expected: dict[str, list[str]] = {"stdout": [], "stderr": [], "": []}
    held: dict[str, str] = {}
    for (stream, tag, msg), text in zip(items, texts, strict=True):
        if stream == "junk":
            parsed = parse_cri(text)
            if parsed is None:
                expected[""].append(text)
                continue
            stream, tag, msg = parsed.stream, "P" if parsed.partial else "F", parsed.message
        held[stream] = held.get(stream, "") + msg
        if tag == "F":
            expected[stream].append(held.pop(stream))
    leftovers = dict(held)

    decoder = CriDecoder()
    out: list[ContainerRecord] = []
    bounds = sorted({0, len(lines), *(c % (len(lines) + 1) for c in cuts)})
    for lo, hi in itertools.pairwise(bounds):
        out += decoder.feed(lines[lo:hi], 0.0)
    out += decoder.flush()
    got: dict[str, list[str]] = {"stdout": [], "stderr": [], "": []}
    for r in out:
        got[r.stream].append(r.text)
    for stream, rest in leftovers.items():
        expected[stream].append(rest)
    assert got == expected
    assert not decoder.pending


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_never_raises(text: str) -> None:
    line = Line(text, 0, len(text.encode("utf-8", "surrogatepass")) + 1)
    records = decode_all(CriDecoder(), [line])
    assert len(records) == 1
    assert records[0].end == line.end
    detect_container_format(text)
    detect_container_format(text.encode("utf-8", "surrogatepass"))
