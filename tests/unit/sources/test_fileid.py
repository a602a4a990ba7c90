"""File identity: fingerprints of the first bytes, keys, event ids."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.sources.fileid import event_id, event_id_prefix, fingerprint, fingerprint_bytes, identity_key, matches


def _fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


class TestFingerprint:
    def test_covers_at_most_the_limit(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b"x" * 5000)
        fd = _fd(p)
        try:
            fp = fingerprint(fd, 1024)
        finally:
            os.close(fd)
        assert fp == fingerprint_bytes(b"x" * 1024)

    def test_short_file_fingerprint_grows_and_still_matches(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b"first line\n")
        fd = _fd(p)
        try:
            short = fingerprint(fd, 1024)
            assert short.length == 11
            with open(p, "ab") as fh:
                fh.write(b"second line\n" * 200)
            # The same file: its first 11 bytes are unchanged.
            assert matches(fd, short)
            grown = fingerprint(fd, 1024)
            assert grown.length == 1024 and grown != short
        finally:
            os.close(fd)

    def test_rewritten_content_does_not_match(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b"2024-01-01 old content\n")
        fd = _fd(p)
        try:
            fp = fingerprint(fd, 1024)
            p.write_bytes(b"2024-06-01 new content\n")  # same inode, truncated and rewritten
            assert not matches(fd, fp)
        finally:
            os.close(fd)

    def test_file_shorter_than_the_fingerprint_does_not_match(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b"abcdef")
        fd = _fd(p)
        try:
            fp = fingerprint(fd, 1024)
            os.truncate(p, 3)
            assert not matches(fd, fp)
        finally:
            os.close(fd)


class TestKeys:
    def test_identity_key_names_device_inode_and_fingerprint(self) -> None:
        fp = fingerprint_bytes(b"hello")
        assert identity_key(1, 2, fp) == f"1:2:{fp.digest}"

    def test_event_id_is_deterministic_and_distinct(self) -> None:
        a = event_id("h", "1:2:ab", 0)
        assert a == event_id("h", "1:2:ab", 0)
        assert len({a, event_id("h", "1:2:ab", 1), event_id("h2", "1:2:ab", 0), event_id("h", "1:3:ab", 0)}) == 4
        assert a.startswith(event_id_prefix("h", "1:2:ab"))
        assert len(a) == 28
