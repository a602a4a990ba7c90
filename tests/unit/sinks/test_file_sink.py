"""`file` sink: JSON lines per rendered path, and a clear outcome for what cannot be written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.errors import TransientError
from pipeline.sink import Outcome
from sinks.file import FileSink, FileSinkConfig


def make_sink(path: str, **overrides: Any) -> FileSink:
    config = FileSinkConfig.model_validate({"type": "file", "inputs": ["src"], "path": path, **overrides})
    return FileSink("out", config)


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


class TestWrite:
    def test_only_a_single_path_takes_encoded_events_as_they_are(self, tmp_path: Path) -> None:
        # The driver then hands JSON lines from the batch path straight over; a path per event reads fields.
        assert make_sink(str(tmp_path / "out.jsonl")).accepts_encoded is True
        assert make_sink(str(tmp_path / "{log_type}.jsonl")).accepts_encoded is False

    async def test_events_go_to_their_rendered_paths(self, tmp_path: Path) -> None:
        sink = make_sink(str(tmp_path / "{log_type}.jsonl"))
        outcome = await sink.send([{"event_id": str(i), "log_type": ("a", "b")[i % 2]} for i in range(4)])
        await sink.aclose()
        assert outcome.retry == [] and outcome.rejected == []
        assert [e["event_id"] for e in lines(tmp_path / "a.jsonl")] == ["0", "2"]
        assert [e["event_id"] for e in lines(tmp_path / "b.jsonl")] == ["1", "3"]

    async def test_an_event_that_cannot_be_encoded_is_rejected_alone(self, tmp_path: Path) -> None:
        # Before: the send raised, the driver retried the same batch forever and the pipeline stalled.
        sink = make_sink(str(tmp_path / "out.jsonl"))
        events = [{"event_id": "a"}, {"event_id": "b", "n": 2**70}, {"event_id": "c"}]
        outcome = await sink.send(events)
        await sink.aclose()
        assert outcome.retry == []
        assert outcome.rejected == [(1, "cannot encode the event as JSON: Integer exceeds 64-bit range")]
        assert [e["event_id"] for e in lines(tmp_path / "out.jsonl")] == ["a", "c"]


class TestPerPathOutcomes:
    async def test_a_path_that_cannot_be_written_now_holds_back_only_its_events(self, tmp_path: Path) -> None:
        (tmp_path / "b").write_text("a file where the folder should be")
        sink = make_sink(str(tmp_path / "{log_type}" / "out.jsonl"))
        events = [{"event_id": str(i), "log_type": ("a", "b")[i % 2]} for i in range(6)]
        outcome = await sink.send(events)
        # Before: the send raised, and its retry appended the events of path a a second time.
        assert outcome.retry == [1, 3, 5] and outcome.rejected == [] and outcome.retry_reason == "ENOTDIR"
        assert [e["event_id"] for e in lines(tmp_path / "a" / "out.jsonl")] == ["0", "2", "4"]
        (tmp_path / "b").unlink()
        assert await sink.send([events[i] for i in outcome.retry]) == Outcome()
        await sink.aclose()
        assert [e["event_id"] for e in lines(tmp_path / "a" / "out.jsonl")] == ["0", "2", "4"]
        assert [e["event_id"] for e in lines(tmp_path / "b" / "out.jsonl")] == ["1", "3", "5"]

    async def test_nothing_written_raises_to_retry_the_whole_send(self, tmp_path: Path) -> None:
        (tmp_path / "blocked").write_text("")
        sink = make_sink(str(tmp_path / "blocked" / "{log_type}.jsonl"))
        with pytest.raises(TransientError, match=r"cannot write .*/blocked/a.jsonl: Not a directory \(ENOTDIR\)"):
            await sink.send([{"log_type": "a"}, {"log_type": "b"}])
        await sink.aclose()

    @pytest.mark.parametrize(("log_type", "reason"), [
        pytest.param("x" * 300, "File name too long (ENAMETOOLONG)", id="name-too-long"),
    ])
    async def test_a_name_no_file_system_takes_is_dead_lettered(self, tmp_path: Path, log_type: str,
                                                                reason: str) -> None:
        # Before: retried forever, and with it every other event of the batch.
        sink = make_sink(str(tmp_path / "{log_type}.jsonl"))
        outcome = await sink.send([{"event_id": "ok", "log_type": "a"}, {"event_id": "bad", "log_type": log_type}])
        await sink.aclose()
        assert outcome.retry == []
        assert [i for i, _ in outcome.rejected] == [1]
        assert outcome.rejected[0][1].startswith("cannot write ") and reason in outcome.rejected[0][1]
        assert [e["event_id"] for e in lines(tmp_path / "a.jsonl")] == ["ok"]


class TestPathsFromFields:
    @pytest.mark.parametrize(("log_type", "name"), [
        pytest.param("../../escaped", ".._.._escaped.jsonl", id="walk-up"),
        pytest.param("..", "_.jsonl", id="parent"),
        pytest.param("/etc/x", "_etc_x.jsonl", id="absolute"),
        pytest.param("a\x00b", "a_b.jsonl", id="nul"),
        pytest.param("v1.2", "v1.2.jsonl", id="dots-inside-are-fine"),
    ])
    async def test_a_field_value_never_leaves_its_folder(self, tmp_path: Path, log_type: str, name: str) -> None:
        out = tmp_path / "a" / "b"
        sink = make_sink(str(out / "{log_type}.jsonl"))
        assert await sink.send([{"event_id": "x", "log_type": log_type}]) == Outcome()
        await sink.aclose()
        assert files(tmp_path) == [out / name]
