"""nginx / Apache access logs (parsers/formats/access.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from parsers.formats.access import AccessLogFormat
from parsers.types import DATE_FAILURE, GROK_FAILURE

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"


def parse(line: str) -> dict[str, Any]:
    event = AccessLogFormat()({"message": line})
    assert event.pop("message") == line  # the raw line is never changed
    return event


def fixture(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


class TestFields:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(
                '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
                '"http://www.example.com/start.html" "Mozilla/4.08"',
                {"client_ip": "127.0.0.1", "user": "frank", "@timestamp": "2000-10-10T20:55:36.000Z",
                 "method": "GET", "path": "/apache_pb.gif", "http_version": "1.0", "status": 200, "bytes": 2326,
                 "referrer": "http://www.example.com/start.html", "user_agent": "Mozilla/4.08"},
                id="apache-combined",
            ),
            pytest.param(
                '192.168.10.4 - - [11/Oct/2000:08:00:01 +0200] "GET /icons/blank.gif?v=2 HTTP/1.1" 304 -',
                {"client_ip": "192.168.10.4", "@timestamp": "2000-10-11T06:00:01.000Z", "method": "GET",
                 "path": "/icons/blank.gif", "query": "v=2", "http_version": "1.1", "status": 304},
                id="apache-common-dash-bytes-absent",
            ),
            pytest.param(
                '81.2.69.142 - alice [02/Jan/2024:03:04:06 +0000] "POST /api/v1/orders?id=7&dry_run=1 HTTP/1.1" 201 '
                '512 "https://shop.example.com/cart" "curl/8.5.0" 0.123 0.120 10.0.0.1:8080',
                {"client_ip": "81.2.69.142", "user": "alice", "@timestamp": "2024-01-02T03:04:06.000Z",
                 "method": "POST", "path": "/api/v1/orders", "query": "id=7&dry_run=1", "http_version": "1.1",
                 "status": 201, "bytes": 512, "referrer": "https://shop.example.com/cart", "user_agent": "curl/8.5.0",
                 "request_time": 0.123, "upstream_response_time": 0.12, "upstream_addr": "10.0.0.1:8080"},
                id="nginx-bare-extras",
            ),
            pytest.param(
                '2001:db8::1 - - [02/Jan/2024:03:04:09 +0000] "HEAD /health HTTP/1.1" 200 0 "-" "kube-probe/1.29" '
                "0.000 - -",
                {"client_ip": "2001:db8::1", "@timestamp": "2024-01-02T03:04:09.000Z", "method": "HEAD",
                 "path": "/health", "http_version": "1.1", "status": 200, "bytes": 0, "user_agent": "kube-probe/1.29",
                 "request_time": 0.0},
                id="nginx-bare-extras-dashes-absent",
            ),
            pytest.param(
                '216.160.83.56 - - [02/Jan/2024:03:04:08 -0500] "GET /api/v1/items HTTP/1.1" 502 157 "-" '
                '"python-requests/2.31.0" "198.51.100.23, 10.0.0.5" rt=1.503 uct="0.000, 0.001" uht="1.500, -" '
                'urt="1.500, 0.002" ua="10.0.0.1:8080, 10.0.0.2:8080" us="502, 502" cs=MISS',
                {"client_ip": "216.160.83.56", "@timestamp": "2024-01-02T08:04:08.000Z", "method": "GET",
                 "path": "/api/v1/items", "http_version": "1.1", "status": 502, "bytes": 157,
                 "user_agent": "python-requests/2.31.0", "x_forwarded_for": "198.51.100.23, 10.0.0.5",
                 "request_time": 1.503, "upstream_connect_time": 0.001, "upstream_header_time": 1.5,
                 "upstream_response_time": 1.502, "upstream_addr": "10.0.0.1:8080, 10.0.0.2:8080",
                 "upstream_status": "502, 502", "upstream_cache_status": "MISS"},
                id="nginx-keyed-extras-with-upstream-lists",
            ),
            pytest.param(
                '89.160.20.112 - - [02/Jan/2024:03:04:07 +0100] "GET /static/app.js HTTP/2.0" 304 0 '
                '"https://shop.example.com/" "Mozilla/5.0" "-" rt=0.002 uct="-" uht="-" urt="-" region=eu-west',
                {"client_ip": "89.160.20.112", "@timestamp": "2024-01-02T02:04:07.000Z", "method": "GET",
                 "path": "/static/app.js", "http_version": "2.0", "status": 304, "bytes": 0,
                 "referrer": "https://shop.example.com/", "user_agent": "Mozilla/5.0", "request_time": 0.002,
                 "region": "eu-west"},
                id="nginx-keyed-dashes-absent-unknown-key-kept",
            ),
            pytest.param(
                '175.16.199.0 - - [02/Jan/2024:03:04:10 +0000] "\\x16\\x03\\x01\\x02\\x00\\x01" 400 157 "-" "-"',
                {"client_ip": "175.16.199.0", "@timestamp": "2024-01-02T03:04:10.000Z",
                 "request": "\\x16\\x03\\x01\\x02\\x00\\x01", "status": 400, "bytes": 157},
                id="tls-garbage-request-kept-raw",
            ),
            pytest.param(
                '2.125.160.216 - - [02/Jan/2024:03:04:11 +0000] "-" 400 0 "-" "-"',
                {"client_ip": "2.125.160.216", "@timestamp": "2024-01-02T03:04:11.000Z", "status": 400, "bytes": 0},
                id="empty-request-dash-absent",
            ),
            pytest.param(
                '202.196.224.0 - - [12/Mar/2024:10:11:12 +0000] "GET /a b HTTP/1.1" 400 10 "-" "Wget/1.21 \\"q\\""',
                {"client_ip": "202.196.224.0", "@timestamp": "2024-03-12T10:11:12.000Z",
                 "request": "GET /a b HTTP/1.1", "status": 400, "bytes": 10, "user_agent": 'Wget/1.21 "q"'},
                id="space-in-target-kept-raw-escaped-agent-unescaped",
            ),
            pytest.param(
                '1.2.3.4 - - [12/Mar/2024:10:11:12 +0000] "GET /x HTTP/1.1" 200 1 "-" "ua" "5.6.7.8"',
                {"client_ip": "1.2.3.4", "@timestamp": "2024-03-12T10:11:12.000Z", "method": "GET", "path": "/x",
                 "http_version": "1.1", "status": 200, "bytes": 1, "user_agent": "ua", "x_forwarded_for": "5.6.7.8"},
                id="nginx-main-format-x-forwarded-for",
            ),
            pytest.param(
                '1.2.3.4 - - [12/Mar/2024:10:11:12 +0000] "GET / HTTP/1.1" 200 1 "-" "ua" 0.045 0.044 '
                "unix:/run/app.sock",
                {"client_ip": "1.2.3.4", "@timestamp": "2024-03-12T10:11:12.000Z", "method": "GET", "path": "/",
                 "http_version": "1.1", "status": 200, "bytes": 1, "user_agent": "ua", "request_time": 0.045,
                 "upstream_response_time": 0.044, "upstream_addr": "unix:/run/app.sock"},
                id="upstream-unix-socket",
            ),
        ],
    )  # fmt: skip
    def test_line(self, line: str, expected: dict[str, Any]) -> None:
        assert parse(line) == expected

    def test_dash_is_never_a_value(self) -> None:
        for line in fixture("access_nginx.log") + fixture("access_apache.log"):
            event = parse(line)
            assert "-" not in event.values(), line

    @pytest.mark.parametrize("name", ["access_nginx.log", "access_apache.log"])
    def test_every_fixture_line_parses(self, name: str) -> None:
        for line in fixture(name):
            event = parse(line)
            assert "tags" not in event, line
            assert isinstance(event["status"], int)
            assert event["@timestamp"].endswith("Z")


class TestProductionFormats:
    """Access lines as deployments behind proxies and with virtual hosts write them."""

    REST = '[02/Jan/2024:03:04:05 +0000] "GET /a?b=1 HTTP/1.1" 200 612 "-" "curl/8.5.0"'
    BASE = {"@timestamp": "2024-01-02T03:04:05.000Z", "method": "GET", "path": "/a", "query": "b=1",
            "http_version": "1.1", "status": 200, "bytes": 612, "user_agent": "curl/8.5.0"}  # fmt: skip

    @pytest.mark.parametrize(
        ("head", "expected"),
        [
            pytest.param("81.2.69.142, 10.0.0.1 - -",
                         {"client_ip": "81.2.69.142", "client_ip_list": ["81.2.69.142", "10.0.0.1"]},
                         id="xff-list-plain"),
            pytest.param('"81.2.69.142, 10.0.0.1" - -',
                         {"client_ip": "81.2.69.142", "client_ip_list": ["81.2.69.142", "10.0.0.1"]},
                         id="xff-list-quoted"),
            pytest.param("81.2.69.142,10.0.0.1 - -",
                         {"client_ip": "81.2.69.142", "client_ip_list": ["81.2.69.142", "10.0.0.1"]},
                         id="xff-list-no-space"),
            pytest.param("10.1.2.3, 192.168.0.9, 89.160.20.112, 10.0.0.1 - -",
                         {"client_ip": "89.160.20.112",
                          "client_ip_list": ["10.1.2.3", "192.168.0.9", "89.160.20.112", "10.0.0.1"]},
                         id="first-public-not-first-entry"),
            pytest.param('"10.1.2.3, 2a02:cf40::1, 10.0.0.1" - -',
                         {"client_ip": "2a02:cf40::1", "client_ip_list": ["10.1.2.3", "2a02:cf40::1", "10.0.0.1"]},
                         id="ipv6-mixed-with-ipv4"),
            pytest.param("81.2.69.142:51234, [2a02:cf40::1]:443, 10.0.0.1:80 - -",
                         {"client_ip": "81.2.69.142", "client_port": 51234,
                          "client_ip_list": ["81.2.69.142:51234", "[2a02:cf40::1]:443", "10.0.0.1:80"]},
                         id="entries-with-ports"),
            pytest.param("[2a02:cf40::1]:443 - -", {"client_ip": "2a02:cf40::1", "client_port": 443},
                         id="one-bracketed-ipv6-with-port"),
            pytest.param("10.0.0.7, 192.168.1.1 - -",
                         {"client_ip": "10.0.0.7", "client_ip_list": ["10.0.0.7", "192.168.1.1"]},
                         id="no-public-first-private"),
            pytest.param("unknown, 81.2.69.160 - -",
                         {"client_ip": "81.2.69.160", "client_ip_list": ["unknown", "81.2.69.160"]},
                         id="unknown-entry-skipped"),
            pytest.param("2001:db8::1 - -", {"client_ip": "2001:db8::1"}, id="ipv6-client"),
            pytest.param("::ffff:81.2.69.142 - -", {"client_ip": "::ffff:81.2.69.142"}, id="ipv4-mapped-ipv6"),
            pytest.param("shop.example.com 81.2.69.142 - -",
                         {"vhost": "shop.example.com", "client_ip": "81.2.69.142"}, id="nginx-host-first"),
            pytest.param("www.example.com:443 81.2.69.142 - -",
                         {"vhost": "www.example.com", "vhost_port": 443, "client_ip": "81.2.69.142"},
                         id="apache-vhost-combined"),
            pytest.param('shop.example.com "89.160.20.112, 10.0.0.1" - alice',
                         {"vhost": "shop.example.com", "client_ip": "89.160.20.112",
                          "client_ip_list": ["89.160.20.112", "10.0.0.1"], "user": "alice"},
                         id="vhost-and-quoted-list"),
            pytest.param("shop.example.com 81.2.69.142, 10.0.0.1 - -",
                         {"vhost": "shop.example.com", "client_ip": "81.2.69.142",
                          "client_ip_list": ["81.2.69.142", "10.0.0.1"]},
                         id="vhost-and-plain-list"),
            pytest.param('"-" - -', {}, id="quoted-dash-remote-absent"),
            pytest.param("- - -", {}, id="dash-remote-absent"),
            pytest.param("client.example.net - -", {"client_ip": "client.example.net"}, id="hostname-lookups"),
        ],
    )  # fmt: skip
    def test_remote_position(self, head: str, expected: dict[str, Any]) -> None:
        assert parse(f"{head} {self.REST}") == {**self.BASE, **expected}

    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(
                '10.0.0.2 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" '
                '"89.160.20.112, 10.0.0.1"',
                {"client_ip": "89.160.20.112", "x_forwarded_for": "89.160.20.112, 10.0.0.1",
                 "client_ip_list": ["89.160.20.112", "10.0.0.1", "10.0.0.2"]},
                id="private-remote-public-xff-wins",
            ),
            pytest.param(
                '81.2.69.142 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" '
                '"89.160.20.112"',
                {"client_ip": "81.2.69.142", "x_forwarded_for": "89.160.20.112"},
                id="public-remote-never-replaced",
            ),
            pytest.param(
                '10.0.0.2 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" "10.9.9.9"',
                {"client_ip": "10.0.0.2", "x_forwarded_for": "10.9.9.9"},
                id="private-xff-keeps-remote",
            ),
            pytest.param(
                '10.0.0.2 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" "-"',
                {"client_ip": "10.0.0.2"},
                id="xff-dash-absent",
            ),
        ],
    )  # fmt: skip
    def test_trailing_x_forwarded_for(self, line: str, expected: dict[str, Any]) -> None:
        event = parse(line)
        got = {k: event[k] for k in ("client_ip", "x_forwarded_for", "client_ip_list") if k in event}
        assert got == expected

    @pytest.mark.parametrize(
        ("tail", "expected"),
        [
            pytest.param('"-" 0.050 0.020, 0.030 : 0.001 10.0.0.5:80, 10.0.0.6:80 : 10.0.1.1:80',
                         {"request_time": 0.05, "upstream_response_time": 0.051,
                          "upstream_addr": "10.0.0.5:80, 10.0.0.6:80 : 10.0.1.1:80"},
                         id="bare-upstream-lists"),
            pytest.param('rt=0.050 uct="0.001, 0.002" uht="-, 0.010" urt="0.020, 0.030 : 0.001" '
                         'ua="10.0.0.5:80, 10.0.0.6:80 : 10.0.1.1:80" us="502, 504 : 200" ucs=-',
                         {"request_time": 0.05, "upstream_connect_time": 0.003, "upstream_header_time": 0.01,
                          "upstream_response_time": 0.051, "upstream_addr": "10.0.0.5:80, 10.0.0.6:80 : 10.0.1.1:80",
                          "upstream_status": "502, 504 : 200"},
                         id="keyed-upstream-lists"),
            pytest.param("- - -", {}, id="all-dashes"),
            pytest.param('"81.2.69.142" 0.004 - -', {"x_forwarded_for": "81.2.69.142", "request_time": 0.004},
                         id="xff-then-times"),
        ],
    )  # fmt: skip
    def test_upstream_fields(self, tail: str, expected: dict[str, Any]) -> None:
        line = f'10.0.0.2 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" {tail}'
        event = parse(line)
        keys = ("x_forwarded_for", "request_time", "upstream_connect_time", "upstream_header_time",
                "upstream_response_time", "upstream_addr", "upstream_status", "upstream_cache_status")  # fmt: skip
        assert {k: event[k] for k in keys if k in event} == expected

    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param('81.2.69.142 - - [02/Jan/2024:03:04:05 +0000] "" 400 0 "-" "-"',
                         {"client_ip": "81.2.69.142", "@timestamp": "2024-01-02T03:04:05.000Z", "status": 400,
                          "bytes": 0}, id="empty-request"),
            pytest.param('- - - [02/Jan/2024:03:04:05 +0000] "-" - - "-" "-"',
                         {"@timestamp": "2024-01-02T03:04:05.000Z"}, id="dash-everywhere"),
            pytest.param('"-" - - [02/Jan/2024:03:04:05 +0000] "-" 499 0 "-" "-" "-" - - -',
                         {"@timestamp": "2024-01-02T03:04:05.000Z", "status": 499, "bytes": 0},
                         id="dash-everywhere-with-extras"),
        ],
    )  # fmt: skip
    def test_dashes_and_empty(self, line: str, expected: dict[str, Any]) -> None:
        assert parse(line) == expected

    def test_fixture_of_production_lines(self) -> None:
        for line in fixture("access_production.log"):
            event = parse(line)
            assert "tags" not in event, line
            assert event["status"] >= 100, line
            assert "client_ip" in event, line
            assert "-" not in event.values(), line


class TestFailures:
    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("", id="empty"),
            pytest.param("hello world", id="text"),
            pytest.param('{"level":"info"}', id="json"),
            pytest.param('1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1" abc 5', id="bad-status"),
            pytest.param('1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET / HTTP/1.1', id="truncated"),
        ],
    )
    def test_no_match_keeps_message_and_tags(self, line: str) -> None:
        assert parse(line) == {"tags": [GROK_FAILURE]}

    def test_bad_date_tags_and_keeps_existing_timestamp(self) -> None:
        line = '1.2.3.4 - - [31/Foo/2024:03:04:05 +0000] "GET / HTTP/1.1" 200 5'
        event = AccessLogFormat()({"message": line, "@timestamp": "2030-01-01T00:00:00.000Z"})
        assert event["@timestamp"] == "2030-01-01T00:00:00.000Z"
        assert event["tags"] == [DATE_FAILURE]
        assert event["status"] == 200

    def test_missing_message(self) -> None:
        assert AccessLogFormat()({}) == {"tags": [GROK_FAILURE]}

    def test_existing_tags_kept_and_not_duplicated(self) -> None:
        event = AccessLogFormat()({"message": "x", "tags": ["_truncated", GROK_FAILURE]})
        assert event["tags"] == ["_truncated", GROK_FAILURE]

    def test_invalid_utf8_replacement_chars(self) -> None:
        line = '1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET /caf\ufffd HTTP/1.1" 200 5 "-" "Mozilla\ufffd\ufffd"'
        event = parse(line)
        assert event["path"] == "/caf\ufffd"
        assert event["user_agent"] == "Mozilla\ufffd\ufffd"

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("a" * (10 * 1024 * 1024), id="10MB-garbage"),
            pytest.param(
                '1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "' + "\\x" * (5 * 1024 * 1024), id="10MB-open-quote"
            ),
            pytest.param("1 " * (5 * 1024 * 1024), id="10MB-tokens"),
        ],
    )
    def test_huge_line_is_bounded_and_tagged(self, line: str) -> None:
        start = time.perf_counter()
        event = AccessLogFormat()({"message": line})
        assert time.perf_counter() - start < 2.0
        assert event["tags"] == [GROK_FAILURE]
        assert event["message"] is line

    def test_huge_valid_line_parses(self) -> None:
        path = "/" + "a" * (10 * 1024 * 1024)
        line = f'1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "GET {path} HTTP/1.1" 414 0 "-" "-"'
        start = time.perf_counter()
        event = AccessLogFormat()({"message": line})
        assert time.perf_counter() - start < 2.0
        assert event["status"] == 414
        assert len(event["path"]) == len(path)
