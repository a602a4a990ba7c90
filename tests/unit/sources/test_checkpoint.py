"""The checkpoint store: atomic writes, crash-case loading, pruning."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from pipeline import checkpoint
from pipeline.checkpoint import VERSION, CheckpointError, CheckpointStore, Entry

CASES = Path(__file__).resolve().parents[2] / "data" / "checkpoints"


def _entry(key: str = "1:2:ff", offset: int = 10, seen: float = 100.0) -> Entry:
    dev, ino, fp = key.split(":")
    return Entry(key, int(dev), int(ino), 4, fp, offset, "/x.log", 1.0, seen)


def _case(tmp_path: Path, case: str) -> CheckpointStore:
    d = tmp_path / "checkpoints"
    shutil.copytree(CASES / case, d)
    return CheckpointStore(d / "app.json", "app")


class TestPersistence:
    def test_write_then_load_round_trips(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "cp" / "app.json", "app")
        store.put(_entry("1:2:aa", 10))
        store.put(_entry("1:3:bb", 20))
        store.flush()
        again = CheckpointStore(tmp_path / "cp" / "app.json", "app")
        again.load()
        assert {k: e.offset for k, e in again.entries.items()} == {"1:2:aa": 10, "1:3:bb": 20}
        assert [e.key for e in again.by_inode(1, 3)] == ["1:3:bb"]
        assert again.loaded_from == "main"

    def test_write_keeps_the_previous_state_as_backup_and_no_tmp(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "app.json", "app")
        store.put(_entry(offset=10))
        store.flush()
        store.entries["1:2:ff"].offset = 99
        store.flush()
        doc = orjson.loads((tmp_path / "app.json").read_bytes())
        bak = orjson.loads((tmp_path / "app.json.bak").read_bytes())
        assert doc["version"] == VERSION
        assert doc["files"][0]["offset"] == 99 and bak["files"][0]["offset"] == 10
        assert not (tmp_path / "app.json.tmp").exists()

    def test_snapshot_clears_dirty(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "app.json", "app")
        store.put(_entry())
        assert store.dirty
        store.snapshot()
        assert not store.dirty

    def test_missing_file_starts_empty(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "none.json", "app")
        store.load()
        assert store.entries == {} and store.loaded_from is None


class TestCrashCases:
    @pytest.mark.parametrize(("case", "source"), [
        pytest.param("tmp_leftover", "main", id="tmp-leftover"),
        pytest.param("truncated_json", "bak", id="truncated-json"),
        pytest.param("unknown_version", "bak", id="unknown-version"),
        pytest.param("missing_main", "bak", id="crash-between-renames"),
        pytest.param("journal_torn_tail", "main", id="journal-torn-tail"),
        pytest.param("journal_not_emptied", "main", id="journal-not-emptied-after-a-snapshot"),
        pytest.param("journal_over_backup", "bak", id="journal-over-the-backup"),
    ])
    def test_loads_the_last_valid_state(self, tmp_path: Path, case: str, source: str) -> None:
        store = _case(tmp_path, case)
        store.load()
        assert store.loaded_from == source
        assert {e.path: e.offset for e in store.entries.values()} == {
            "/var/log/app/orders.log": 52011, "/var/log/app/billing.log": 311}
        assert not store.tmp_path.exists()  # a leftover tmp is never trusted

    def test_garbage_without_backup_starts_empty(self, tmp_path: Path) -> None:
        store = _case(tmp_path, "garbage_no_backup")
        store.load()
        assert store.entries == {} and store.loaded_from is None

    def test_unknown_version_without_backup_is_refused(self, tmp_path: Path) -> None:
        store = _case(tmp_path, "unknown_version_no_backup")
        with pytest.raises(CheckpointError, match="version 2"):
            store.load()

    def test_a_write_after_recovery_is_valid_again(self, tmp_path: Path) -> None:
        store = _case(tmp_path, "truncated_json")
        store.load()
        store.flush()
        again = CheckpointStore(store.path, "app")
        again.load()
        assert again.loaded_from == "main" and len(again.entries) == 2


class TestJournal:
    def test_a_write_appends_only_what_changed_and_a_load_replays_it(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "app.json", "app")
        store.put(_entry("1:2:aa", 10))
        store.put(_entry("1:3:bb", 20))
        first = store.prepare()
        assert first is not None and first.snapshot  # the first write after start-up is whole
        store.commit(first)
        store.entries["1:3:bb"].offset = 25
        store.touch(store.entries["1:3:bb"])
        store.remove("1:2:aa")
        pending = store.prepare()
        assert pending is not None and not pending.snapshot
        assert orjson.loads(pending.data) == {"seq": 1, "put": [_entry("1:3:bb", 25).to_json()], "rm": ["1:2:aa"]}
        store.commit(pending)
        assert store.prepare() is None  # nothing changed since
        snapshot = orjson.loads(store.path.read_bytes())
        assert {f["key"]: f["offset"] for f in snapshot["files"]} == {"1:2:aa": 10, "1:3:bb": 20}
        again = CheckpointStore(store.path, "app")
        again.load()
        assert {k: e.offset for k, e in again.entries.items()} == {"1:3:bb": 25}
        assert again.by_inode(1, 2) == [] and again.seq == 1

    def test_a_snapshot_empties_the_journal_and_records_its_seq(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "app.json", "app")
        store.put(_entry(offset=10))
        store.flush()
        for offset in (11, 12):
            store.entries["1:2:ff"].offset = offset
            store.touch(store.entries["1:2:ff"])
            pending = store.prepare()
            assert pending is not None
            store.commit(pending)
        assert store.journal.path.read_bytes().count(b"\n") == 2
        store.flush()
        assert store.journal.path.read_bytes() == b""
        assert orjson.loads(store.path.read_bytes())["seq"] == 2

    def test_the_journal_is_compacted_once_it_outgrows_the_snapshot(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(checkpoint, "COMPACT_BYTES", 1000)
        store = CheckpointStore(tmp_path / "app.json", "app")
        store.put(_entry(offset=0))
        store.flush()
        kinds = []
        for offset in range(1, 16):
            store.entries["1:2:ff"].offset = offset
            store.touch(store.entries["1:2:ff"])
            journal_bytes = store.journal.size
            pending = store.prepare()
            assert pending is not None
            store.commit(pending)
            # The snapshot is smaller than 1000 bytes here, so the journal is compacted past 1000.
            kinds.append((journal_bytes >= 1000, pending.snapshot))
        assert all(due == snapshot for due, snapshot in kinds)
        assert 1 <= sum(snapshot for _, snapshot in kinds) < len(kinds)
        again = CheckpointStore(store.path, "app")
        again.load()
        assert again.entries["1:2:ff"].offset == 15

    def test_a_failed_write_is_retried_as_a_whole_snapshot(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        store = CheckpointStore(tmp_path / "app.json", "app")
        store.put(_entry("1:2:aa", 10))
        store.put(_entry("1:3:bb", 20))
        store.flush()
        store.entries["1:2:aa"].offset = 15
        store.touch(store.entries["1:2:aa"])
        pending = store.prepare()
        assert pending is not None and not pending.snapshot

        def disk_full(data: bytes) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(store.journal, "append", disk_full)
        with pytest.raises(OSError):
            store.commit(pending)
        store.failed()
        assert store.dirty  # what the lost write carried is still to be written
        retry = store.prepare()
        assert retry is not None and retry.snapshot
        store.commit(retry)
        again = CheckpointStore(store.path, "app")
        again.load()
        assert {k: e.offset for k, e in again.entries.items()} == {"1:2:aa": 15, "1:3:bb": 20}

    def test_read_changes_no_file(self, tmp_path: Path) -> None:
        store = _case(tmp_path, "journal_torn_tail")
        before = {p.name: p.read_bytes() for p in store.path.parent.iterdir()}
        store.read()
        assert store.entries["2049:1001:aa11aa11aa11aa11"].offset == 52011
        assert {p.name: p.read_bytes() for p in store.path.parent.iterdir()} == before


class TestEntries:
    def test_prune_drops_entries_not_seen_within_retention(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "app.json", "app", retention=50)
        store.put(_entry("1:2:aa", seen=100))
        store.put(_entry("1:3:bb", seen=10))
        store.put(_entry("1:4:cc", seen=10))
        assert store.prune(now=120, keep={"1:4:cc"}) == 1
        assert set(store.entries) == {"1:2:aa", "1:4:cc"}
        assert store.by_inode(1, 3) == []

    def test_replacing_an_entry_keeps_the_inode_index_consistent(self, tmp_path: Path) -> None:
        store = CheckpointStore(tmp_path / "app.json", "app")
        store.put(_entry("1:2:aa", 1))
        store.put(_entry("1:2:aa", 2))
        assert [e.offset for e in store.by_inode(1, 2)] == [2]
        store.remove("1:2:aa")
        assert store.by_inode(1, 2) == []

    def test_invalid_entry_makes_the_file_corrupt(self, tmp_path: Path) -> None:
        p = tmp_path / "app.json"
        p.write_bytes(orjson.dumps({"version": VERSION, "files": [{"key": "x", "offset": -1}]}))
        store = CheckpointStore(p, "app")
        store.load()
        assert store.entries == {}


async def test_a_cancelled_checkpoint_write_finishes_before_the_next_can_start() -> None:
    # A start failure cancels the source while its writer is in a thread; the final write in
    # aclose() must not run beside it on the same temporary file.
    import asyncio
    import threading

    from pipeline.atomicfile import write_in_thread

    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def slow_write(what: str) -> None:
        started.set()
        release.wait(5)
        finished.append(what)

    task = asyncio.ensure_future(write_in_thread(slow_write, "first"))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done()  # still waiting for the thread, not cancelled away from it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["first"]
