"""Chunked reading and framing lines into events (plain and multiline)."""

from __future__ import annotations

import os
from pathlib import Path

from parsers.multiline import MultilineJoiner, joiner_from_preset
from pipeline.sources.fileid import event_id
from pipeline.sources.framing import MultilineFramer, PlainFramer, Stamp
from pipeline.sources.lines import RawLine
from pipeline.sources.reader import ChunkReader, cut_by_bytes

HOST = "h"
KEY = "1:2:ab"


def _stamp(log_type: str | None = None) -> Stamp:
    return Stamp(HOST, KEY, "/logs/a.log", log_type)


def _lines(data: bytes, start: int = 0) -> list[RawLine]:
    out: list[RawLine] = []
    pos = start
    for part in data.split(b"\n")[:-1]:
        out.append((part, pos, pos + len(part) + 1, False))
        pos += len(part) + 1
    return out


class TestChunkReader:
    def test_reads_chunks_into_lines_from_an_offset(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b"one\ntwo\nthree\nfour")
        fd = os.open(p, os.O_RDONLY)
        try:
            r = ChunkReader(fd, 4, chunk_bytes=5, max_line_bytes=100)
            seen = []
            while True:
                data, lines = r.read()
                if not data:
                    break
                seen.extend(lines)
            assert [(raw, s, e) for raw, s, e, _ in seen] == [(b"two", 4, 8), (b"three", 8, 14)]
            assert r.offset == 18 and r.pending_bytes == 4
            assert r.flush() == (b"four", 14, 18, False)
        finally:
            os.close(fd)


class TestPlainFramer:
    def test_event_shape(self) -> None:
        events, resume = PlainFramer(_stamp("access")).feed(_lines(b"GET /\nPOST /x\n", 100), 0.0, "TS", False)
        assert resume == 114
        assert events[1] == {
            "@timestamp": "TS", "message": "POST /x", "host": HOST, "log_type": "access",
            "source": {"path": "/logs/a.log", "offset": 106}, "event_id": event_id(HOST, KEY, 106)}

    def test_crlf_invalid_utf8_and_truncation_tags(self) -> None:
        lines: list[RawLine] = [(b"dos line\r", 0, 10, False), (b"bad \xff\xfe bytes", 10, 24, False),
                                (b"head-only", 24, 5000, True)]
        events, resume = PlainFramer(_stamp()).feed(lines, 0.0, "TS", True)
        assert [e["message"] for e in events] == ["dos line", "bad \ufffd\ufffd bytes", "head-only"]
        assert [e.get("tags") for e in events] == [None, ["_invalid_utf8"], ["_truncated"]]
        assert "log_type" not in events[0]
        assert resume == 5000

    def test_path_follows_a_rename(self) -> None:
        framer = PlainFramer(_stamp())
        framer.stamp.path = "/logs/a.log.1"
        events, _ = framer.feed(_lines(b"x\n"), 0.0, "TS", False)
        assert events[0]["source"]["path"] == "/logs/a.log.1"


class TestMultilineFramer:
    def test_joins_a_traceback_and_holds_the_open_record(self) -> None:
        data = (b"2024-01-01 ERROR boom\n"
                b"Traceback (most recent call last):\n"
                b'  File "x.py", line 1, in f\n'
                b"ValueError: bad\n"
                b"2024-01-01 INFO next\n")
        framer = MultilineFramer(_stamp(), joiner_from_preset("python_traceback"))
        events, resume = framer.feed(_lines(data), 0.0, "TS", False)
        assert len(events) == 1
        assert events[0]["message"].splitlines()[-1] == "ValueError: bad"
        assert events[0]["source"]["offset"] == 0
        # The INFO line is held (the next line may continue it): the resume offset is its start.
        assert resume == data.index(b"2024-01-01 INFO")
        assert framer.pending
        events, resume = framer.flush("TS")
        assert [e["message"] for e in events] == ["2024-01-01 INFO next"] and resume == len(data)

    def test_line_tags_land_on_the_record_holding_the_line(self) -> None:
        lines: list[RawLine] = [(b"2024 a", 0, 7, False), (b" cont \xff", 7, 15, False),
                                (b"2024 b", 15, 22, False), (b" long", 22, 900, True), (b"2024 c", 900, 907, False)]
        framer = MultilineFramer(_stamp(), MultilineJoiner(r"^\d{4}", negate=True))
        events, _ = framer.feed(lines, 0.0, "TS", False)
        assert [(e["message"], e.get("tags")) for e in events] == [
            ("2024 a\n cont \ufffd", ["_invalid_utf8"]), ("2024 b\n long", ["_truncated"])]
        events, _ = framer.flush("TS")
        assert events[0].get("tags") is None

    def test_idle_flush_after_the_joiner_timeout(self) -> None:
        framer = MultilineFramer(_stamp(), MultilineJoiner(r"^\s", timeout=1.0))
        events, resume = framer.feed(_lines(b"first\n  more\n"), 10.0, "TS", False)
        assert events == [] and resume == 0
        assert framer.idle_deadline == 11.0
        assert framer.flush_idle(10.5, "TS")[0] == []
        events, resume = framer.flush_idle(11.0, "TS")
        assert [e["message"] for e in events] == ["first\n  more"] and resume == 13


class TestBatchCut:
    def test_cut_by_bytes_keeps_at_least_one_line(self) -> None:
        lines = _lines(b"a" * 10 + b"\n" + b"b" * 10 + b"\n" + b"c" * 10 + b"\n")
        assert cut_by_bytes(lines, 0, 3, 22) == 2
        assert cut_by_bytes(lines, 0, 3, 5) == 1
        assert cut_by_bytes(lines, 1, 3, 100) == 3
