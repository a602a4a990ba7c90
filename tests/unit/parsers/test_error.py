"""nginx and Apache error logs (parsers/formats/error.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parsers.formats.error import ErrorLogFormat
from parsers.types import DATE_FAILURE, GROK_FAILURE

DATA = Path(__file__).resolve().parents[2] / "data" / "parsers"


def fixture(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


def parse(line: str, **kwargs: Any) -> dict[str, Any]:
    return ErrorLogFormat(**kwargs)({"message": line})


class TestNginx:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(
                fixture("error_nginx.log")[0],
                {"@timestamp": "2024-01-02T03:04:05.000Z", "level": "error", "pid": 1234, "tid": 5678,
                 "connection_id": 99,
                 "message": "connect() failed (111: Connection refused) while connecting to upstream",
                 "client_ip": "198.51.100.7", "server": "example.com", "request": "GET /x?y=1 HTTP/1.1",
                 "method": "GET", "path": "/x", "query": "y=1", "http_version": "1.1",
                 "upstream": "http://10.0.0.1:8080/x?y=1", "host_header": "example.com",
                 "referrer": "https://example.com/"},
                id="full",
            ),
            pytest.param(
                "2024/01/02 03:04:06 [notice] 1#1: signal process started",
                {"@timestamp": "2024-01-02T03:04:06.000Z", "level": "notice", "pid": 1, "tid": 1,
                 "message": "signal process started"},
                id="no-connection-no-client",
            ),
            pytest.param(
                fixture("error_nginx.log")[3],
                {"@timestamp": "2024-01-02T03:04:08.000Z", "level": "crit", "pid": 7, "tid": 7, "connection_id": 12,
                 "message": "SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL "
                            "handshaking",
                 "client_ip": "81.2.69.142", "server": "0.0.0.0:443"},
                id="client-and-server-only",
            ),
            pytest.param(
                '2024/01/02 03:04:09 [error] 7#7: *13 open() "/srv/f.ico" failed (2: No such file or directory), '
                'client: 89.160.20.112, server: www.example.com, request: "GET /f.ico HTTP/1.1", subrequest: "/ssi", '
                'host: "www.example.com"',
                {"@timestamp": "2024-01-02T03:04:09.000Z", "level": "error", "pid": 7, "tid": 7, "connection_id": 13,
                 "message": 'open() "/srv/f.ico" failed (2: No such file or directory)', "client_ip": "89.160.20.112",
                 "server": "www.example.com", "request": "GET /f.ico HTTP/1.1", "method": "GET", "path": "/f.ico",
                 "http_version": "1.1", "subrequest": "/ssi", "host_header": "www.example.com"},
                id="quoted-message-and-extra-key",
            ),
            pytest.param(
                '2024/01/02 03:04:09 [error] 7#7: *13 bad, client: 1.2.3.4, server: s, request: "\\x16\\x03"',
                {"@timestamp": "2024-01-02T03:04:09.000Z", "level": "error", "pid": 7, "tid": 7, "connection_id": 13,
                 "message": "bad", "client_ip": "1.2.3.4", "server": "s", "request": "\\x16\\x03"},
                id="malformed-request-kept-raw",
            ),
        ],
    )  # fmt: skip
    def test_line(self, line: str, expected: dict[str, Any]) -> None:
        assert parse(line) == expected

    def test_never_sets_reserved_host(self) -> None:
        for line in fixture("error_nginx.log"):
            event = parse(line)
            assert "host" not in event
            assert "tags" not in event


PHP_RECORD = (
    '2024/01/02 03:04:05 [error] 31#31: *1 FastCGI sent in stderr: "PHP message: PHP Warning:  Undefined variable '
    "$user in /var/www/html/index.php on line 7PHP message: PHP Fatal error:  Uncaught Error: Call to undefined "
    "function foo() in /var/www/html/index.php:9\nStack trace:\n#0 {main}\n  thrown in /var/www/html/index.php on "
    'line 9" while reading response header from upstream, client: 81.2.69.142, server: shop.example.com, request: '
    '"GET /index.php?id=3 HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: '
    '"shop.example.com", referrer: "https://shop.example.com/cart"'
)


class TestNginxProduction:
    def test_multiline_fastcgi_php_record(self) -> None:
        event = parse(PHP_RECORD)
        assert event["message"].startswith('FastCGI sent in stderr: "PHP message: PHP Warning:')
        assert event["message"].endswith('on line 9" while reading response header from upstream')
        assert "\nStack trace:\n#0 {main}\n" in event["message"]
        fields = {k: v for k, v in event.items() if k != "message"}
        assert fields == {
            "@timestamp": "2024-01-02T03:04:05.000Z", "level": "error", "pid": 31, "tid": 31, "connection_id": 1,
            "client_ip": "81.2.69.142", "server": "shop.example.com", "request": "GET /index.php?id=3 HTTP/1.1",
            "method": "GET", "path": "/index.php", "query": "id=3", "http_version": "1.1",
            "upstream": "fastcgi://unix:/run/php/php8.2-fpm.sock:", "host_header": "shop.example.com",
            "referrer": "https://shop.example.com/cart",
        }  # fmt: skip

    def test_client_text_inside_the_message_is_not_a_field(self) -> None:
        line = (
            '2024/01/02 03:04:05 [error] 31#31: *1 FastCGI sent in stderr: "PHP message: bad input, client: 6.6.6.6, '
            'server: evil" while reading upstream, client: 81.2.69.142, server: s, host: "h"'
        )
        event = parse(line)
        assert event["client_ip"] == "81.2.69.142"
        assert event["server"] == "s"
        assert event["host_header"] == "h"
        assert "client: 6.6.6.6" in event["message"]

    @pytest.mark.parametrize(
        ("tail", "expected"),
        [
            pytest.param(', client: 1.2.3.4, server: s, request: "GET / HTTP/1.1", subrequest: "/ssi", '
                         'upstream: "http://10.0.0.1:80/", host: "h", referrer: "https://r/"',
                         {"client_ip": "1.2.3.4", "server": "s", "request": "GET / HTTP/1.1", "method": "GET",
                          "path": "/", "http_version": "1.1", "subrequest": "/ssi", "upstream": "http://10.0.0.1:80/",
                          "host_header": "h", "referrer": "https://r/"},
                         id="every-http-field-with-subrequest"),
            pytest.param(', client: 2001:db8::7, server: [::]:443, request: "GET / HTTP/2.0", host: "h"',
                         {"client_ip": "2001:db8::7", "server": "[::]:443", "request": "GET / HTTP/2.0",
                          "method": "GET", "path": "/", "http_version": "2.0", "host_header": "h"},
                         id="ipv6-client-and-listen"),
            pytest.param(', client: 10.0.0.8, server: 0.0.0.0:3306, upstream: "10.0.0.20:3306", '
                         "bytes from/to client:12/0, bytes from/to upstream:0/34",
                         {"client_ip": "10.0.0.8", "server": "0.0.0.0:3306", "upstream": "10.0.0.20:3306",
                          "bytes_from_client": 12, "bytes_to_client": 0, "bytes_from_upstream": 0,
                          "bytes_to_upstream": 34},
                         id="stream-module"),
            pytest.param(', client: 1.2.3.4, server: -, request: "-", host: "-"', {"client_ip": "1.2.3.4"},
                         id="dashes-absent"),
        ],
    )  # fmt: skip
    def test_trailing_fields(self, tail: str, expected: dict[str, Any]) -> None:
        event = parse("2024/01/02 03:04:05 [error] 7#7: *12 upstream timed out" + tail)
        assert event.pop("message") == "upstream timed out"
        assert event == {"@timestamp": "2024-01-02T03:04:05.000Z", "level": "error", "pid": 7, "tid": 7,
                         "connection_id": 12, **expected}  # fmt: skip


class TestApache:
    @pytest.mark.parametrize(
        ("line", "expected"),
        [
            pytest.param(
                fixture("error_apache.log")[0],
                {"@timestamp": "2000-10-11T14:32:52.000Z", "level": "error", "client_ip": "127.0.0.1",
                 "message": "client denied by server configuration: /export/home/live/ap/htdocs/test"},
                id="2.2",
            ),
            pytest.param(
                fixture("error_apache.log")[1],
                {"@timestamp": "2000-10-11T14:32:52.123Z", "level": "error", "module": "core", "pid": 1234,
                 "tid": 5678, "client_ip": "1.2.3.4", "client_port": 5678, "error_code": "AH00124",
                 "message": "Request exceeded the limit of 10 internal redirects due to probable configuration error.",
                 "referrer": "http://example.com/"},
                id="2.4-client-referer",
            ),
            pytest.param(
                fixture("error_apache.log")[2],
                {"@timestamp": "2024-01-02T03:04:05.654Z", "level": "error", "module": "proxy", "pid": 4242,
                 "tid": 140234567, "os_error": "(111)Connection refused", "error_code": "AH00957",
                 "message": "HTTP: attempt to connect to 127.0.0.1:8080 (127.0.0.1) failed"},
                id="2.4-os-error",
            ),
            pytest.param(
                fixture("error_apache.log")[4],
                {"@timestamp": "2024-01-02T03:04:07.100Z", "level": "error", "module": "authz_core", "pid": 7,
                 "tid": 9, "client_ip": "::1", "client_port": 51234, "error_code": "AH01630",
                 "message": "client denied by server configuration: /var/www/private"},
                id="2.4-ipv6-client",
            ),
            pytest.param(
                fixture("error_apache.log")[5],
                {"@timestamp": "2024-01-02T03:04:08.200Z", "level": "trace3", "module": "ssl", "pid": 7, "tid": 9,
                 "message": "ssl_engine_io.c(2135): OpenSSL: I/O error"},
                id="2.4-trace-level",
            ),
            pytest.param(
                "[Tue Jan 02 03:04:09 2024] [warn] [client [2001:db8::7]:443] odd",
                {"@timestamp": "2024-01-02T03:04:09.000Z", "level": "warn", "client_ip": "2001:db8::7",
                 "client_port": 443, "message": "odd"},
                id="bracketed-ipv6-client",
            ),
        ],
    )  # fmt: skip
    def test_line(self, line: str, expected: dict[str, Any]) -> None:
        assert parse(line) == expected

    def test_every_fixture_line_parses(self) -> None:
        for line in fixture("error_apache.log"):
            event = parse(line)
            assert "tags" not in event, line
            assert event["level"] == event["level"].lower()


class TestFailures:
    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("", id="empty"),
            pytest.param("2024/01/02 nothing", id="nginx-date-only"),
            pytest.param("[not apache] x", id="bracket-text"),
            pytest.param("hello", id="text"),
            pytest.param("a" * (10 * 1024 * 1024), id="10MB"),
        ],
    )
    def test_no_match(self, line: str) -> None:
        event = parse(line)
        assert event == {"message": line, "tags": [GROK_FAILURE]}

    def test_bad_date(self) -> None:
        event = ErrorLogFormat()({"message": "2024/13/45 03:04:05 [error] 1#1: x", "@timestamp": "keep"})
        assert event["@timestamp"] == "keep"
        assert event["tags"] == [DATE_FAILURE]
        assert event["level"] == "error"

    def test_overwrite_message_false_keeps_raw_line(self) -> None:
        line = "2024/01/02 03:04:06 [notice] 1#1: signal process started"
        event = parse(line, overwrite_message=False)
        assert event["message"] == line
        assert event["level"] == "notice"
