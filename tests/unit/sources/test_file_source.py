"""The `file` source against real files: reading, checkpoints, identity, rotation, limits."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path

import orjson
import pytest

from pipeline.acks import Status
from pipeline.event import Batch
from pipeline.sources.fileid import event_id, fingerprint_bytes, identity_key
from tests.unit.sources.harness import (
    HOST,
    Harness,
    append,
    file_config,
    live_source,
    make_source,
    rewrite_in_place,
    run_once,
)


def numbered(n: int, start: int = 0, prefix: str = "line") -> bytes:
    return b"".join(b"%s %06d\n" % (prefix.encode(), i) for i in range(start, start + n))


def ids_of(messages: list[str]) -> list[int]:
    return [int(m.rsplit(" ", 1)[1]) for m in messages]


def rotate_by_rename(path: Path, to: Path, fresh: bytes, late: bytes) -> None:
    """Rename the file, create a fresh one, and write `late` through the old descriptor."""
    with open(path, "ab") as old:
        path.rename(to)
        path.write_bytes(fresh)
        old.write(late)


class TestReading:
    async def test_reads_every_line_with_offsets_and_event_ids(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(b"alpha\nbeta\n")
        h = await run_once(file_config(include=[f"{logs}/*.log"], log_type="application"), data_dir)
        info = os.stat(p)
        key = identity_key(info.st_dev, info.st_ino, fingerprint_bytes(p.read_bytes()[:1024]))
        assert [(e["message"], e["source"], e["log_type"], e["host"], e["event_id"]) for e in h.events] == [
            ("alpha", {"path": str(p), "offset": 0}, "application", HOST, event_id(HOST, key, 0)),
            ("beta", {"path": str(p), "offset": 6}, "application", HOST, event_id(HOST, key, 6)),
        ]
        assert h.events[0]["@timestamp"].endswith("Z")
        assert h.offsets() == {str(p): 11}

    async def test_batches_hold_one_file_and_respect_the_limits(self, logs: Path, data_dir: Path) -> None:
        (logs / "a.log").write_bytes(numbered(250, prefix="a"))
        (logs / "b.log").write_bytes(numbered(250, prefix="b"))
        cfg = file_config(include=[f"{logs}/*.log"], batch_max_lines=40, batch_max_bytes=300,
                          read_chunk_bytes=4096)
        h = await run_once(cfg, data_dir)
        assert len(h.events) == 500
        for batch in h.batches:
            assert len({e["source"]["path"] for e in batch.events}) == 1
            assert len(batch.events) <= 40
            assert sum(len(e["message"]) + 1 for e in batch.events) <= 300
        for name in ("a", "b"):
            assert ids_of(h.messages(str(logs / f"{name}.log"))) == list(range(250))

    async def test_a_second_once_run_over_unchanged_files_emits_nothing(self, logs: Path, data_dir: Path) -> None:
        (logs / "a.log").write_bytes(numbered(100))
        (logs / "b.log").write_bytes(b"no newline at the end")
        cfg = file_config(include=[f"{logs}/*.log"])
        first = await run_once(cfg, data_dir)
        assert len(first.events) == 101
        second = await run_once(cfg, data_dir)
        assert second.events == []

    async def test_resumes_after_appended_lines(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(10))
        cfg = file_config(include=[str(p)])
        await run_once(cfg, data_dir)
        append(p, numbered(5, start=10))
        h = await run_once(cfg, data_dir)
        assert ids_of(h.messages()) == list(range(10, 15))

    async def test_start_at_end_skips_history_of_files_present_at_startup(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(10))
        cfg = file_config(include=[str(p)], start_at="end")
        assert (await run_once(cfg, data_dir)).events == []
        append(p, numbered(2, start=10))
        assert ids_of((await run_once(cfg, data_dir)).messages()) == [10, 11]

    async def test_start_at_end_starts_on_a_line_boundary(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(10) + b"partial")
        cfg = file_config(include=[str(p)], start_at="end", poll_interval="50ms")
        async with live_source(cfg, data_dir) as live:
            await asyncio.sleep(0.2)
            append(p, b" line\n" + numbered(1, start=10))
            await live.wait_events(2)
        # The line being written at startup is read whole, the history before it is not.
        assert live.h.messages() == ["partial line", "line 000010"]

    async def test_start_at_end_does_not_apply_to_files_created_later(self, logs: Path, data_dir: Path) -> None:
        cfg = file_config(include=[f"{logs}/*.log"], start_at="end", scan_interval=0.1)
        async with live_source(cfg, data_dir) as live:
            await asyncio.sleep(0.2)
            (logs / "new.log").write_bytes(numbered(3))
            await live.wait_events(3)
        assert ids_of(live.h.messages()) == [0, 1, 2]

    async def test_ignore_older_skips_stale_files(self, logs: Path, data_dir: Path) -> None:
        (logs / "old.log").write_bytes(b"old\n")
        (logs / "new.log").write_bytes(b"new\n")
        past = time.time() - 7200
        os.utime(logs / "old.log", (past, past))
        h = await run_once(file_config(include=[f"{logs}/*.log"], ignore_older="1h"), data_dir)
        assert h.messages() == ["new"]

    async def test_empty_files_wait_until_they_hold_data(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.touch()
        cfg = file_config(include=[str(p)], scan_interval=0.1)
        async with live_source(cfg, data_dir) as live:
            await asyncio.sleep(0.3)
            assert live.source.open_files == 0
            p.write_bytes(b"now\n")
            await live.wait_events(1)
        assert live.h.messages() == ["now"]


class TestLines:
    async def test_a_10mb_line_is_truncated_and_tagged_and_the_next_line_is_intact(
            self, logs: Path, data_dir: Path) -> None:
        p = logs / "big.log"
        p.write_bytes(b"before\n" + b"x" * (10 * 1024 * 1024) + b"\n" + b"after\n")
        h = await run_once(file_config(include=[str(p)], max_line_bytes="1MiB"), data_dir)
        assert [len(m) for m in h.messages()] == [6, 1024 * 1024, 5]
        assert [e.get("tags") for e in h.events] == [None, ["_truncated"], None]
        assert h.events[2]["source"]["offset"] == 7 + 10 * 1024 * 1024 + 1
        assert h.offsets() == {str(p): p.stat().st_size}

    async def test_invalid_utf8_is_replaced_and_tagged(self, logs: Path, data_dir: Path) -> None:
        p = logs / "bin.log"
        p.write_bytes(b"ok\nlatin1 caf\xe9\n\xff\xfe\n")
        h = await run_once(file_config(include=[str(p)]), data_dir)
        assert h.messages() == ["ok", "latin1 caf\ufffd", "\ufffd\ufffd"]
        assert [e.get("tags") for e in h.events] == [None, ["_invalid_utf8"], ["_invalid_utf8"]]
        orjson.dumps(h.events)  # serialisable

    async def test_crlf_line_endings_are_stripped(self, logs: Path, data_dir: Path) -> None:
        p = logs / "dos.log"
        p.write_bytes(b"one\r\ntwo\r\n")
        assert (await run_once(file_config(include=[str(p)]), data_dir)).messages() == ["one", "two"]

    async def test_unterminated_last_line_is_emitted_with_once(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(b"done\nhalf")
        h = await run_once(file_config(include=[str(p)]), data_dir)
        assert h.messages() == ["done", "half"]
        assert h.offsets() == {str(p): 9}

    async def test_unterminated_last_line_waits_for_close_inactive(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(b"done\nhalf")
        cfg = file_config(include=[str(p)], close_inactive="0.6s", poll_interval="50ms")
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(1)
            t0 = time.monotonic()
            await asyncio.sleep(0.3)
            assert live.h.messages() == ["done"]  # the writer may still finish the line
            await live.wait_events(2, within=5)
            assert time.monotonic() - t0 >= 0.25
            await live.wait_for(lambda: live.source.open_files == 0, what="the idle file to close")
            # Closed while idle; it is reopened when it grows.
            append(p, b"\nmore\n")
            await live.source.checkpoint()
            live.source.scan()
            await live.wait_events(4, within=5)
        assert live.h.messages() == ["done", "half", "", "more"]


class TestCheckpoints:
    @pytest.mark.allow_unsettled
    async def test_checkpoint_advances_only_over_contiguously_settled_batches(
            self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(30))  # 12 bytes per line
        cfg = file_config(include=[str(p)], batch_max_lines=10)
        h = Harness(data_dir, once=True, auto_settle=False)
        src = make_source(cfg, data_dir)
        await src.run(h.ctx)
        assert [len(b.events) for b in h.batches] == [10, 10, 10]
        h.batches[1].receipt.settle()
        h.batches[2].receipt.settle(Status.REJECTED)  # dead-lettered counts as settled
        await src.aclose()
        assert h.offsets() == {str(p): 0}
        h.batches[0].receipt.settle()
        await src.aclose()
        assert h.offsets() == {str(p): 360}

    @pytest.mark.allow_unsettled
    async def test_unsettled_batches_are_replayed_after_a_restart(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(30))
        cfg = file_config(include=[str(p)], batch_max_lines=10)
        h = Harness(data_dir, once=True, auto_settle=False)
        src = make_source(cfg, data_dir)
        await src.run(h.ctx)
        h.batches[0].receipt.settle()
        h.batches[2].receipt.settle()
        await src.aclose()  # batch 1 never settles: as if the process died with it in flight
        again = await run_once(cfg, data_dir)
        assert ids_of(again.messages()) == list(range(10, 30))
        # The replay carries the same event ids: sinks can drop what they already have.
        first_ids = {e["event_id"] for b in h.batches[1:] for e in b.events}
        assert {e["event_id"] for e in again.events} == first_ids

    async def test_multiline_checkpoint_is_the_end_of_the_last_complete_record(
            self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        record1 = (b"2024-05-14 09:00:00,001 ERROR boom\n"
                   b"Traceback (most recent call last):\n"
                   b'  File "/app/x.py", line 3, in f\n'
                   b"    g()\n"
                   b"ValueError: bad value\n")
        record2 = b"2024-05-14 09:00:01,002 INFO fine\n"
        record3 = b"2024-05-14 09:00:02,003 ERROR again\nTraceback (most recent call last):\n"
        p.write_bytes(record1 + record2 + record3)
        cfg = file_config(include=[str(p)], multiline={"preset": "python_traceback", "timeout": "1h"})
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(2)
            await asyncio.sleep(0.2)
            await live.source.checkpoint()
            # Record 3 may still grow: the checkpoint stops at its start, the end of record 2.
            assert live.h.offsets() == {str(p): len(record1) + len(record2)}
            assert [e["source"]["offset"] for e in live.h.events] == [0, len(record1)]
            assert live.h.events[0]["message"] == record1.decode().rstrip("\n")
        # Shutdown does not emit the held record: it lies past the checkpoint and is read again.
        h = await run_once(cfg, data_dir)
        assert h.messages() == [record3.decode().rstrip("\n")]
        assert h.offsets() == {str(p): p.stat().st_size}

    async def test_source_resumes_from_the_backup_when_the_checkpoint_is_corrupt(
            self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(20))
        cfg = file_config(include=[str(p)])
        await run_once(cfg, data_dir)
        cp = data_dir / "checkpoints" / "src.json"
        doc = orjson.loads(cp.read_bytes())
        doc["files"][0]["offset"] = 12 * 15  # the previous good state: 15 lines shipped
        (cp.with_name("src.json.bak")).write_bytes(orjson.dumps(doc))
        cp.write_bytes(cp.read_bytes()[:40])  # torn write
        cp.with_name("src.json.tmp").write_bytes(b"{partial")
        h = await run_once(cfg, data_dir)
        assert ids_of(h.messages()) == list(range(15, 20))

    async def test_the_first_batch_to_settle_is_saved_at_once(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(5))
        cfg = file_config(include=[str(p)], checkpoint_interval="1h")
        async with live_source(cfg, data_dir) as live:
            # Written before reading (the file found at start-up), then again once the batch settled,
            # without waiting an hour for the interval.
            await live.wait_for(lambda: (data_dir / "checkpoints" / "src.json").exists()
                                and live.h.offsets().get(str(p)) == 60, what="the first settled batch on disk")

    async def test_a_failed_checkpoint_write_is_retried(
            self, logs: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch,
            caplog: pytest.LogCaptureFixture) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(5))
        cfg = file_config(include=[str(p)], checkpoint_interval="10ms")
        async with live_source(cfg, data_dir) as live:
            real_commit = live.source.store.commit
            failures: list[object] = []

            def flaky_commit(pending: object) -> None:
                if len(failures) < 2:
                    failures.append(pending)
                    raise OSError(28, "No space left on device")
                real_commit(pending)  # type: ignore[arg-type]

            monkeypatch.setattr(live.source.store, "commit", flaky_commit)
            await live.wait_events(5)
            await live.wait_for(lambda: (data_dir / "checkpoints" / "src.json").exists()
                                and live.h.offsets().get(str(p)) == 60, what="the retried checkpoint")
        assert len(failures) == 2
        assert sum("writing the checkpoint failed" in r.getMessage() for r in caplog.records) == 2

    async def test_checkpoint_is_written_on_the_timer(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(5))
        cfg = file_config(include=[str(p)], checkpoint_interval="100ms")
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(5)
            await live.wait_for(lambda: (data_dir / "checkpoints" / "src.json").exists()
                                and live.h.offsets().get(str(p)) == 60, what="the timed checkpoint")


class TestIdentity:
    async def test_a_renamed_file_is_not_read_again(self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(10))
        cfg = file_config(include=[f"{logs}/app.log*"])
        await run_once(cfg, data_dir)
        p.rename(logs / "app.log.1")
        assert (await run_once(cfg, data_dir)).events == []
        append(logs / "app.log.1", numbered(2, start=10))
        h = await run_once(cfg, data_dir)
        assert ids_of(h.messages()) == [10, 11]
        assert h.offsets() == {str(logs / "app.log.1"): 144}

    async def test_a_new_file_reusing_a_deleted_files_inode_is_read_from_zero(
            self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(10, prefix="old"))
        cfg = file_config(include=[str(p)])
        await run_once(cfg, data_dir)
        old_ino = p.stat().st_ino
        p.unlink()
        p.write_bytes(numbered(12, prefix="new"))  # ext4 hands the freed inode straight back
        reused = p.stat().st_ino == old_ino
        h = await run_once(cfg, data_dir)
        assert ids_of(h.messages()) == list(range(12)), f"inode reused: {reused}"
        assert all(m.startswith("new") for m in h.messages())
        # With the inode reused, the dead file's entry is replaced at once; otherwise it stays
        # until checkpoint_retention (nothing tells a deleted file from one renamed away).
        assert len(h.checkpoint()["files"]) == (1 if reused else 2)

    async def test_a_stale_entry_for_the_same_inode_does_not_apply(self, logs: Path, data_dir: Path) -> None:
        # Deterministic variant of inode reuse: the checkpoint holds an entry for this very
        # device+inode with other first bytes (the deleted file) and a later offset.
        p = logs / "app.log"
        p.write_bytes(numbered(8, prefix="new"))
        info = p.stat()
        cp = data_dir / "checkpoints"
        cp.mkdir()
        (cp / "src.json").write_bytes(orjson.dumps({"version": 1, "files": [{
            "key": f"{info.st_dev}:{info.st_ino}:0011223344556677", "dev": info.st_dev, "ino": info.st_ino,
            "fp_len": 40, "fp": "0011223344556677", "offset": 48, "path": str(p), "updated": 1.0,
            "seen": time.time()}]}))
        h = await run_once(file_config(include=[str(p)]), data_dir)
        assert ids_of(h.messages()) == list(range(8))

    async def test_truncated_while_stopped_is_read_from_the_start(self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(10, prefix="old"))
        cfg = file_config(include=[str(p)])
        await run_once(cfg, data_dir)
        rewrite_in_place(p, numbered(3, prefix="new"))  # copytruncate: same inode, emptied, then written again
        h = await run_once(cfg, data_dir)
        assert h.messages() == ["new 000000", "new 000001", "new 000002"]

    async def test_copytruncate_while_reading_starts_over_at_zero(self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(50, prefix="gen1"))
        cfg = file_config(include=[str(p)], poll_interval="50ms")
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(50)
            shutil.copy(p, logs / "app.log.1")  # the rotated copy is not matched by include
            os.truncate(p, 0)
            await asyncio.sleep(0.3)
            append(p, numbered(20, prefix="gen2"))
            await live.wait_events(70)
            await asyncio.sleep(0.3)
        msgs = live.h.messages()
        assert msgs == [f"gen1 {i:06d}" for i in range(50)] + [f"gen2 {i:06d}" for i in range(20)]
        # The new content has its own identity (its own event ids), offsets from 0 again.
        assert live.h.events[50]["source"]["offset"] == 0
        assert live.h.events[50]["event_id"] != live.h.events[0]["event_id"]
        assert live.h.offsets() == {str(p): 20 * 12}

    async def test_after_copytruncate_the_checkpoint_waits_for_the_new_content_to_settle(
            self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(50, prefix="gen1"))
        cfg = file_config(include=[str(p)], poll_interval="50ms")
        async with live_source(cfg, data_dir, auto_settle=False) as live:
            await live.wait_events(50)
            live.h.settle_all()
            os.truncate(p, 0)
            append(p, numbered(20, prefix="gen2"))
            await live.wait_events(70)
            await live.source.checkpoint()
            # Read and emitted, but not settled: a crash now must read the new content again.
            assert live.h.offsets() == {str(p): 0}
            live.h.settle_all()
            await live.source.checkpoint()
            assert live.h.offsets() == {str(p): 20 * 12}

    async def test_rewritten_past_the_offset_is_caught_by_the_fingerprint(self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(5, prefix="aaaa"))
        cfg = file_config(include=[str(p)], poll_interval="50ms")
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(5)
            # Truncated and rewritten with MORE bytes than we had read, before we looked again:
            # the size alone cannot tell; the first bytes can.
            rewrite_in_place(p, numbered(10, prefix="bbbb"))
            await live.wait_events(15)
        assert live.h.messages()[5:] == [f"bbbb {i:06d}" for i in range(10)]

    async def test_rewritten_to_exactly_the_same_size_is_caught(self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(5, prefix="gen1"))
        cfg = file_config(include=[str(p)], poll_interval="50ms")
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(5)
            await asyncio.sleep(0.1)
            rewrite_in_place(p, numbered(5, prefix="gen2"))  # copytruncate, then the same number of bytes again
            await live.wait_events(10)
        assert live.h.messages()[5:] == [f"gen2 {i:06d}" for i in range(5)]

    async def test_rotation_by_rename_reads_the_old_file_to_its_end_and_the_new_from_zero(
            self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(10))
        cfg = file_config(include=[str(p)], scan_interval=0.1, poll_interval="50ms")
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(10)
            rotate_by_rename(p, logs / "app.log.1", fresh=numbered(5, start=20), late=numbered(10, start=10))
            await live.wait_events(25)
            await asyncio.sleep(0.3)
        assert sorted(ids_of(live.h.messages())) == list(range(25))
        assert live.h.offsets()[str(p)] == 60

    async def test_deleted_while_open_is_read_to_its_end_then_closed(self, logs: Path, data_dir: Path) -> None:
        p = logs / "app.log"
        p.write_bytes(numbered(5000))
        gate = asyncio.Event()
        cfg = file_config(include=[str(p)], read_chunk_bytes=4096, poll_interval="50ms")
        async with live_source(cfg, data_dir) as live:
            original = live.h.ctx._emit

            async def slow_emit(batch: Batch) -> None:
                await gate.wait()
                await original(batch)

            live.h.ctx._emit = slow_emit
            await asyncio.sleep(0.2)
            p.unlink()
            gate.set()
            await live.wait_events(5000)
            await live.wait_for(lambda: live.source.open_files == 0, what="the deleted file to close")
        assert ids_of(live.h.messages()) == list(range(5000))

    async def test_symlinks_are_followed_and_read_once(self, tmp_path: Path, logs: Path, data_dir: Path) -> None:
        target_dir = tmp_path / "pods"
        target_dir.mkdir()
        target = target_dir / "0.log"
        target.write_bytes(numbered(3))
        (logs / "link.log").symlink_to(target)
        (logs / "link2.log").symlink_to(target)  # two links, one file
        cfg = file_config(include=[f"{logs}/*.log", f"{target_dir}/*.log"])
        h = await run_once(cfg, data_dir)
        assert ids_of(h.messages()) == [0, 1, 2]
        assert {e["source"]["path"] for e in h.events} == {str(logs / "link.log")}
        entry = h.checkpoint()["files"][0]
        assert (entry["dev"], entry["ino"]) == (target.stat().st_dev, target.stat().st_ino)


class TestManyFiles:
    async def test_2000_small_files_are_all_read(self, logs: Path, data_dir: Path) -> None:
        for i in range(2000):
            (logs / f"f{i:04d}.log").write_bytes(b"file %04d line 1\nfile %04d line 2\n" % (i, i))
        cfg = file_config(include=[f"{logs}/*.log"], max_open_files=300)
        h = await run_once(cfg, data_dir)
        assert len(h.events) == 4000
        assert len({e["source"]["path"] for e in h.events}) == 2000
        assert len(h.checkpoint()["files"]) == 2000
        assert (await run_once(cfg, data_dir)).events == []

    async def test_more_files_than_max_open_files_in_follow_mode(self, logs: Path, data_dir: Path) -> None:
        for i in range(60):
            (logs / f"f{i:02d}.log").write_bytes(b"first %02d\n" % i)
        cfg = file_config(include=[f"{logs}/*.log"], max_open_files=10, poll_interval="50ms", scan_interval=0.2)
        async with live_source(cfg, data_dir) as live:
            await live.wait_events(60)
            assert live.source.open_files <= 10
            for i in range(60):
                append(logs / f"f{i:02d}.log", b"second %02d\n" % i)
            await live.wait_events(120, within=15)
            assert live.source.open_files <= 10
        assert sorted(live.h.messages()) == sorted([f"first {i:02d}" for i in range(60)]
                                                   + [f"second {i:02d}" for i in range(60)])

    async def test_a_busy_file_does_not_starve_the_others(self, logs: Path, data_dir: Path) -> None:
        (logs / "busy.log").write_bytes(numbered(100_000, prefix="busy"))  # 1.3 MB
        for i in range(20):
            (logs / f"small{i:02d}.log").write_bytes(numbered(3, prefix=f"s{i:02d}"))
        cfg = file_config(include=[f"{logs}/*.log"], read_chunk_bytes=16384)
        h = await run_once(cfg, data_dir)
        order = [e["source"]["path"].endswith("busy.log") for e in h.events]
        busy_total = order.count(True)
        last_small = max(i for i, busy in enumerate(order) if not busy)
        busy_before = order[:last_small].count(True)
        # Round robin, one chunk per file per turn: every small file is done within the first
        # turn, while the busy file has had at most one or two chunks (~1.3k of 100k lines).
        assert busy_total == 100_000
        assert busy_before <= 2 * 16384 // 12


class TestDiscoveryAndMetrics:
    async def test_filesystem_events_find_new_files_before_the_rescan(self, logs: Path, data_dir: Path) -> None:
        cfg = file_config(include=[f"{logs}/*.log"], watch=True, scan_interval="1h")
        async with live_source(cfg, data_dir) as live:
            await asyncio.sleep(0.5)  # the watcher is up
            (logs / "late.log").write_bytes(b"hello\n")
            await live.wait_events(1, within=10)
        assert live.h.messages() == ["hello"]

    async def test_gauges_report_lag_checkpoint_age_and_open_files(self, logs: Path, data_dir: Path) -> None:
        p = logs / "a.log"
        p.write_bytes(numbered(10))
        cfg = file_config(include=[str(p)])
        async with live_source(cfg, data_dir, auto_settle=False) as live:
            await live.wait_events(10)
            text = _scrape(live.h)
            assert f'pipeline_file_lag_bytes{{component="src",path="{p}"}} 120.0' in text
            assert 'pipeline_open_files{component="src"} 1.0' in text
            live.h.settle_all()
            await asyncio.sleep(0.05)
            assert f'pipeline_file_lag_bytes{{component="src",path="{p}"}} 0.0' in _scrape(live.h)
            assert 'pipeline_checkpoint_age_seconds{component="src"}' in _scrape(live.h)


def _scrape(h: Harness) -> str:
    from prometheus_client import generate_latest

    return generate_latest(h.metrics.registry).decode()


class TestConfig:
    def test_every_problem_names_the_component_and_key(self, tmp_path: Path) -> None:
        from pipeline.config import load_config
        from pipeline.errors import ConfigError

        cfg = tmp_path / "bad.yaml"
        cfg.write_text(
            "sources:\n"
            '  a: {type: file, include: ["/x/*.log"], multiline: {pattern: "([unclosed"}}\n'
            '  b: {type: file, include: ["/x/*.log"], multiline: {preset: python_traceback, pattern: "^x"}}\n'
            '  c: {type: container, read_chunk_bytes: "12 parsecs", start_at: middle}\n'
            "  d: {type: file}\n"
            "sinks:\n"
            "  out: {type: blackhole, inputs: [a, b, c, d]}\n")
        with pytest.raises(ConfigError) as err:
            load_config(cfg)
        keys = sorted(p.split(": ")[1] for p in err.value.problems)
        assert keys == ["sources.a.multiline", "sources.b.multiline", "sources.c.read_chunk_bytes",
                        "sources.c.start_at", "sources.d.include"]

    def test_preset_keys_can_be_overridden(self) -> None:
        joiner = file_config(include=["/x"], multiline={"preset": "java_stacktrace", "max_lines": 7}).multiline
        assert joiner is not None
        built = joiner.build()
        assert built.max_lines == 7 and built.negate is False and "Caused by" in built.pattern


class TestLagAndBacklog:
    """What /status and --once progress read: bytes behind per file, bytes not read yet."""

    async def test_lag_follows_settlement_and_backlog_follows_reading(self, tmp_path: Path) -> None:
        logs = tmp_path / "logs"
        logs.mkdir()
        line = b"x" * 99 + b"\n"
        (logs / "a.log").write_bytes(line * 50)
        cfg = file_config(include=[str(logs / "*.log")], start_at="beginning", read_chunk_bytes=1000)
        src = make_source(cfg, tmp_path / "data")
        assert src.backlog_bytes() == 0  # nothing discovered yet
        async with live_source(cfg, tmp_path / "data", auto_settle=False) as live:
            src = live.source
            await live.wait_events(50)
            assert src.backlog_bytes() == 0  # everything read
            unit, lags = src.lag()
            assert (unit, lags) == ("bytes", {str(logs / "a.log"): 5000})  # read, not yet released
            live.h.settle_all()
            await live.wait_for(lambda: src.lag()[1][str(logs / "a.log")] == 0, what="released")
            append(logs / "a.log", line * 3)
            await live.wait_events(53)
            assert src.lag()[1][str(logs / "a.log")] == 300
