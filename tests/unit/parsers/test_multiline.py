"""Tests for parsers/multiline.py: Filebeat semantics, clock, limits, offsets, presets."""

from __future__ import annotations

import itertools
import logging
import math
import traceback
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.multiline import (
    PRESETS,
    Line,
    MultilineJoiner,
    PassthroughJoiner,
    Record,
    cut_utf8,
    joiner_from_preset,
    utf8_len,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "containers"


def make_lines(texts: Sequence[str], start: int = 0) -> list[Line]:
    """Lines with the byte offsets a reader would give them ("\\n"-terminated)."""
    out = []
    pos = start
    for text in texts:
        end = pos + len(text.encode("utf-8", "surrogatepass")) + 1
        out.append(Line(text, pos, end))
        pos = end
    return out


def fixture_lines(name: str) -> list[Line]:
    data = (DATA / name).read_bytes()
    out = []
    pos = 0
    for raw in data.splitlines(keepends=True):
        out.append(Line(raw.rstrip(b"\n").decode(), pos, pos + len(raw)))
        pos += len(raw)
    return out


def join_all(joiner: MultilineJoiner | PassthroughJoiner, lines: Sequence[Line]) -> list[Record]:
    return joiner.feed(lines, 0.0) + joiner.flush()


def texts(records: Sequence[Record]) -> list[str]:
    return [r.text for r in records]


class TestFilebeatModes:
    """The four pattern/negate/match combinations, from Filebeat's documentation table."""

    @pytest.mark.parametrize(
        ("negate", "match", "lines", "expected"),
        [
            pytest.param(False, "after", "abbcbb", ["abb", "cbb"], id="match-appended-after"),
            pytest.param(False, "before", "bbabbc", ["bba", "bbc"], id="match-prepended-before"),
            pytest.param(True, "after", "bacbde", ["bac", "bde"], id="nonmatch-appended-after"),
            pytest.param(True, "before", "acbdeb", ["acb", "deb"], id="nonmatch-prepended-before"),
        ],
    )
    def test_filebeat_table(
        self, negate: bool, match: Literal["after", "before"], lines: str, expected: list[str]
    ) -> None:
        joiner = MultilineJoiner("^b", negate=negate, match=match)
        records = join_all(joiner, make_lines(list(lines)))
        assert [r.text.replace("\n", "") for r in records] == expected
        assert [r.lines for r in records] == [3, 3]
        assert [(r.start, r.end) for r in records] == [(0, 6), (6, 12)]

    def test_lines_joined_with_newline(self) -> None:
        joiner = MultilineJoiner(r"^\s", match="after")
        records = join_all(joiner, make_lines(["head", "  one", "  two", "next"]))
        assert texts(records) == ["head\n  one\n  two", "next"]

    def test_first_line_that_continues_starts_its_own_record(self) -> None:
        joiner = MultilineJoiner(r"^\s")
        records = join_all(joiner, make_lines(["  orphan", "  more", "head"]))
        assert texts(records) == ["  orphan\n  more", "head"]

    def test_backslash_continuation_before(self) -> None:
        joiner = MultilineJoiner(r"\\$", match="before")
        records = join_all(joiner, make_lines(["a \\", "b \\", "c", "d", "e \\", "f"]))
        assert texts(records) == ["a \\\nb \\\nc", "d", "e \\\nf"]

    def test_before_mode_emits_without_waiting_for_the_next_line(self) -> None:
        joiner = MultilineJoiner(r"\\$", match="before")
        records = joiner.feed(make_lines(["a \\", "b"]), 0.0)
        assert texts(records) == ["a \\\nb"]
        assert not joiner.pending

    def test_after_mode_holds_the_last_record(self) -> None:
        joiner = MultilineJoiner(r"^\s")
        assert texts(joiner.feed(make_lines(["a", "  b"]), 0.0)) == []
        assert joiner.pending

    def test_posix_class_pattern(self) -> None:
        joiner = MultilineJoiner("^[[:space:]]")
        records = join_all(joiner, make_lines(["x", " y", "\tz", "w"]))
        assert texts(records) == ["x\n y\n\tz", "w"]

    def test_state_carries_across_feeds(self) -> None:
        joiner = MultilineJoiner(r"^\d{4}-", negate=True)
        lines = make_lines(["2024-01 a", "cont 1", "cont 2", "2024-01 b", "cont 3"])
        out: list[Record] = []
        for line in lines:
            out += joiner.feed([line], 0.0)
        out += joiner.flush()
        assert texts(out) == ["2024-01 a\ncont 1\ncont 2", "2024-01 b\ncont 3"]

    def test_flush_pattern_closes_the_record_after(self) -> None:
        joiner = MultilineJoiner("^BEGIN", negate=True, match="after", flush_pattern="^END$")
        lines = make_lines(["BEGIN 1", "x", "END", "stray", "BEGIN 2", "y", "END"])
        assert texts(joiner.feed(lines, 0.0)) == ["BEGIN 1\nx\nEND", "stray", "BEGIN 2\ny\nEND"]
        assert not joiner.pending

    def test_flush_pattern_closes_the_record_before(self) -> None:
        joiner = MultilineJoiner(r"\\$", match="before", flush_pattern="^STOP")
        lines = make_lines(["a \\", "STOP \\", "b \\", "c"])
        assert texts(joiner.feed(lines, 0.0)) == ["a \\\nSTOP \\", "b \\\nc"]

    def test_flush_pattern_on_a_first_line_stands_alone(self) -> None:
        joiner = MultilineJoiner(r"^\s", flush_pattern="^END")
        assert texts(joiner.feed(make_lines(["END", " x"]), 0.0)) == ["END"]
        assert texts(joiner.flush()) == [" x"]


class TestOffsets:
    def test_record_spans_first_start_to_last_end(self) -> None:
        lines = make_lines(["start", " a", " b", "next"], start=100)
        joiner = MultilineJoiner(r"^\s")
        first, second = join_all(joiner, lines)
        assert (first.start, first.end, first.lines) == (100, lines[2].end, 3)
        assert (second.start, second.end, second.lines) == (lines[3].start, lines[3].end, 1)
        assert first.first is lines[0]

    def test_pending_and_resume_offsets(self) -> None:
        joiner = MultilineJoiner(r"^\s")
        assert joiner.pending_start_offset is None
        assert joiner.resume_offset is None
        lines = make_lines(["a", " b", "c", " d"])
        out = joiner.feed(lines, 0.0)
        assert texts(out) == ["a\n b"]
        assert joiner.pending_start_offset == lines[2].start
        assert joiner.resume_offset == out[-1].end == lines[2].start
        assert texts(joiner.flush()) == ["c\n d"]
        assert joiner.pending_start_offset is None
        assert joiner.resume_offset == lines[-1].end

    def test_multibyte_offsets_are_bytes(self) -> None:
        lines = make_lines(["héllo ✓", " 😀"])
        (rec,) = join_all(MultilineJoiner(r"^\s"), lines)
        assert rec.end - rec.start == len("héllo ✓\n 😀\n".encode())


class TestTimeout:
    def test_flush_idle_uses_the_injected_clock(self) -> None:
        joiner = MultilineJoiner(r"^\s", timeout=5.0)
        joiner.feed(make_lines(["a", " b"]), now=100.0)
        assert joiner.idle_deadline == 105.0
        assert joiner.flush_idle(104.9) == []
        (rec,) = joiner.flush_idle(105.0)
        assert rec.text == "a\n b"
        assert not joiner.pending
        assert joiner.idle_deadline is None
        assert joiner.flush_idle(1000.0) == []

    def test_new_lines_restart_the_timer(self) -> None:
        joiner = MultilineJoiner(r"^\s", timeout=5.0)
        joiner.feed(make_lines(["a"]), now=0.0)
        joiner.feed(make_lines([" b"], start=2), now=4.0)
        assert joiner.flush_idle(6.0) == []
        assert texts(joiner.flush_idle(9.0)) == ["a\n b"]

    def test_empty_feed_does_not_restart_the_timer(self) -> None:
        joiner = MultilineJoiner(r"^\s", timeout=1.0)
        joiner.feed(make_lines(["a"]), now=0.0)
        assert joiner.feed([], now=0.9) == []
        assert texts(joiner.flush_idle(1.0)) == ["a"]

    def test_infinite_timeout_never_flushes(self) -> None:
        joiner = MultilineJoiner(r"^\s", timeout=math.inf)
        joiner.feed(make_lines(["a"]), now=0.0)
        assert joiner.flush_idle(1e18) == []
        assert texts(joiner.flush()) == ["a"]

    @pytest.mark.parametrize("bad", [-1.0, math.nan])
    def test_bad_timeout_rejected(self, bad: float) -> None:
        with pytest.raises(ValueError, match="timeout"):
            MultilineJoiner("x", timeout=bad)


class TestLimits:
    def test_max_lines_drops_text_but_not_bytes(self) -> None:
        lines = make_lines(["head"] + [f" {i}" for i in range(10)] + ["next"])
        joiner = MultilineJoiner(r"^\s", max_lines=3)
        rec, nxt = join_all(joiner, lines)
        assert rec.text == "head\n 0\n 1"
        assert rec.lines == 11
        assert rec.truncated
        assert (rec.start, rec.end) == (0, lines[10].end)
        assert nxt.start == rec.end
        assert not nxt.truncated

    def test_max_bytes_cuts_at_character_boundary(self) -> None:
        lines = make_lines(["ab", " ééé", " more", "next"])
        joiner = MultilineJoiner(r"^\s", max_bytes=8)
        rec, nxt = join_all(joiner, lines)
        # "ab" (2) + "\n" (1) + " éé" (5) = 8; the third é would cross the limit.
        assert rec.text == "ab\n éé"
        assert utf8_len(rec.text) <= 8
        assert rec.truncated
        assert rec.lines == 3
        assert rec.end == lines[2].end == nxt.start

    def test_single_line_over_max_bytes_is_cut(self) -> None:
        lines = make_lines(["x" * 50, "y"])
        rec, nxt = join_all(MultilineJoiner(r"^\s", max_bytes=10), lines)
        assert rec.text == "x" * 10
        assert rec.truncated
        assert (rec.start, rec.end) == (0, 51)
        assert nxt.text == "y"
        assert not nxt.truncated

    def test_single_line_over_max_bytes_in_before_mode(self) -> None:
        lines = make_lines(["é" * 10])
        (rec,) = join_all(MultilineJoiner(r"\\$", match="before", max_bytes=5), lines)
        assert rec.text == "éé"
        assert rec.truncated

    def test_limits_validated(self) -> None:
        with pytest.raises(ValueError, match="max_lines"):
            MultilineJoiner("x", max_lines=0)
        with pytest.raises(ValueError, match="max_bytes"):
            MultilineJoiner("x", max_bytes=0)
        with pytest.raises(ValueError, match="match"):
            MultilineJoiner("x", match="around")  # type: ignore[arg-type]


class TestUtf8Helpers:
    @pytest.mark.parametrize(
        ("text", "limit", "expected"),
        [
            pytest.param("hello", 3, "hel", id="ascii"),
            pytest.param("héllo", 2, "h", id="inside-2-byte"),
            pytest.param("héllo", 3, "hé", id="after-2-byte"),
            pytest.param("a😀b", 4, "a", id="inside-4-byte"),
            pytest.param("a😀b", 5, "a😀", id="after-4-byte"),
            pytest.param("abc", 0, "", id="zero"),
            pytest.param("a\udcffb", 4, "a\udcff", id="lone-surrogate"),
        ],
    )
    def test_cut_utf8(self, text: str, limit: int, expected: str) -> None:
        assert cut_utf8(text, limit) == expected


class TestFlush:
    def test_flush_emits_pending_once(self) -> None:
        joiner = MultilineJoiner(r"^\s")
        joiner.feed(make_lines(["a", " b"]), 0.0)
        assert texts(joiner.flush()) == ["a\n b"]
        assert joiner.flush() == []

    def test_flush_before_mode_incomplete_record(self) -> None:
        joiner = MultilineJoiner(r"\\$", match="before")
        assert joiner.feed(make_lines(["a \\", "b \\"]), 0.0) == []
        assert texts(joiner.flush()) == ["a \\\nb \\"]


class TestPatternErrors:
    def test_invalid_regex_names_the_pattern(self) -> None:
        with pytest.raises(ValueError, match=r"\(unclosed"):
            MultilineJoiner("(unclosed")

    def test_invalid_flush_pattern(self) -> None:
        with pytest.raises(ValueError, match=r"\[z-a\]"):
            MultilineJoiner("x", flush_pattern="[z-a]")

    def test_unknown_preset(self) -> None:
        with pytest.raises(ValueError, match="python_traceback"):
            joiner_from_preset("nope")


class TestPassthrough:
    def test_each_line_is_a_record(self) -> None:
        joiner = PassthroughJoiner()
        lines = make_lines(["a", " b", "c"])
        records = joiner.feed(lines, 0.0)
        assert [(r.text, r.start, r.end, r.lines, r.truncated) for r in records] == [
            (ln.text, ln.start, ln.end, 1, False) for ln in lines
        ]
        assert not joiner.pending
        assert joiner.pending_start_offset is None
        assert joiner.resume_offset == lines[-1].end
        assert joiner.flush() == joiner.flush_idle(1e9) == []


def timestamped(records: Sequence[Record]) -> bool:
    return all(r.text[:4].isdigit() for r in records)


class TestPresets:
    def test_python_fixture(self) -> None:
        lines = fixture_lines("python-traceback.log")
        records = join_all(joiner_from_preset("python_traceback"), lines)
        starts = [ln.text for ln in lines if ln.text.startswith("2024-")]
        assert [r.text.split("\n", 1)[0] for r in records] == starts
        by_head = {r.text.split("\n", 1)[0].split(": ", 1)[1]: r for r in records}
        assert by_head["parse failed"].text.endswith("ValueError: invalid literal for int() with base 10: 'x'")
        chained = by_head["chained"].text
        assert "KeyError: 'k'" in chained
        assert "The above exception was the direct cause" in chained
        assert chained.endswith("RuntimeError: lookup failed")
        assert "During handling of the above exception" in by_head["during handling"].text
        assert by_head["during handling"].text.endswith("IndexError: list index out of range")
        assert by_head["worker interrupted"].text.endswith("KeyboardInterrupt")
        assert by_head["custom"].text.endswith("myapp.errors.BoomError: kaput")
        assert by_head["shutdown"].lines == 1
        assert records[-1].end == lines[-1].end

    def test_python_live_traceback(self) -> None:
        stream = StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("test_multiline_live")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:

            def inner() -> None:
                raise ValueError("boom")

            try:
                try:
                    inner()
                except ValueError as exc:
                    raise LookupError("wrapped") from exc
            except LookupError:
                logger.exception("request failed")
            logger.info("next request")
        finally:
            logger.removeHandler(handler)
        lines = make_lines(stream.getvalue().splitlines())
        records = join_all(joiner_from_preset("python_traceback"), lines)
        assert len(records) == 2
        assert "ValueError: boom" in records[0].text
        assert records[0].text.endswith("LookupError: wrapped")
        assert records[1].text.endswith("next request")

    def test_python_format_exc_is_one_record(self) -> None:
        table: dict[str, int] = {}
        try:
            table["missing"] += 1
        except KeyError:
            tb = traceback.format_exc()
        lines = make_lines(["2024-01-02 03:04:05 ERROR x", *tb.splitlines(), "2024-01-02 03:04:06 INFO y"])
        records = join_all(joiner_from_preset("python_traceback"), lines)
        assert len(records) == 2
        assert records[0].text.endswith("KeyError: 'missing'")

    def test_java_fixture(self) -> None:
        lines = fixture_lines("java-stacktrace.log")
        records = join_all(joiner_from_preset("java_stacktrace"), lines)
        starts = [ln.text for ln in lines if ln.text.startswith("2024-")]
        assert [r.text.split("\n", 1)[0] for r in records] == starts
        failed = records[1].text
        assert "java.lang.RuntimeException: request failed" in failed
        assert "\tSuppressed: java.io.IOException: close failed" in failed
        assert "Caused by: java.lang.IllegalArgumentException: bad value: 7" in failed
        assert failed.endswith("\t... 3 more")
        spring = records[3].text
        assert spring.split("\n")[1] == "com.example.orders.OrderNotFoundException: order 42 not found"
        assert spring.endswith("... 12 common frames omitted")
        assert records[-1].lines == 1

    @pytest.mark.parametrize("name", ["python-traceback.log", "java-stacktrace.log"])
    def test_iso8601_start_on_both_fixtures(self, name: str) -> None:
        lines = fixture_lines(name)
        records = join_all(joiner_from_preset("iso8601_start"), lines)
        assert timestamped(records)
        assert len(records) == sum(ln.text.startswith("2024-") for ln in lines)
        assert sum(r.lines for r in records) == len(lines)

    def test_overrides(self) -> None:
        joiner = joiner_from_preset("java_stacktrace", max_lines=2, timeout=1.0)
        assert joiner.max_lines == 2
        assert joiner.timeout == 1.0
        assert joiner.pattern == PRESETS["java_stacktrace"]["pattern"]


class TestCountAndWhile:
    def test_count_groups_every_n_lines(self) -> None:
        lines = make_lines(["a1", "a2", "a3", "b1", "b2", "b3", "c1"])
        records = join_all(MultilineJoiner(mode="count", count_lines=3), lines)
        assert texts(records) == ["a1\na2\na3", "b1\nb2\nb3", "c1"]
        assert [(r.start, r.end) for r in records] == [
            (lines[0].start, lines[2].end), (lines[3].start, lines[5].end), (lines[6].start, lines[6].end)
        ]  # fmt: skip

    def test_count_emits_a_full_record_at_once_and_a_partial_one_at_the_timeout(self) -> None:
        joiner = MultilineJoiner(mode="count", count_lines=2, timeout=5.0)
        assert texts(joiner.feed(make_lines(["a", "b", "c"]), 0.0)) == ["a\nb"]
        assert joiner.pending
        assert joiner.flush_idle(4.0) == []
        assert texts(joiner.flush_idle(5.0)) == ["c"]

    def test_count_of_one_is_every_line(self) -> None:
        lines = make_lines(["x", "y"])
        assert texts(join_all(MultilineJoiner(mode="count", count_lines=1), lines)) == ["x", "y"]

    def test_while_pattern_joins_runs_and_leaves_other_lines_alone(self) -> None:
        lines = make_lines(["start", "  one", "  two", "middle", "end", "  three"])
        records = join_all(MultilineJoiner(r"^\s", mode="while_pattern"), lines)
        assert texts(records) == ["start", "  one\n  two", "middle", "end", "  three"]

    def test_while_pattern_negate_joins_runs_of_non_matching_lines(self) -> None:
        lines = make_lines(["# a", "b", "c", "# d", "# e", "f"])
        records = join_all(MultilineJoiner(r"^#", negate=True, mode="while_pattern"), lines)
        assert texts(records) == ["# a", "b\nc", "# d", "# e", "f"]

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            pytest.param({"mode": "count"}, "count_lines >= 1", id="count-without-n"),
            pytest.param({"mode": "count", "count_lines": 0}, "count_lines >= 1", id="count-zero"),
            pytest.param({"mode": "count", "count_lines": 2, "pattern": "^a"}, "no pattern", id="count-with-pattern"),
            pytest.param({"mode": "while_pattern"}, "needs a pattern", id="while-without-pattern"),
            pytest.param({"pattern": "^a", "count_lines": 2}, "only for multiline type count", id="n-without-count"),
            pytest.param({"pattern": "^a", "mode": "lines"}, "must be one of", id="unknown-type"),
        ],
    )
    def test_bad_settings(self, kwargs: dict[str, object], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            MultilineJoiner(**kwargs)  # type: ignore[arg-type]


class TestGrokPatterns:
    def test_grok_reference_is_expanded(self) -> None:
        joiner = MultilineJoiner(r"^%{TIMESTAMP_ISO8601} ", negate=True)
        lines = make_lines(["2024-01-02T03:04:05Z start", "  detail", "2024-01-02 03:04:06,123 next", "x"])
        assert texts(join_all(joiner, lines)) == [
            "2024-01-02T03:04:05Z start\n  detail",
            "2024-01-02 03:04:06,123 next\nx",
        ]

    def test_named_grok_capture_is_allowed(self) -> None:
        joiner = MultilineJoiner(r"^\[%{HTTPDATE:ts}\]", negate=True)
        lines = make_lines(["[02/Jan/2024:03:04:05 +0000] a", "b", "[02/Jan/2024:03:04:06 +0000] c"])
        assert texts(join_all(joiner, lines)) == ["[02/Jan/2024:03:04:05 +0000] a\nb", "[02/Jan/2024:03:04:06 +0000] c"]

    def test_unknown_grok_pattern_names_the_pattern(self) -> None:
        with pytest.raises(ValueError, match="NO_SUCH_PATTERN"):
            MultilineJoiner(r"^%{NO_SUCH_PATTERN}")

    def test_grok_in_while_pattern(self) -> None:
        joiner = MultilineJoiner(r"^%{SPACE}at ", mode="while_pattern")
        lines = make_lines(["boom", " at a", " at b", "ok"])
        assert texts(join_all(joiner, lines)) == ["boom", " at a\n at b", "ok"]


class TestMorePresets:
    def test_go_panics_and_goroutine_dump(self) -> None:
        lines = fixture_lines("go-panic.log")
        records = join_all(joiner_from_preset("go_panic"), lines)
        heads = [r.text.split("\n", 1)[0] for r in records]
        # The log line before each trace stays a record of its own (the runtime wrote the trace).
        assert heads == [
            "2024/01/02 03:04:05 starting worker pool",
            "2024/01/02 03:04:05 handling order 42",
            "panic: runtime error: invalid memory address or nil pointer dereference",
            "2024/01/02 03:04:05 starting worker pool",
            "panic: job 7: bad state [recovered]",
            "2024/01/02 03:04:05 starting worker pool",
            "2024/01/02 03:04:05 waiting for results",
            "fatal error: all goroutines are asleep - deadlock!",
            "2024/01/02 03:04:05 starting worker pool",
            "2024/01/02 03:04:05 waiting for jobs",
            "SIGQUIT: quit",
            "2024/01/02 03:04:06 worker pool restarted",
        ]
        nil_panic, repanic, dump = records[2].text, records[4].text, records[10].text
        assert "[signal SIGSEGV" in nil_panic
        assert nil_panic.endswith("example.com/worker/main.go:35 +0x1ac")
        assert "\tpanic: cleanup failed" in repanic
        assert "panic({" in repanic
        assert repanic.rstrip().endswith("example.com/worker/main.go:39 +0x2eb")
        assert dump.count("goroutine ") >= 3
        assert "created by main.main in goroutine 1" in dump
        assert dump.endswith("gs     0x0")
        assert sum(r.lines for r in records) == len(lines)

    def test_ruby_backtraces(self) -> None:
        lines = fixture_lines("ruby-backtrace.log")
        records = join_all(joiner_from_preset("ruby_backtrace"), lines)
        heads = [r.text.split("\n", 1)[0] for r in records]
        assert heads == [
            "I, [2024-01-02T03:04:05.123456 #4242]  INFO -- : handling job logged",
            "E, [2024-01-02T03:04:05.123456 #4242] ERROR -- : undefined method `items' for nil:NilClass",
            "I, [2024-01-02T03:04:05.123456 #4242]  INFO -- : next job",
            "I, [2024-01-02T03:04:05.123456 #4242]  INFO -- : handling job cause",
            "/srv/app/worker.rb:12:in `rescue in ratio': ratio of 1 and 0 failed (ArgumentError)",
            "/srv/app/worker.rb:10:in `/': divided by 0 (ZeroDivisionError)",
            "I, [2024-01-02T03:04:05.123456 #4242]  INFO -- : handling job nil",
            "/srv/app/worker.rb:16:in `find': undefined method `items' for nil:NilClass (NoMethodError)",
            'Started GET "/users/7" for 81.2.69.142 at 2024-01-02 03:04:06 +0000',
            "Processing by UsersController#show as HTML",
            "Completed 500 Internal Server Error in 14ms (ActiveRecord: 0.6ms | Allocations: 4120)",
            "ActionView::Template::Error (undefined method `name' for nil:NilClass):",
            'Started GET "/health" for 10.0.0.3 at 2024-01-02 03:04:07 +0000',
        ]
        logged, uncaught, rails = records[1].text, records[7].text, records[11].text
        assert logged.endswith("/srv/app/worker.rb:43:in `<main>'")
        assert "^^^^^^ (NoMethodError)" in logged
        assert uncaught.endswith("\tfrom /srv/app/worker.rb:43:in `<main>'")
        assert "    @orders[id].items.first" in uncaught
        assert "    1: <h1><%= @user.name %></h1>" in rails
        assert rails.endswith("app/controllers/users_controller.rb:9:in `show'")
        assert "app/views/users/show.html.erb:1" in rails

    def test_java_nested_exception_is_and_indented_caused_by(self) -> None:
        lines = make_lines([
            "2024-01-02 03:04:05.100 ERROR [main] c.e.Mailer - send failed",
            "javax.mail.MessagingException: Could not connect to SMTP host: mail.example.com, port: 25;",
            "  nested exception is:",
            "\tjava.net.ConnectException: Connection refused",
            "\tat java.base/sun.nio.ch.Net.connect0(Native Method)",
            "\tat com.sun.mail.smtp.SMTPTransport.openServer(SMTPTransport.java:2209)",
            "\t... 7 more",
            "  Caused by: java.io.IOException: closed",
            "2024-01-02 03:04:05.200 INFO  [main] c.e.Mailer - retrying",
        ])  # fmt: skip
        records = join_all(joiner_from_preset("java_stacktrace"), lines)
        assert len(records) == 2
        assert records[0].lines == 8
        assert records[1].text.endswith("retrying")

    def test_nginx_error_multiline_fastcgi_record(self) -> None:
        lines = make_lines([
            '2024/01/02 03:04:05 [error] 31#31: *1 FastCGI sent in stderr: "PHP message: PHP Fatal error:  Uncaught '
            "Error: Call to undefined function foo() in /var/www/html/index.php:9",
            "Stack trace:",
            "#0 {main}",
            '  thrown in /var/www/html/index.php on line 9" while reading response header from upstream, client: '
            '81.2.69.142, server: shop.example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", '
            'host: "shop.example.com"',
            "2024/01/02 03:04:06 [notice] 1#1: signal process started",
        ])  # fmt: skip
        records = join_all(joiner_from_preset("nginx_error"), lines)
        assert [r.lines for r in records] == [4, 1]
        assert records[0].text.endswith('host: "shop.example.com"')

    @pytest.mark.parametrize("name", sorted(PRESETS))
    @pytest.mark.parametrize("fixture", ["go-panic.log", "ruby-backtrace.log", "java-stacktrace.log"])
    def test_every_preset_keeps_every_line_in_order(self, name: str, fixture: str) -> None:
        lines = fixture_lines(fixture)
        records = join_all(joiner_from_preset(name), lines)
        assert [part for r in records for part in r.text.split("\n")] == [ln.text for ln in lines]


# -- properties --------------------------------------------------------------------------------

MODES = st.sampled_from([(False, "after"), (True, "after"), (False, "before"), (True, "before")])
LINE_TEXT = st.text(alphabet="ab \\é😀", max_size=5)


def feed_in_batches(
    joiner: MultilineJoiner, lines: list[Line], cuts: list[int], idle: list[bool]
) -> tuple[list[Record], list[int | None]]:
    """Feed ``lines`` split at ``cuts``; after each batch maybe run an idle flush."""
    out: list[Record] = []
    resumes: list[int | None] = []
    bounds = sorted({0, len(lines), *(c % (len(lines) + 1) for c in cuts)})
    now = 0.0
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        out += joiner.feed(lines[lo:hi], now)
        if idle[i % len(idle)]:
            now += 10.0
            out += joiner.flush_idle(now)
        now += 1.0
        resumes.append(joiner.resume_offset)
        # The checkpoint recipe: resume where the emitted records end; nothing emitted is after it.
        assert joiner.resume_offset == (out[-1].end if out else lines[0].start)
        if joiner.pending:
            assert joiner.resume_offset == joiner.pending_start_offset
    out += joiner.flush()
    return out, resumes


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(
        joiner_args=st.sampled_from([
            {"mode": "count", "count_lines": 1}, {"mode": "count", "count_lines": 3},
            {"mode": "while_pattern", "pattern": "^a"}, {"mode": "while_pattern", "pattern": "^a", "negate": True},
        ]),
        texts_=st.lists(LINE_TEXT, max_size=40),
        cuts=st.lists(st.integers(min_value=0, max_value=50), max_size=6),
        idle=st.lists(st.booleans(), min_size=1, max_size=6),
    )  # fmt: skip
    def test_other_modes_no_loss_no_reorder(
        self, joiner_args: dict[str, object], texts_: list[str], cuts: list[int], idle: list[bool]
    ) -> None:
        joiner = MultilineJoiner(timeout=5.0, **joiner_args)  # type: ignore[arg-type]
        lines = make_lines(texts_, start=3)
        records, _ = feed_in_batches(joiner, lines, cuts, idle)
        assert [part for r in records for part in r.text.split("\n")] == texts_
        assert sum(r.lines for r in records) == len(lines)
        for a, b in itertools.pairwise(records):
            assert a.end == b.start
        if joiner_args["mode"] == "count" and not any(idle):
            assert all(r.lines == joiner_args["count_lines"] for r in records[:-1])

    @settings(max_examples=300, deadline=None)
    @given(
        mode=MODES,
        texts_=st.lists(LINE_TEXT, max_size=40),
        cuts=st.lists(st.integers(min_value=0, max_value=50), max_size=6),
        idle=st.lists(st.booleans(), min_size=1, max_size=6),
        flush_pattern=st.sampled_from([None, "^bb"]),
    )
    def test_no_loss_no_reorder_contiguous_offsets(
        self,
        mode: tuple[bool, Literal["after", "before"]],
        texts_: list[str],
        cuts: list[int],
        idle: list[bool],
        flush_pattern: str | None,
    ) -> None:
        negate, match = mode
        joiner = MultilineJoiner("^a", negate=negate, match=match, timeout=5.0, flush_pattern=flush_pattern)
        lines = make_lines(texts_, start=7)
        records, _ = feed_in_batches(joiner, lines, cuts, idle)
        rebuilt = [part for r in records for part in r.text.split("\n")]
        assert rebuilt == texts_
        assert sum(r.lines for r in records) == len(lines)
        assert not any(r.truncated for r in records)
        if lines:
            assert records[0].start == lines[0].start
            assert records[-1].end == lines[-1].end
        for a, b in itertools.pairwise(records):
            assert a.end == b.start
        assert all(r.start < r.end for r in records)
        assert not joiner.pending

    @settings(max_examples=300, deadline=None)
    @given(
        mode=MODES,
        texts_=st.lists(LINE_TEXT, max_size=30),
        max_lines=st.integers(min_value=1, max_value=4),
        max_bytes=st.integers(min_value=1, max_value=12),
    )
    def test_limits_keep_offsets_and_prefixes(
        self, mode: tuple[bool, Literal["after", "before"]], texts_: list[str], max_lines: int, max_bytes: int
    ) -> None:
        negate, match = mode
        lines = make_lines(texts_)
        full = join_all(MultilineJoiner("^a", negate=negate, match=match), lines)
        capped = join_all(
            MultilineJoiner("^a", negate=negate, match=match, max_lines=max_lines, max_bytes=max_bytes),
            lines,
        )
        assert [(r.start, r.end, r.lines) for r in capped] == [(r.start, r.end, r.lines) for r in full]
        for c, f in zip(capped, full, strict=True):
            assert f.text.startswith(c.text)
            assert c.truncated == (c.text != f.text)
            assert utf8_len(c.text) <= max_bytes
            assert c.text.count("\n") < max_lines
