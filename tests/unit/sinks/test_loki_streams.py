"""sinks/loki/streams.py: events -> streams; label templates, the stream caps, sorting, timestamps."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from sinks.loki.config import LokiSinkConfig
from sinks.loki.streams import Grouped, StreamMapper, Timestamps, label_key
from tests.unit.sinks.loki_decode import parse_labels


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def config(**body: Any) -> LokiSinkConfig:
    return LokiSinkConfig.model_validate({"type": "loki", "inputs": ["src"], **body})


def ev(i: int, ts: str = "2024-05-01T10:00:00.000Z", **fields: Any) -> dict[str, Any]:
    return {"@timestamp": ts, "message": f"line {i}", **fields}


def by_key(grouped: Grouped) -> dict[str, list[int]]:
    return {s.key: [e[3] for e in s.entries] for s in grouped.streams}


def accounted(grouped: Grouped, n: int) -> None:
    """Every event of the send is in exactly one stream or rejected: none dropped, none doubled."""
    seen = sorted([e[3] for s in grouped.streams for e in s.entries] + [i for i, _ in grouped.rejected])
    assert seen == list(range(n))


class TestLabels:
    def test_streams_from_templates(self) -> None:
        mapper = StreamMapper(config(labels={"job": "app", "svc": "{service}", "ns": "{k8s.namespace|none}"}))
        events = [ev(0, service="api", k8s={"namespace": "prod"}), ev(1, service="web"), ev(2, service="api",
                                                                                           k8s={"namespace": "prod"})]
        grouped = mapper.group(events)
        assert by_key(grouped) == {
            '{job="app", ns="prod", svc="api"}': [0, 2],  # names sorted: one canonical key per label set
            '{job="app", ns="none", svc="web"}': [1],
        }
        assert grouped.streams[0].labels == (("job", "app"), ("ns", "prod"), ("svc", "api"))
        accounted(grouped, 3)

    def test_empty_values_are_left_out(self) -> None:
        mapper = StreamMapper(config(labels={"job": "app", "svc": "{service}"}))
        assert by_key(mapper.group([ev(0)])) == {'{job="app"}': [0]}

    def test_a_stream_always_has_a_label(self) -> None:
        mapper = StreamMapper(config(labels={"svc": "{service}"}))
        assert by_key(mapper.group([ev(0)])) == {'{service_name="unknown_service"}': [0]}

    @pytest.mark.parametrize("value", ['say "hi"', "back\\slash", "new\nline", "tab\there", "ünï ✓", "{}=,"])
    def test_values_are_quoted_so_they_parse_back(self, value: str) -> None:
        key = label_key((("a", value), ("b", "x")))
        assert parse_labels(key) == {"a": value, "b": "x"}

    def test_values_of_other_types_get_their_own_stream(self) -> None:
        mapper = StreamMapper(config(labels={"v": "{v}"}))
        values: list[Any] = [1, True, "1", 1.0, {"a": 1}, None, "1", True]
        grouped = mapper.group([ev(i, v=v) for i, v in enumerate(values)])
        assert by_key(grouped) == {'{v="1"}': [0, 2, 6], '{v="true"}': [1, 7], '{v="1.0"}': [3],
                                   '{v="{\\"a\\":1}"}': [4], '{service_name="unknown_service"}': [5]}

    def test_dotted_fields_in_labels(self) -> None:
        mapper = StreamMapper(config(labels={"ns": "{k8s.ns}", "c": "{k8s.c|-}"}))
        grouped = mapper.group([ev(0, k8s={"ns": "a", "c": "x"}), ev(1, k8s={"ns": "a"}), ev(2, **{"k8s.ns": "flat"})])
        assert by_key(grouped) == {'{c="x", ns="a"}': [0], '{c="-", ns="a"}': [1], '{c="-", ns="flat"}': [2]}

    def test_non_string_values_render_as_text(self) -> None:
        mapper = StreamMapper(config(labels={"status": "{status}", "ok": "{ok}"}))
        assert by_key(mapper.group([ev(0, status=200, ok=True)])) == {'{ok="true", status="200"}': [0]}


class TestEntries:
    def test_sorted_by_time_within_a_stream(self) -> None:
        mapper = StreamMapper(config(labels={"job": "app"}))
        events = [ev(0, "2024-05-01T10:00:02.000Z"), ev(1, "2024-05-01T10:00:00.500Z"),
                  ev(2, "2024-05-01T10:00:01.000Z"), ev(3, "2024-05-01T10:00:00.500Z")]
        [stream] = mapper.group(events).streams
        assert [e[3] for e in stream.entries] == [1, 3, 2, 0]  # equal times keep their order
        assert [e[0] for e in stream.entries] == sorted(e[0] for e in stream.entries)

    def test_line_defaults_to_the_event_as_json(self) -> None:
        event = ev(0, service="api", nested={"a": [1, 2]})
        [stream] = StreamMapper(config(labels={"job": "app"})).group([event]).streams
        line = stream.entries[0][1]
        assert orjson.loads(line) == event

    def test_line_template(self) -> None:
        mapper = StreamMapper(config(labels={"job": "app"}, line="{level|-} {message}"))
        [stream] = mapper.group([ev(0, level="ERROR"), ev(1)]).streams
        assert [e[1] for e in stream.entries] == ["ERROR line 0", "- line 1"]

    def test_structured_metadata_from_a_list_of_fields(self) -> None:
        mapper = StreamMapper(config(labels={"job": "app"}, structured_metadata=["trace_id", "http.request_id"]))
        [stream] = mapper.group([ev(0, trace_id="t1", http={"request_id": "r1"}), ev(1, trace_id="t2")]).streams
        assert [e[2] for e in stream.entries] == [(("http_request_id", "r1"), ("trace_id", "t1")),
                                                  (("trace_id", "t2"),)]

    def test_structured_metadata_values_of_any_type(self) -> None:
        mapper = StreamMapper(config(labels={"job": "app"}, structured_metadata=["a", "b", "c", "d"]))
        [stream] = mapper.group([ev(0, a=123, b=False, c="", d={"x": [1]}), ev(1, a=None, b=0)]).streams
        assert [e[2] for e in stream.entries] == [(("a", "123"), ("b", "false"), ("d", '{"x":[1]}')),
                                                  (("b", "0"),)]

    def test_structured_metadata_from_templates(self) -> None:
        mapper = StreamMapper(config(labels={"job": "app"}, structured_metadata={"user": "{user.name|anonymous}"}))
        [stream] = mapper.group([ev(0, user={"name": "ann"}), ev(1)]).streams
        assert [e[2] for e in stream.entries] == [(("user", "ann"),), (("user", "anonymous"),)]


class TestTimestamps:
    NOW = 1_700_000_000_000_000_000

    @pytest.mark.parametrize(("value", "expected"), [
        pytest.param("2024-05-01T10:00:00.123Z", 1_714_557_600_123_000_000, id="our-shape"),
        pytest.param("2024-05-01T12:00:00.5+02:00", 1_714_557_600_500_000_000, id="offset"),
        pytest.param("2024-05-01T10:00:00Z", 1_714_557_600_000_000_000, id="no-fraction"),
        pytest.param("2024-05-01T10:00:00.123456Z", 1_714_557_600_123_456_000, id="micros"),
        pytest.param("2024-05-01T10:00:00", 1_714_557_600_000_000_000, id="naive-is-utc"),
        pytest.param("not a date", NOW, id="invalid-ingest-time"),
        pytest.param("2024-13-01T10:00:00.000Z", NOW, id="invalid-month"),
        pytest.param(None, NOW, id="missing"),
        pytest.param(12345, NOW, id="not-a-string"),
        pytest.param("1960-01-01T00:00:00.000Z", NOW, id="before-1970"),
    ])
    def test_parse(self, value: Any, expected: int) -> None:
        assert Timestamps().ns(value, self.NOW) == expected

    def test_cached_second_gives_the_same_answer(self) -> None:
        ts = Timestamps()
        first = ts.ns("2024-05-01T10:00:00.001Z", 0)
        assert ts.ns("2024-05-01T10:00:00.999Z", 0) == first + 998_000_000


class TestStreamCaps:
    LABELS = {"job": "app", "svc": "{service}"}

    def test_over_the_batch_cap_goes_to_the_overflow_stream(self) -> None:
        mapper = StreamMapper(config(labels=self.LABELS, max_streams_per_batch=2))
        events = [ev(i, service=f"s{i % 4}", trace_id=f"t{i}") for i in range(8)]
        grouped = mapper.group(events)
        keys = by_key(grouped)
        assert keys['{job="app", svc="s0"}'] == [0, 4]
        assert keys['{job="app", svc="s1"}'] == [1, 5]
        overflow = '{job="app", pipeline_overflow="true"}'
        assert keys[overflow] == [2, 3, 6, 7]
        assert (grouped.over_batch, grouped.over_total, grouped.rejected) == (4, 0, [])
        assert grouped.example == '{job="app", svc="s2"}'
        # The label each event would have had is kept, as structured metadata.
        stream = next(s for s in grouped.streams if s.key == overflow)
        assert [e[2] for e in stream.entries] == [(("svc", "s2"),), (("svc", "s3"),), (("svc", "s2"),),
                                                  (("svc", "s3"),)]
        accounted(grouped, 8)

    def test_the_batch_cap_is_per_send(self) -> None:
        mapper = StreamMapper(config(labels=self.LABELS, max_streams_per_batch=1))
        assert list(by_key(mapper.group([ev(0, service="a")]))) == ['{job="app", svc="a"}']
        assert list(by_key(mapper.group([ev(0, service="b")]))) == ['{job="app", svc="b"}']

    def test_total_cap_across_sends_and_its_expiry(self) -> None:
        clock = Clock()
        mapper = StreamMapper(config(labels=self.LABELS, max_streams=2, stream_ttl="10m"), clock)
        mapper.group([ev(0, service="a"), ev(1, service="b")])
        clock.now += 60
        grouped = mapper.group([ev(0, service="c"), ev(1, service="a"), ev(2, service="c")])
        assert by_key(grouped) == {
            '{job="app", pipeline_overflow="true"}': [0, 2],
            '{job="app", svc="a"}': [1],  # a known stream keeps flowing at the cap
        }
        assert (grouped.over_batch, grouped.over_total) == (0, 2)
        # b is not seen for 10 minutes: it stops counting, and c gets its place.
        clock.now += 600 - 30
        grouped = mapper.group([ev(0, service="c")])
        assert by_key(grouped) == {'{job="app", svc="c"}': [0]}
        assert set(mapper.known) == {'{job="app", svc="a"}', '{job="app", svc="c"}'}

    def test_overflow_stream_has_only_the_marker_when_no_label_is_constant(self) -> None:
        mapper = StreamMapper(config(labels={"svc": "{service}", "lvl": "{level}"}, max_streams=1))
        grouped = mapper.group([ev(0, service="a", level="x"), ev(1, service="b", level="y", trace_id="t")])
        overflow = next(s for s in grouped.streams if "pipeline_overflow" in s.key)
        assert overflow.labels == (("pipeline_overflow", "true"),)
        assert overflow.entries[0][2] == (("lvl", "y"), ("svc", "b"))

    def test_overflow_keeps_the_events_own_metadata(self) -> None:
        mapper = StreamMapper(config(labels=self.LABELS, max_streams=1, structured_metadata=["trace_id"]))
        grouped = mapper.group([ev(0, service="a"), ev(1, service="b", trace_id="t1")])
        overflow = next(s for s in grouped.streams if "pipeline_overflow" in s.key)
        assert overflow.entries[0][2] == (("svc", "b"), ("trace_id", "t1"))

    def test_dead_letter_mode_rejects_with_the_reason(self) -> None:
        mapper = StreamMapper(config(labels=self.LABELS, max_streams=1, overflow="dead_letter"))
        grouped = mapper.group([ev(0, service="a"), ev(1, service="b"), ev(2, service="a")])
        assert by_key(grouped) == {'{job="app", svc="a"}': [0, 2]}
        assert grouped.rejected == [(1, 'loki: over the stream cap (total): labels {job="app", svc="b"}')]
        assert grouped.over_total == 1
        accounted(grouped, 3)

    def test_many_distinct_values_never_lose_an_event(self) -> None:
        mapper = StreamMapper(config(labels=self.LABELS, max_streams=50, max_streams_per_batch=20))
        for round_ in range(5):
            events = [ev(i, service=f"user-{round_}-{i}") for i in range(200)]
            grouped = mapper.group(events)
            accounted(grouped, 200)
            assert len(grouped.streams) <= 21  # the cap, plus the overflow stream
            assert grouped.over_batch + grouped.over_total == 200 - (len(grouped.streams) - 1)
        assert len(mapper.known) == 50
