"""The dead-letter queue holds every event a sink rejected, also one no sink could encode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.dlq import DeadLetterQueue


def test_records_carry_component_reason_and_event(tmp_path: Path) -> None:
    dlq = DeadLetterQueue(tmp_path / "dlq")
    assert dlq.write("es", [{"event_id": "a"}, {"event_id": "b"}], ["mapping", "too large"]) == 2
    records = dlq.read_all()
    assert [(r["component"], r["reason"], r["event"]) for r in records] == [
        ("es", "mapping", {"event_id": "a"}),
        ("es", "too large", {"event_id": "b"}),
    ]


def test_events_orjson_cannot_encode_are_kept(tmp_path: Path) -> None:
    # A grok `:int` capture of a long number yields an integer beyond 64 bits: sinks reject such an
    # event as unencodable, and the DLQ must then hold it rather than fail the whole send.
    cycle: dict[str, Any] = {"event_id": "c"}
    cycle["self"] = cycle
    events: list[dict[str, Any]] = [
        {"event_id": "big", "n": 2**70},
        {"event_id": "surrogate", "message": "a\ud800b"},
        {"event_id": "tuple-key", "m": {(1, 2): "x"}},
        cycle,
    ]
    dlq = DeadLetterQueue(tmp_path / "dlq")
    assert dlq.write("kafka", events, "cannot encode") == 4
    lines = dlq.path_for().read_text().splitlines()
    assert json.loads(lines[0])["event"] == {"event_id": "big", "n": 2**70}  # exact, not a float
    assert json.loads(lines[1])["event"]["message"] == "a\ud800b"
    assert "(1, 2): 'x'" in json.loads(lines[2])["event"]
    assert json.loads(lines[3])["event"].startswith("{'event_id': 'c'")
    assert [r["reason"] for r in dlq.read_all()] == ["cannot encode"] * 4
