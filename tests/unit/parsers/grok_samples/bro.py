"""Bro 2.x TSV logs: http, dns, conn, files."""

from __future__ import annotations

from typing import Any

T = "\t"
HEAD = ["1333458850.375568", "ClEkJM2Vm5giqnMf4h", "10.131.47.185", "1923", "79.101.110.141", "80"]
HTTP = T.join([*HEAD, "1", "GET", "search.example.com", "/search?q=grok", "http://www.example.com/",
               "Mozilla/5.0 (X11; Linux x86_64)", "0", "5340", "200", "OK", "-", "-", "-", "(empty)", "-", "-", "-",
               "-", "-", "FhVw0y3pOzmdhMTXw5", "text/html"])  # fmt: skip
DNS = T.join([*HEAD[:5], "53", "udp", "8383", "www.example.com", "1", "C_INTERNET", "1", "A", "0", "NOERROR",
              "F", "F", "T", "T", "0", "93.184.216.34", "3600.000000", "F"])  # fmt: skip
CONN = T.join([*HEAD, "tcp", "http", "0.312041", "440", "5340", "SF", "-", "-", "0", "ShADadfF", "7", "812", "8",
               "5672", "(empty)"])  # fmt: skip
FILES = T.join(["1333458850.375568", "FhVw0y3pOzmdhMTXw5", "79.101.110.141", "10.131.47.185", "ClEkJM2Vm5giqnMf4h",
                "HTTP", "0", "SHA1,MD5", "text/html", "-", "0.000312", "F", "F", "5340", "5340", "0", "0", "F", "-",
                "8d777f385d3dfec8815d20f7496026dc", "a17c1f4ff47c2ea7d9b2a84ec1d2b2fb46d1ec01", "-", "-"])  # fmt: skip

SAMPLES: dict[str, tuple[str, str, str]] = {
    "BRO_HTTP": (HTTP, HTTP, HTTP.replace("\t200\t", "\tOK\t", 1).replace("\t0\t5340\t", "\tx\t5340\t")),
    "BRO_DNS": (DNS, DNS, DNS.replace("\tudp\t", "\t\t")),
    "BRO_CONN": (CONN, CONN, CONN.replace("\t", " ")),
    "BRO_FILES": (FILES, FILES, FILES.replace("79.101.110.141", "host-a")),
    "BRO_BOOL": ("T", "T", "true"),
    "BRO_DATA": ("text/html\t-", "text/html", "text\thtml"),
    "BRO_FIELD": ("(empty)\t-", "(empty)", "a\tb"),
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{BRO_HTTP}", "disabled", HTTP, {"ts": "1333458850.375568", "uid": "ClEkJM2Vm5giqnMf4h",
     "orig_h": "10.131.47.185", "resp_p": "80", "method": "GET", "domain": "search.example.com",
     "uri": "/search?q=grok", "status_code": "200", "resp_mime_types": "text/html"}),
    ("%{BRO_HTTP}", "v1", HTTP, {"timestamp": "1333458850.375568", "zeek": {"session_id": "ClEkJM2Vm5giqnMf4h"},
     "source": {"ip": "10.131.47.185", "port": 1923}, "destination": {"ip": "79.101.110.141", "port": 80},
     "http": {"request": {"method": "GET"}, "response": {"status_code": 200, "mime_type": "text/html"}},
     "url": {"domain": "search.example.com", "original": "/search?q=grok"}}),
    ("%{BRO_DNS}", "disabled", DNS, {"proto": "udp", "query": "www.example.com", "qtype_name": "A",
     "rcode_name": "NOERROR", "answers": "93.184.216.34"}),
    ("%{BRO_DNS}", "v1", DNS, {"network": {"transport": "udp"}, "dns": {"id": 8383, "question": {"name":
     "www.example.com", "type": "A"}, "response_code": "NOERROR"}, "zeek": {"dns": {"RD": "T", "Z": 0}}}),
    ("%{BRO_CONN}", "disabled", CONN, {"proto": "tcp", "service": "http", "conn_state": "SF",
     "history": "ShADadfF", "tunnel_parents": "(empty)"}),
    ("%{BRO_CONN}", "v1", CONN, {"network": {"transport": "tcp", "protocol": "http"}, "zeek": {"connection": {
     "state": "SF", "duration": 0.312041}}, "source": {"packets": 7, "bytes": 812}}),
    ("%{BRO_FILES}", "disabled", FILES, {"fuid": "FhVw0y3pOzmdhMTXw5", "tx_hosts": "79.101.110.141",
     "mime_type": "text/html", "md5": "8d777f385d3dfec8815d20f7496026dc"}),
    ("%{BRO_FILES}", "v1", FILES, {"server": {"ip": "79.101.110.141"}, "client": {"ip": "10.131.47.185"},
     "file": {"mime_type": "text/html", "size": 5340, "hash": {"md5": "8d777f385d3dfec8815d20f7496026dc"}}}),
]  # fmt: skip
