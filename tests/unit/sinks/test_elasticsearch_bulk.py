"""sinks/elasticsearch/bulk.py: NDJSON request building and per-item response classification."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.template import Template
from sinks.elasticsearch.bulk import (
    BulkEncoder,
    BulkResponseError,
    BulkResponseSerializer,
    IndexNamer,
    ItemOutcomes,
    classify,
    item_reason,
)


def namer(source: str = "logs-{log_type}-%Y.%m.%d") -> IndexNamer:
    return IndexNamer(Template(source, missing="unknown", strict_dates=True))


def event(i: int, **extra: Any) -> dict[str, Any]:
    return {"@timestamp": f"2024-03-0{1 + i % 3}T10:00:00.000Z", "event_id": f"id-{i}", "log_type": "access",
            "message": f"line {i}", **extra}


def decode(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n")
    return [orjson.loads(line) for line in body.split(b"\n")[:-1]]


class TestEncoder:
    def test_create_actions_with_event_id_and_daily_index(self) -> None:
        events = [event(i) for i in range(3)]
        chunks, rejected = BulkEncoder(namer(), 10 * 1024 * 1024).encode(events)
        assert rejected == []
        assert len(chunks) == 1
        lines = decode(chunks[0].body)
        assert lines[0] == {"create": {"_index": "logs-access-2024.03.01", "_id": "id-0"}}
        assert lines[1] == events[0]
        assert lines[2] == {"create": {"_index": "logs-access-2024.03.02", "_id": "id-1"}}
        assert lines[4] == {"create": {"_index": "logs-access-2024.03.03", "_id": "id-2"}}
        assert chunks[0].positions == [0, 1, 2]

    def test_event_without_id_gets_no_id(self) -> None:
        chunks, _ = BulkEncoder(namer(), 1 << 20).encode([{"@timestamp": "2024-03-01T00:00:00.000Z",
                                                             "message": "x"}])
        assert decode(chunks[0].body)[0] == {"create": {"_index": "logs-unknown-2024.03.01"}}

    def test_a_missing_log_type_gets_the_default_and_other_fields_unknown(self) -> None:
        template = Template("logs-{log_type}-{service}-%Y", missing="unknown", strict_dates=True)
        encoder = BulkEncoder(IndexNamer(template, {"log_type": "application"}), 1 << 20)
        events = [{"@timestamp": "2024-03-01T00:00:00.000Z", "message": "x"}, event(1, service="Shop")]
        chunks, _ = encoder.encode(events * 2)  # twice: the cached names too
        names = [a["create"]["_index"] for a in decode(chunks[0].body)[0::2]]
        assert names == ["logs-application-unknown-2024", "logs-access-shop-2024"] * 2
        assert "log_type" not in events[0]

    def test_index_is_lowercased_and_non_string_ids_are_text(self) -> None:
        chunks, _ = BulkEncoder(namer(), 1 << 20).encode([event(0, log_type="Access", event_id=42)])
        assert decode(chunks[0].body)[0] == {"create": {"_index": "logs-access-2024.03.01", "_id": "42"}}

    def test_dotted_fields_render_without_cache(self) -> None:
        source = "k8s-{kubernetes.namespace}-%Y"
        chunks, _ = BulkEncoder(namer(source), 1 << 20).encode(
            [event(0, kubernetes={"namespace": "Prod"}), event(1, kubernetes={"namespace": "dev"})])
        lines = decode(chunks[0].body)
        assert lines[0]["create"]["_index"] == "k8s-prod-2024"
        assert lines[2]["create"]["_index"] == "k8s-dev-2024"

    def test_cache_does_not_mix_days_or_types(self) -> None:
        encoder = BulkEncoder(namer(), 1 << 20)
        events = [event(0), event(0, log_type="error"), event(1), event(0)]
        chunks, _ = encoder.encode(events)
        names = [line["create"]["_index"] for line in decode(chunks[0].body)[::2]]
        assert names == ["logs-access-2024.03.01", "logs-error-2024.03.01", "logs-access-2024.03.02",
                         "logs-access-2024.03.01"]

    def test_splits_at_max_bytes_keeping_every_event_once(self) -> None:
        events = [event(i, message="x" * 200) for i in range(50)]
        limit = 2000
        chunks, _ = BulkEncoder(namer(), limit).encode(events)
        assert len(chunks) > 1
        assert all(len(c.body) <= limit for c in chunks)
        assert [p for c in chunks for p in c.positions] == list(range(50))
        docs = [line for c in chunks for line in decode(c.body)[1::2]]
        assert docs == events

    def test_an_action_larger_than_the_limit_goes_alone(self) -> None:
        events = [event(0), event(1, message="y" * 5000), event(2)]
        chunks, _ = BulkEncoder(namer(), 1000).encode(events)
        assert [c.positions for c in chunks] == [[0], [1], [2]]

    def test_a_document_over_max_doc_bytes_has_its_message_cut(self) -> None:
        events = [event(0), event(1, message="y" * 5000), event(2, blob="z" * 5000)]
        chunks, rejected = BulkEncoder(namer(), 1 << 20, max_doc_bytes=2000).encode(events)
        assert [c.positions for c in chunks] == [[0, 1]] and chunks[0].truncated == 1
        doc = decode(chunks[0].body)[3]
        assert doc["tags"] == ["_truncated"] and events[1]["message"].startswith(doc["message"])
        assert 1900 < len(orjson.dumps(doc)) <= 2000
        assert "tags" not in events[1]
        assert rejected == [(2, rejected[0][1])] and rejected[0][1].startswith("document_too_large")

    def test_unserialisable_event_is_rejected_alone(self) -> None:
        events = [event(0), event(1, bad="\ud800"), event(2)]
        chunks, rejected = BulkEncoder(namer(), 1 << 20).encode(events, positions=[10, 11, 12])
        assert chunks[0].positions == [10, 12]
        assert rejected[0][0] == 11 and rejected[0][1].startswith("serialization_error")

    def test_does_not_mutate_events(self) -> None:
        events = [event(0, tags=["a"])]
        before = orjson.dumps(events)
        BulkEncoder(namer(), 1 << 20).encode(events)
        assert orjson.dumps(events) == before

    def test_missing_timestamp_uses_now(self) -> None:
        chunks, _ = BulkEncoder(namer("logs-%Y"), 1 << 20).encode([{"message": "x"}])
        index = decode(chunks[0].body)[0]["create"]["_index"]
        assert index.startswith("logs-20") and len(index) == len("logs-2024")


def item(status: int, etype: str | None = None, reason: str = "r", **error: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"status": status}
    if etype:
        result["error"] = {"type": etype, "reason": reason, **error}
    return {"create": result}


class TestClassify:
    def test_no_errors_means_all_created(self) -> None:
        out = ItemOutcomes()
        classify({"errors": False, "items": [item(201), item(201)]}, [3, 4], out)
        assert (out.created, out.retry, out.rejected) == (2, [], [])

    @pytest.mark.parametrize(("status", "etype"), [
        pytest.param(429, "es_rejected_execution_exception", id="429-rejected-execution"),
        pytest.param(429, "circuit_breaking_exception", id="429-circuit-breaker"),
        pytest.param(503, "unavailable_shards_exception", id="503"),
        pytest.param(502, "bad_gateway", id="502"),
        pytest.param(504, "timeout", id="504"),
        pytest.param(500, "es_rejected_execution_exception", id="500-rejected-execution-by-type"),
    ])
    def test_retryable_items(self, status: int, etype: str) -> None:
        out = ItemOutcomes()
        classify({"errors": True, "items": [item(201), item(status, etype)]}, [7, 8], out)
        assert out.created == 1
        assert out.retry == [8]
        assert out.rejected == []
        assert out.retry_reason == etype

    @pytest.mark.parametrize(("status", "etype"), [
        pytest.param(400, "document_parsing_exception", id="document-parsing"),
        pytest.param(400, "mapper_parsing_exception", id="mapper-parsing"),
        pytest.param(400, "illegal_argument_exception", id="illegal-argument"),
        pytest.param(400, "invalid_index_name_exception", id="invalid-index"),
        pytest.param(500, "fail_processor_exception", id="500-ingest-failure"),
    ])
    def test_permanent_items_are_rejected_with_type_and_reason(self, status: int, etype: str) -> None:
        out = ItemOutcomes()
        classify({"errors": True, "items": [item(status, etype, reason="bad field [status]")]}, [5], out)
        assert out.rejected == [(5, f"{etype}: bad field [status]")]
        assert out.retry == []

    def test_conflict_on_create_is_delivered(self) -> None:
        out = ItemOutcomes()
        classify({"errors": True, "items": [item(409, "version_conflict_engine_exception"), item(201)]}, [0, 1], out)
        assert (out.created, out.duplicates, out.retry, out.rejected) == (1, 1, [], [])

    def test_item_count_mismatch_is_an_error(self) -> None:
        with pytest.raises(BulkResponseError):
            classify({"errors": True, "items": [item(201)]}, [0, 1], ItemOutcomes())
        with pytest.raises(BulkResponseError):
            classify({"errors": False, "items": [item(201)]}, [0, 1], ItemOutcomes())

    def test_reason_includes_root_cause(self) -> None:
        reason = item_reason(400, {"type": "document_parsing_exception", "reason": "failed to parse [status]",
                                   "caused_by": {"type": "number_format_exception", "reason": "For input 'abc'"}})
        assert reason == ("document_parsing_exception: failed to parse [status] "
                          "(caused by number_format_exception: For input 'abc')")


class TestResponseSerializer:
    """Clean bulk responses are counted, not parsed; everything else is parsed as usual."""

    @staticmethod
    def response(statuses: list[int], errors: bool = False, took_first: bool = False) -> bytes:
        items = [
            {"create": {"status": s, **({"error": {"type": "mapper_parsing_exception", "reason": "bad"}}
                                         if s >= 400 else {})}}
            for s in statuses
        ]
        head: dict[str, Any] = {"took": 3, "errors": errors} if took_first else {"errors": errors, "took": 3}
        return orjson.dumps({**head, "items": items})

    def test_a_clean_response_is_counted_and_all_created(self) -> None:
        body = BulkResponseSerializer().loads(self.response([201] * 5))
        assert body == {"errors": False, "item_count": 5}
        out = ItemOutcomes()
        classify(body, [0, 1, 2, 3, 4], out)
        assert out.created == 5

    def test_a_counted_response_with_too_few_items_is_an_error(self) -> None:
        body = BulkResponseSerializer().loads(self.response([201] * 4))
        with pytest.raises(BulkResponseError, match="4 items for 5 actions"):
            classify(body, [0, 1, 2, 3, 4], ItemOutcomes())

    def test_a_response_with_errors_is_parsed_and_classified_per_item(self) -> None:
        body = BulkResponseSerializer().loads(self.response([201, 400, 201], errors=True))
        assert len(body["items"]) == 3
        out = ItemOutcomes()
        classify(body, [0, 1, 2], out)
        assert out.created == 2
        assert out.rejected == [(1, "mapper_parsing_exception: bad")]

    def test_another_shape_is_parsed(self) -> None:
        raw = self.response([201, 201], took_first=True)
        assert BulkResponseSerializer().loads(raw) == orjson.loads(raw)
        assert BulkResponseSerializer().loads(b'{"acknowledged":true}') == {"acknowledged": True}
