"""HAProxy httplog, tcplog and error lines behind a syslog header."""

from __future__ import annotations

from typing import Any

BASE = (
    "10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- "
    '1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1"'
)
HTTP = "Feb  6 12:14:14 localhost haproxy[14389]: " + BASE
TCP = (
    "Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 "
    "0/0/5007 212 -- 0/0/0/0/3 0/0"
)
ERR = (
    "Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33318 [06/Feb/2009:12:14:14.655] https-in/1: "
    "SSL handshake failure"
)

SAMPLES: dict[str, tuple[str, str, str]] = {
    "HAPROXYTIME": ("12:14:14.655", "12:14:14.655", "12:14"),
    "HAPROXYDATE": ("[06/Feb/2009:12:14:14.655]", "06/Feb/2009:12:14:14.655", "06/Feb/2009 12:14:14.655"),
    "HAPROXYCAPTUREDREQUESTHEADERS": ("1wt.eu|Mozilla}", "1wt.eu|Mozilla", "a}b"),
    "HAPROXYCAPTUREDRESPONSEHEADERS": ("text/html}", "text/html", "a}b"),
    "HAPROXYHTTPBASE": (BASE, BASE, BASE.replace(" 200 ", " OK ")),
    "HAPROXYHTTP": (HTTP, HTTP, HTTP.replace("[06/Feb/2009:12:14:14.655]", "[06/Feb/2009]")),
    "HAPROXYTCP": (TCP, TCP, TCP.replace("0/0/5007", "0/5007")),
    "HAPROXYERROR": (ERR, ERR, ERR.replace("https-in/1:", "https-in:")),
    # ECS v1 only
    "HAPROXYURI": ("http://www.example.com:8080/a?b=1", "http://www.example.com:8080/a?b=1", "http://exa mple.com"),
    "HAPROXYHTTPREQUESTLINE": ("GET /index.html HTTP/1.1", "GET /index.html HTTP/1.1", "GET  /index.html"),
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{HAPROXYHTTP}", "disabled", HTTP, {"syslog_timestamp": "Feb  6 12:14:14", "syslog_server": "localhost",
     "program": "haproxy", "pid": "14389", "client_ip": "10.0.1.2", "client_port": "33317",
     "accept_date": "06/Feb/2009:12:14:14.655", "haproxy_monthday": "06", "haproxy_milliseconds": "655",
     "frontend_name": "http-in", "backend_name": "static", "server_name": "srv1", "time_request": "10",
     "time_duration": "109", "http_status_code": "200", "bytes_read": "2750", "termination_state": "----",
     "actconn": "1", "retries": "0", "captured_request_headers": "1wt.eu", "http_verb": "GET",
     "http_request": "/index.html", "http_version": "1.1"}),
    ("%{HAPROXYHTTP}", "v1", HTTP, {"timestamp": "Feb  6 12:14:14", "host": {"hostname": "localhost"},
     "process": {"name": "haproxy", "pid": 14389}, "source": {"address": "10.0.1.2", "port": 33317, "bytes": 2750},
     "haproxy": {"request_date": "06/Feb/2009:12:14:14.655", "frontend_name": "http-in", "backend_name": "static",
     "server_name": "srv1", "total_time_ms": "109", "termination_state": "----", "connections": {"active": 1,
     "retries": 0}, "http": {"request": {"time_wait_ms": 10, "captured_headers": "1wt.eu"}}},
     "http": {"response": {"status_code": 200}, "request": {"method": "GET"}, "version": "1.1"},
     "url": {"original": "/index.html", "path": "/index.html"}}),
    ("%{HAPROXYTCP}", "disabled", TCP, {"client_ip": "10.0.1.2", "time_queue": "0", "time_backend_connect": "0",
     "time_duration": "5007", "bytes_read": "212", "termination_state": "--"}),
    ("%{HAPROXYTCP}", "v1", TCP, {"haproxy": {"total_waiting_time_ms": 0, "total_time_ms": "5007"},
     "source": {"bytes": 212}}),
    ("%{HAPROXYERROR}", "disabled", ERR, {"frontend_name": "https-in", "bind_name": "1",
     "error_message": "SSL handshake failure"}),
]  # fmt: skip
