"""ECS field names for the built-in formats (parsers/ecs.py, through EventParser(schema="ecs"))."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parsers import GROK_FAILURE, EventParser
from parsers.ecs import ECS_VERSION, EcsMapper

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"
NOW = 1704164645.5  # 2024-01-02T03:04:05.500Z
READ_AT = "2024-01-02T03:05:00.000Z"


@pytest.fixture(scope="module")
def ecs() -> EventParser:
    return EventParser("auto", schema="ecs", user_agent=False, clock=lambda: NOW)


def shipped(message: str, **extra: Any) -> dict[str, Any]:
    """An event as the file source hands it to the parse transform."""
    return {"@timestamp": READ_AT, "message": message, "host": "web-1",
            "source": {"path": "/var/log/nginx/access.log", "offset": 1234}, "event_id": "abc", **extra}  # fmt: skip


SHIPPING = {"host": {"name": "web-1"}, "log": {"file": {"path": "/var/log/nginx/access.log"}, "offset": 1234},
            "event_id": "abc", "ecs": {"version": ECS_VERSION}}  # fmt: skip


class TestAccess:
    def test_every_access_field(self, ecs: EventParser) -> None:
        line = (
            'shop.example.com "89.160.20.112, 10.0.0.1" - alice [02/Jan/2024:03:04:05 +0000] "POST /api/v1/cart?id=7 '
            'HTTP/2.0" 502 88 "https://shop.example.com/" "curl/8.5.0" "89.160.20.112" rt=1.503 uct="0.001" '
            'uht="1.500" urt="1.500, 0.002" ua="10.0.0.5:80, 10.0.0.6:80" us="502, 502" cs=MISS'
        )
        event = ecs(shipped(line))
        assert event == {
            **SHIPPING, "message": line, "@timestamp": "2024-01-02T03:04:05.000Z", "log_type": "access",
            "source": {"address": "89.160.20.112", "ip": "89.160.20.112"},
            "destination": {"domain": "shop.example.com"},
            "user": {"name": "alice"},
            "http": {"request": {"method": "POST", "referrer": "https://shop.example.com/"}, "version": "2.0",
                     "response": {"status_code": 502, "body": {"bytes": 88}}},
            "url": {"path": "/api/v1/cart", "query": "id=7", "original": "/api/v1/cart?id=7"},
            "user_agent": {"original": "curl/8.5.0"},
            "nginx": {"access": {"remote_ip_list": ["89.160.20.112", "10.0.0.1"], "x_forwarded_for": "89.160.20.112",
                                 "upstream": {"addr": "10.0.0.5:80, 10.0.0.6:80", "status": "502, 502",
                                              "cache_status": "MISS", "connect_time": 0.001, "header_time": 1.5,
                                              "response_time": 1.502}}},
            "event": {"created": READ_AT, "kind": "event", "category": ["web"], "type": ["access"],
                      "module": "nginx", "dataset": "nginx.access", "duration": 1_503_000_000, "outcome": "failure"},
            "service": {"type": "nginx"},
        }  # fmt: skip

    def test_apache_module_and_vhost_port_and_ip_destination(self) -> None:
        parser = EventParser("access", schema="ecs", web_server="apache", user_agent=False)
        event = parser(shipped('10.0.0.9:8443 81.2.69.142 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5'))
        assert event["destination"] == {"ip": "10.0.0.9", "port": 8443}
        assert event["event"]["dataset"] == "apache.access"
        assert event["service"] == {"type": "apache"}
        assert event["event"]["outcome"] == "success"

    def test_user_agent_fields(self) -> None:
        agent = (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.144 Mobile Safari/537.36"
        )
        line = f'81.2.69.142 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5 "-" "{agent}"'
        event = EventParser("access", schema="ecs")(shipped(line))  # user agents on by default with ecs
        assert event["user_agent"] == {
            "original": agent, "name": "Chrome Mobile", "version": "120.0.6099", "device": {"name": "Pixel 8"},
            "os": {"name": "Android", "version": "14", "full": "Android 14"},
        }  # fmt: skip

    def test_every_fixture_line_keeps_no_flat_name(self, ecs: EventParser) -> None:
        flat = {"client_ip", "status", "bytes", "method", "path", "user_agent_name", "request_time", "vhost"}
        for name in ("access_nginx.log", "access_apache.log", "access_production.log"):
            for line in (DATA / name).read_text().splitlines():
                event = ecs(shipped(line))
                assert not flat & set(event), line
                assert "tags" not in event, line
                assert event["event"]["dataset"] == "nginx.access"


class TestError:
    def test_nginx(self, ecs: EventParser) -> None:
        line = (DATA / "error_nginx.log").read_text().splitlines()[0]
        event = ecs(shipped(line))
        assert event == {
            **SHIPPING, "@timestamp": "2024-01-02T03:04:05.000Z", "log_type": "error",
            "message": "connect() failed (111: Connection refused) while connecting to upstream",
            "log": {**SHIPPING["log"], "level": "error"},
            "process": {"pid": 1234, "thread": {"id": 5678}},
            "source": {"address": "198.51.100.7", "ip": "198.51.100.7"},
            "nginx": {"error": {"connection_id": 99, "server": "example.com", "request": "GET /x?y=1 HTTP/1.1",
                                "upstream": "http://10.0.0.1:8080/x?y=1"}},
            "http": {"request": {"method": "GET", "referrer": "https://example.com/"}, "version": "1.1"},
            "url": {"path": "/x", "query": "y=1", "domain": "example.com"},
            "event": {"created": READ_AT, "kind": "event", "category": ["web"], "type": ["error"],
                      "module": "nginx", "dataset": "nginx.error"},
            "service": {"type": "nginx"},
        }  # fmt: skip

    def test_apache(self, ecs: EventParser) -> None:
        line = (DATA / "error_apache.log").read_text().splitlines()[1]
        event = ecs(shipped(line))
        assert event["event"]["dataset"] == "apache.error"
        assert event["apache"] == {"error": {"module": "core"}}
        assert event["error"] == {"code": "AH00124"}
        assert event["source"] == {"address": "1.2.3.4", "ip": "1.2.3.4", "port": 5678}
        assert event["process"] == {"pid": 1234, "thread": {"id": 5678}}
        assert event["log"]["level"] == "error"


class TestApplication:
    def test_json_line(self, ecs: EventParser) -> None:
        line = (
            '{"timestamp":"2024-01-02T03:04:05Z","level":"error","logger":"app.db","message":"lost",'
            '"request_id":"r1","trace_id":"t1","user_id":7,"exception":{"type":"IOError","message":"gone"}}'
        )
        event = ecs(shipped(line))
        assert event["log"] == {**SHIPPING["log"], "level": "ERROR", "logger": "app.db"}
        assert event["http"] == {"request": {"id": "r1"}}
        assert event["trace"] == {"id": "t1"}
        assert event["user"] == {"id": 7}
        assert event["error"]["type"] == "IOError"
        assert event["event"] == {"created": READ_AT, "kind": "event"}

    def test_an_ecs_object_name_taken_by_a_value_is_left_alone(self, ecs: EventParser) -> None:
        event = ecs(shipped('{"message": "signed in", "event": "login", "ecs": 1, "logger": "auth"}'))
        assert event["event"] == "login"  # the application's own field wins; event.* is not added
        assert event["ecs"] == 1
        assert event["log"]["logger"] == "auth"

    def test_taken_parent_keeps_the_flat_name(self, ecs: EventParser) -> None:
        event = ecs(shipped('{"message": "x", "user": "bob", "user_id": 7}'))
        assert event["user"] == "bob"
        assert event["user_id"] == 7  # not lost


class TestShipping:
    def test_created_is_the_clock_when_the_event_had_no_timestamp(self, ecs: EventParser) -> None:
        event = ecs({"message": "2024/01/02 03:04:06 [notice] 1#1: signal process started"})
        assert event["event"]["created"] == "2024-01-02T03:04:05.500Z"

    def test_kafka_source_position(self, ecs: EventParser) -> None:
        source = {"ip": "81.2.69.142", "topic": "access-logs", "partition": 3, "offset": 99}
        event = ecs({"message": "hello", "source": source})
        assert event["kafka"] == {"topic": "access-logs", "partition": 3, "offset": 99}
        assert event["source"] == {"ip": "81.2.69.142"}  # an ECS source object is left alone

    def test_unparsed_line_still_gets_the_shipping_names(self, ecs: EventParser) -> None:
        event = EventParser("access", schema="ecs", clock=lambda: NOW)(shipped("not an access line"))
        assert event["tags"] == [GROK_FAILURE]
        assert event["host"] == {"name": "web-1"}
        assert event["event"]["dataset"] == "nginx.access"

    def test_bad_settings(self) -> None:
        with pytest.raises(ValueError, match="schema"):
            EventParser(schema="otel")
        with pytest.raises(ValueError, match="web_server"):
            EcsMapper("caddy")  # type: ignore[arg-type]
