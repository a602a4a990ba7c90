"""sinks/clickhouse/schema.py: events -> typed columns, rejected rows, the extra map, and the DDL."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

from sinks.clickhouse import schema as schema_module
from sinks.clickhouse.schema import (
    SCHEMAS,
    convert_ip,
    convert_tags,
    convert_timestamp,
    float_converter,
    integer_converter,
    schema_key,
    to_columns,
)

MAPPED = bytes(10) + b"\xff\xff"


def column(rows: Any, name: str) -> list[Any]:
    schema_names = SCHEMAS["access"].names
    return list(rows.columns[schema_names.index(name)])


class TestTimestamp:
    @pytest.mark.parametrize(("value", "ms"), [
        pytest.param("2024-03-01T10:00:00.123Z", 1709287200123, id="pipeline-form"),
        pytest.param("2024-03-01T12:00:00.123+02:00", 1709287200123, id="offset"),
        pytest.param("2024-03-01T10:00:00Z", 1709287200000, id="no-millis"),
        pytest.param("2024-03-01T10:00:00.123456Z", 1709287200123, id="micros"),
        pytest.param(1709287200.5, 1709287200500, id="epoch-seconds"),
    ])
    def test_converts_to_epoch_millis(self, value: Any, ms: int) -> None:
        out, bad, _ = convert_timestamp("timestamp", [value])
        assert (out, bad) == ([ms], {})

    @pytest.mark.parametrize("value", [
        pytest.param(None, id="missing"),
        pytest.param("yesterday", id="text"),
        pytest.param("2024-13-01T10:00:00.000Z", id="month-13"),
        pytest.param("1800-01-01T00:00:00.000Z", id="before-1900"),
        pytest.param("2024-03-01T10:00:00.-12Z", id="bad-millis"),
    ])
    def test_rejects_what_is_not_a_time(self, value: Any) -> None:
        _, bad, _ = convert_timestamp("timestamp", ["2024-03-01T10:00:00.000Z", value])
        assert list(bad) == [1]
        assert bad[1].startswith("timestamp: cannot convert") and "DateTime64(3, 'UTC')" in bad[1]


class TestNumbers:
    @pytest.mark.parametrize(("value", "expected"), [
        pytest.param(200, 200, id="int"),
        pytest.param("404", 404, id="numeric-text"),
        pytest.param(" 500 ", 500, id="padded"),
        pytest.param(301.0, 301, id="integral-float"),
        pytest.param("200.0", 200, id="integral-float-text"),
        pytest.param(None, 0, id="absent"),
        pytest.param("-", 0, id="dash"),
        pytest.param(True, 1, id="bool"),
    ])
    def test_uint16_accepts(self, value: Any, expected: int) -> None:
        out, bad, _ = integer_converter("UInt16", 0, 65535)("status", [value])
        assert (out, bad) == ([expected], {})

    @pytest.mark.parametrize("value", [
        pytest.param("abc", id="text"), pytest.param(70000, id="too-big"), pytest.param(-1, id="negative"),
        pytest.param(1.5, id="fraction"), pytest.param([200], id="list"), pytest.param("1e400", id="huge"),
    ])
    def test_uint16_rejects(self, value: Any) -> None:
        _, bad, _ = integer_converter("UInt16", 0, 65535)("status", [value])
        assert bad == {0: f"status: cannot convert {value!r} to UInt16"}

    def test_float32(self) -> None:
        convert = float_converter("Float32", 3.4028234663852886e38)
        out, bad, _ = convert("request_time", [0.5, "0.012", None, "-", 3, "abc", 1e39, float("inf")])
        assert out[:5] == [0.5, 0.012, 0.0, 0.0, 3.0]
        assert out[7] == float("inf")
        assert sorted(bad) == [5, 6]


class TestIp:
    def test_v4_is_mapped_v6_is_packed_and_absent_is_zero(self) -> None:
        out, bad, spill = convert_ip("client_ip", ["10.1.2.3", "2001:db8::1", None, "", "-", "fe80::1%eth0"])
        assert out[0] == MAPPED + socket.inet_pton(socket.AF_INET, "10.1.2.3")
        assert out[1] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
        assert out[2] == out[3] == out[4] == bytes(16)
        assert out[5] == socket.inet_pton(socket.AF_INET6, "fe80::1")
        assert bad == {} and spill == {}

    def test_invalid_becomes_zero_and_is_kept_as_text(self) -> None:
        out, bad, spill = convert_ip("client_ip", ["proxy.local", 12])
        assert out == [bytes(16), bytes(16)] and bad == {}
        assert spill == {0: "proxy.local", 1: "12"}


def test_tags_are_lists_of_text() -> None:
    out, _, _ = convert_tags("tags", [["a"], None, "b", [1, "c"], ("d",), ["e", None], []])
    assert out == [["a"], [], ["b"], ["1", "c"], ["d"], ["e", ""], []]


def access(i: int, **extra: Any) -> dict[str, Any]:
    return {"@timestamp": "2024-03-01T10:00:00.000Z", "event_id": f"e{i}", "log_type": "access", "host": "h",
            "message": f"m{i}", "status": 200, "bytes": 10, "client_ip": "10.0.0.1", **extra}


class TestToColumns:
    def test_columns_line_up_with_the_schema(self) -> None:
        rows = to_columns(SCHEMAS["access"], [access(0), access(1, status="404")])
        assert len(rows.columns) == len(SCHEMAS["access"].names)
        assert column(rows, "status") == [200, 404]
        assert column(rows, "event_id") == ["e0", "e1"]
        assert rows.indices == [0, 1] and rows.rejected == []

    def test_bad_rows_are_rejected_and_the_rest_kept_with_their_positions(self) -> None:
        events = [access(0), access(1, status="abc"), access(2), access(3, bytes=-5, status=99999)]
        rows = to_columns(SCHEMAS["access"], events, indices=[10, 11, 12, 13])
        assert rows.indices == [10, 12]
        assert column(rows, "event_id") == ["e0", "e2"]
        assert rows.rejected == [(11, "status: cannot convert 'abc' to UInt16"),
                                 (13, "status: cannot convert 99999 to UInt16")]

    def test_unnamed_fields_go_to_extra_as_text(self) -> None:
        event = access(0, custom="x", count=3, nested={"a": [1, 2]}, flag=True,
                       kubernetes={"namespace": "prod", "pod": "p-1", "container_id": "abc", "labels": {"app": "w"}},
                       geoip={"country_iso_code": "SE", "location": {"lat": 1.0, "lon": 2.0}, "asn": 7},
                       source={"path": "/var/log/a.log", "offset": 42})
        rows = to_columns(SCHEMAS["access"], [event])
        assert column(rows, "extra")[0] == {
            "custom": "x", "count": "3", "nested": '{"a":[1,2]}', "flag": "true",
            "kubernetes.container_id": "abc", "kubernetes.labels": '{"app":"w"}',
            "geoip.asn": "7", "source.offset": "42",
        }
        assert column(rows, "k8s_namespace") == ["prod"]
        assert column(rows, "country") == ["SE"]
        assert column(rows, "latitude") == [1.0]
        assert column(rows, "source_path") == ["/var/log/a.log"]

    def test_a_nested_integer_beyond_64_bits_is_kept_as_text(self) -> None:
        # Before: orjson raised inside to_columns, so every send of the batch failed, forever.
        rows = to_columns(SCHEMAS["access"], [access(0, nested={"id": 2**70}), access(1)])
        assert rows.rejected == []
        assert column(rows, "extra") == [{"nested": '{"id": 1180591620717411303424}'}, {}]

    def test_an_unexpected_shape_of_a_mapped_object_is_kept(self) -> None:
        rows = to_columns(SCHEMAS["access"], [access(0, geoip={"location": "59.3,18.1"}, kubernetes="node-1")])
        assert column(rows, "extra")[0] == {"geoip.location": "59.3,18.1", "kubernetes": "node-1"}
        assert column(rows, "latitude") == [0.0]

    def test_fields_no_event_has_get_their_column_defaults(self) -> None:
        # Whole-column shortcuts: absent numbers are 0, absent text is "", absent objects leave "" and 0.0.
        rows = to_columns(SCHEMAS["access"], [access(0, bytes=None), access(1, bytes=None)])
        assert column(rows, "bytes") == [0, 0]
        assert column(rows, "request_time") == [0.0, 0.0]
        assert column(rows, "user") == ["", ""]
        assert column(rows, "k8s_namespace") == ["", ""]
        assert column(rows, "latitude") == [0.0, 0.0]
        assert column(rows, "tags") == [[], []]

    def test_a_timestamp_no_event_has_rejects_every_row(self) -> None:
        # The whole-column shortcut takes only defaults a converter accepts; an absent time is not one.
        events = [{k: v for k, v in access(i).items() if k != "@timestamp"} for i in range(2)]
        rows = to_columns(SCHEMAS["access"], events)
        assert len(rows) == 0
        assert rows.rejected == [(0, "timestamp: cannot convert None to DateTime64(3, 'UTC')"),
                                 (1, "timestamp: cannot convert None to DateTime64(3, 'UTC')")]

    def test_nested_fields_of_a_batch_mixing_objects_and_other_values(self) -> None:
        events = [access(0, geoip={"country_iso_code": "SE", "location": {"lat": 1.5, "lon": 2.5}}),
                  access(1), access(2, geoip="none"), access(3, geoip={"location": None})]
        rows = to_columns(SCHEMAS["access"], events)
        assert column(rows, "country") == ["SE", "", "", ""]
        assert column(rows, "latitude") == [1.5, 0.0, 0.0, 0.0]
        assert column(rows, "extra")[2] == {"geoip": "none"}

    def test_extra_per_event_whatever_the_shapes_seen_before(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Decisions are cached per event shape (keys in order); values still decide per event.
        monkeypatch.setattr(schema_module, "_PLANS_MAX", 2)  # and the cache starts over when full
        events = [
            access(0, source={"path": "/a", "offset": 1}),
            access(1, source="stdin"),  # same keys, not an object this time
            access(2, geoip={"location": {"lat": 1.0, "lon": 2.0}}),  # consumed: columns hold it all
            access(3, geoip={"location": {"lat": 1.0, "alt": 9}}),  # same shape, not consumed
            access(4, zeta="z", alpha="a"),  # the event's order, not sorted
            access(5, source={"offset": 7, "path": "/b", "topic": "t"}),
        ]
        for _ in range(2):
            rows = to_columns(SCHEMAS["access"], events)
            extras = column(rows, "extra")
            assert extras[0] == {"source.offset": "1"}
            assert extras[1] == {"source": "stdin"}
            assert extras[2] == {}
            assert extras[3] == {"geoip.location": '{"lat":1.0,"alt":9}'}
            assert list(extras[4].items()) == [("zeta", "z"), ("alpha", "a")]
            assert list(extras[5]) == ["source.offset", "source.topic"]
        assert len(SCHEMAS["access"].plans) <= 2

    def test_invalid_ip_kept_in_extra(self) -> None:
        rows = to_columns(SCHEMAS["access"], [access(0, client_ip="proxy.local"), access(1)])
        assert column(rows, "client_ip")[0] == bytes(16)
        assert column(rows, "extra") == [{"client_ip": "proxy.local"}, {}]

    def test_log_type_is_a_column_only_in_the_generic_table(self) -> None:
        event = {"@timestamp": "2024-03-01T10:00:00.000Z", "log_type": "nginx-json", "message": "m", "x": 1}
        rows = to_columns(SCHEMAS["other"], [event])
        assert rows.columns[SCHEMAS["other"].names.index("log_type")] == ["nginx-json"]
        assert rows.columns[-1] == [{"x": "1"}]
        typed = to_columns(SCHEMAS["application"], [{**event, "log_type": "application"}])
        assert typed.columns[-1] == [{"x": "1"}]

    def test_events_are_not_mutated(self) -> None:
        events = [access(0, client_ip="bad", tags=["t"], kubernetes={"x": 1})]
        before = orjson.dumps(events)
        to_columns(SCHEMAS["access"], events)
        assert orjson.dumps(events) == before

    def test_take_keeps_columns_and_indices_together(self) -> None:
        rows = to_columns(SCHEMAS["access"], [access(i) for i in range(4)], indices=[5, 6, 7, 8])
        part = rows.take([1, 3])
        assert part.indices == [6, 8]
        assert part.columns[SCHEMAS["access"].names.index("event_id")] == ["e1", "e3"]


@pytest.mark.parametrize(("log_type", "key"), [
    ("application", "application"), ("access", "access"), ("error", "error"),
    ("nginx", "other"), (None, "other"), ("other", "other"), (3, "other"),
])
def test_schema_key(log_type: Any, key: str) -> None:
    assert schema_key(log_type) == key


class TestDdl:
    def test_merge_tree_partitioned_by_day_with_ttl(self) -> None:
        ddl = SCHEMAS["access"].ddl("logs", "access_logs", dedup=False, retention_days=30)
        assert "CREATE TABLE IF NOT EXISTS `logs`.`access_logs`" in ddl
        assert "`timestamp` DateTime64(3, 'UTC')" in ddl and "`client_ip` IPv6" in ddl
        assert "`status` UInt16" in ddl and "`tags` Array(LowCardinality(String))" in ddl
        assert "`extra` Map(String, String)" in ddl
        assert "ENGINE = MergeTree\n" in ddl
        assert "PARTITION BY toYYYYMMDD(timestamp)" in ddl
        assert "ORDER BY (status, timestamp)" in ddl
        assert "TTL toDateTime(timestamp) + INTERVAL 30 DAY" in ddl
        assert "non_replicated_deduplication_window" in ddl

    def test_dedup_uses_replacing_merge_tree_keyed_on_event_id(self) -> None:
        ddl = SCHEMAS["application"].ddl("logs", "application_logs", dedup=True, retention_days=0)
        assert "ENGINE = ReplacingMergeTree" in ddl
        assert "ORDER BY (level, timestamp, event_id)" in ddl
        assert "TTL" not in ddl

    def test_every_schema_has_the_common_columns(self) -> None:
        for schema in SCHEMAS.values():
            assert schema.names[:4] == ["timestamp", "event_id", "host", "message"]
            assert schema.names[-1] == "extra"
            assert len(set(schema.names)) == len(schema.names)


DATA = Path(__file__).resolve().parents[2] / "data"
POD_LOG = "/var/log/pods/shop_web-7d4b9c-x2x9z_0f1e2d3c-aaaa-bbbb-cccc-111122223333/nginx/0.log"
# Lines beside the fixture files, for fields no fixture line has.
MORE_LINES = {
    "access": ['81.2.69.142 - - [02/Jan/2024:03:04:06 +0000] "GET /a HTTP/1.1" 200 5 "-" "curl" rt=0.1 ucs="HIT"'],
}


def parsed_events(log_type: str) -> list[dict[str, Any]]:
    """What the pipeline makes of the fixture lines of one log type: source stamp, parse, geoip."""
    from parsers.dispatch import EventParser
    from parsers.geoip import GeoIPEnricher
    from pipeline.sources.container import kubernetes_metadata
    from pipeline.sources.framing import Stamp

    files = {"application": ["app_json.log", "app_text.log"], "access": ["access_nginx.log", "access_apache.log"],
             "error": ["error_nginx.log", "error_apache.log"]}[log_type]
    records = [line for name in files for line in (DATA / "parsers" / name).read_text().splitlines() if line]
    if log_type == "application":  # joined multi-line records, as the multiline joiner emits them
        records += [(DATA / "parsers" / name).read_text().rstrip("\n") for name in ("traceback.log", "stacktraces.log")]
    records += MORE_LINES.get(log_type, [])
    stamp = Stamp("web-1", "k", POD_LOG, log_type)
    kube = kubernetes_metadata(POD_LOG, "node-1")
    events = []
    for n, text in enumerate(records):
        event = stamp.event(text, n * 100, "2024-01-02T03:04:05.000Z", ["_sample"] if n == 0 else None)
        event["kubernetes"] = dict(kube or {})
        events.append(event)
    EventParser(log_type).parse_batch(events)
    with GeoIPEnricher(str(DATA / "geoip" / "GeoLite2-City-Test.mmdb")) as geoip:
        geoip.enrich_batch(events)
    return events


class TestParsedEventsFillTheTypedColumns:
    """Every typed column is where the parsers put its field: none stays empty while `extra` holds it."""

    @pytest.mark.parametrize("log_type", ["application", "access", "error"])
    def test_every_column_is_filled_by_some_parsed_event(self, log_type: str) -> None:
        schema = SCHEMAS[log_type]
        rows = to_columns(schema, parsed_events(log_type))
        assert rows.rejected == []
        empty = {0, "", bytes(16), ()}  # 0 == 0.0
        never_filled = [
            name for name, values in zip(schema.names, rows.columns, strict=True)
            if name != "extra" and all((tuple(v) if isinstance(v, list) else v) in empty for v in values)
        ]
        assert never_filled == []

    def test_an_exception_fills_error_type_message_and_stack_trace(self) -> None:
        events = [e for e in parsed_events("application") if isinstance(e.get("error"), dict)]
        assert len(events) >= 2
        schema = SCHEMAS["application"]
        rows = to_columns(schema, events)
        col = dict(zip(schema.names, rows.columns, strict=True))
        assert col["stack_trace"] == [e["error"]["stack_trace"] for e in events]
        assert col["error_type"] == [e["error"]["type"] for e in events]
        assert col["error_message"] == [e["error"].get("message", "") for e in events]
        assert "Traceback (most recent call last):" in col["stack_trace"][-2]
        assert all(not any(k == "error" or k.startswith("error.") for k in extra) for extra in col["extra"])

    def test_other_error_keys_stay_in_extra(self) -> None:
        event = {"@timestamp": "2024-03-01T10:00:00.000Z", "log_type": "application", "message": "m",
                 "error": {"type": "E", "code": 7}}
        rows = to_columns(SCHEMAS["application"], [event])
        assert rows.columns[-1] == [{"error.code": "7"}]


def test_events_without_an_id_get_one_from_their_content() -> None:
    no_id = [{k: v for k, v in access(i).items() if k != "event_id"} for i in (0, 1, 0)]
    ids = to_columns(SCHEMAS["access"], [access(5), *no_id]).columns[SCHEMAS["access"].names.index("event_id")]
    assert ids[0] == "e5"
    assert ids[1].startswith("h-") and ids[1] == ids[3] != ids[2]  # the same event, replayed: the same id
    again = to_columns(SCHEMAS["access"], [no_id[1]]).columns[SCHEMAS["access"].names.index("event_id")]
    assert again == [ids[2]]
