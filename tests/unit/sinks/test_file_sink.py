"""`file` sink: JSON lines per rendered path, and a clear outcome for what cannot be written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from sinks.file import FileSink, FileSinkConfig


def make_sink(path: str, **overrides: Any) -> FileSink:
    config = FileSinkConfig.model_validate({"type": "file", "inputs": ["src"], "path": path, **overrides})
    return FileSink("out", config)


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


class TestWrite:
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
