"""Zeek 3.x+ TSV logs (ECS v1 only: Logstash has no legacy names for them)."""

from __future__ import annotations

from typing import Any

T = "\t"
HEAD = ["1600000000.123456", "CHhAvVGS1DHFjwGM9", "192.168.1.10", "52345", "93.184.216.34", "80"]
HTTP = T.join([*HEAD, "1", "GET", "www.example.com", "/", "-", "1.1", "curl/7.68.0", "-", "0", "1256", "200", "OK",
               "-", "-", "(empty)", "-", "-", "-", "-", "-", "-", "FakF1a3jT5CQdZ7kTe", "-", "text/html"])  # fmt: skip
DNS = T.join([*HEAD[:5], "53", "udp", "31459", "0.012", "www.example.com", "1", "C_INTERNET", "1", "A", "0",
              "NOERROR", "F", "F", "T", "T", "0", "93.184.216.34", "86400.000000", "F"])  # fmt: skip
CONN = T.join([*HEAD, "tcp", "http", "0.215", "79", "1256", "SF", "T", "F", "0", "ShADadFf", "6", "399", "5",
               "1524", "-", "00:0c:29:aa:bb:cc", "00:50:56:dd:ee:ff"])  # fmt: skip
FILES = T.join(["1600000000.123456", "FakF1a3jT5CQdZ7kTe", "93.184.216.34", "192.168.1.10", "CHhAvVGS1DHFjwGM9",
                "HTTP", "0", "(empty)", "text/html", "index.html", "0.000", "-", "F", "1256", "1256", "0", "0", "F",
                "-", "-", "-", "-", "-", "F", "-"])  # fmt: skip

SAMPLES: dict[str, tuple[str, str, str]] = {
    "ZEEK_BOOL": ("F", "F", "false"),
    "ZEEK_DATA": ("text/html\t-", "text/html", ""),
    "ZEEK_FILES_TX_HOSTS": ("10.0.0.1,10.0.0.2", "10.0.0.1,10.0.0.2", "10.0.0.1;10.0.0.2"),
    "ZEEK_FILES_RX_HOSTS": ("192.168.1.10", "192.168.1.10", "192.168.1"),
    "ZEEK_HTTP": (HTTP, HTTP, HTTP.replace("\t1.1\t", "\tHTTP/1.1\t")),
    "ZEEK_DNS": (DNS, DNS, DNS.replace("\tT\tT\t", "\tyes\tyes\t")),
    "ZEEK_CONN": (CONN, CONN, CONN.replace("\t0.215\t", "\tquick\t")),
    "ZEEK_FILES": (FILES, FILES, FILES.replace("\t1256\t1256\t", "\tall\t1256\t")),
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{ZEEK_HTTP}", "v1", HTTP, {"http": {"version": "1.1", "request": {"method": "GET"}, "response": {
     "status_code": 200, "body": {"bytes": 1256}, "mime_type": "text/html"}}, "user_agent": {"original": "curl/7.68.0"},
     "url": {"domain": "www.example.com", "original": "/"}}),
    ("%{ZEEK_DNS}", "v1", DNS, {"zeek": {"dns": {"rtt": 0.012, "AA": "F", "RD": "T", "Z": 0}},
     "dns": {"question": {"name": "www.example.com", "type": "A"}}}),
    ("%{ZEEK_CONN}", "v1", CONN, {"zeek": {"connection": {"local_orig": "T", "local_resp": "F", "duration": 0.215}},
     "source": {"mac": "00:0c:29:aa:bb:cc"}, "destination": {"mac": "00:50:56:dd:ee:ff", "bytes": 1524}}),
    ("%{ZEEK_FILES}", "v1", FILES, {"server": {"ip": "93.184.216.34"}, "client": {"ip": "192.168.1.10"},
     "file": {"name": "index.html", "size": 1256}, "zeek": {"files": {"extracted_cutoff": "F"}}}),
    ("%{ZEEK_FILES_TX_HOSTS}", "v1", "10.0.0.1,10.0.0.2", {"server": {"ip": "10.0.0.1"},
     "zeek": {"files": {"tx_hosts": "10.0.0.1,10.0.0.2"}}}),
]  # fmt: skip
