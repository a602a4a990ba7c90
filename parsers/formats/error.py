"""nginx and Apache (2.2 / 2.4) error logs.

nginx::

    2024/01/02 03:04:05 [error] 1234#5678: *99 connect() failed ..., client: 1.2.3.4,
    server: example.com, request: "GET /x HTTP/1.1", upstream: "http://10.0.0.1:8080/x",
    host: "example.com", referrer: "https://example.com/"

-> ``@timestamp``, ``level``, ``pid`` (int), ``tid`` (int), ``connection_id``
(int), ``message`` (the text before ``, client:``), ``client_ip``, ``server``,
``request`` (+ ``method``, ``path``, ``query``, ``http_version``),
``upstream``, ``host_header`` (the request's Host header; ``host`` is reserved
for the shipping host), ``referrer``; other ``, key: value`` pairs nginx adds
(``subrequest``, ``port``, ...) are kept under their own key when it is free;
the stream module's ``bytes from/to client:N/M`` and ``bytes from/to
upstream:N/M`` become ``bytes_from_client``, ``bytes_to_client``,
``bytes_from_upstream``, ``bytes_to_upstream`` (ints).

A record may span several lines: PHP-FPM's messages relayed by nginx
(``FastCGI sent in stderr: "PHP message: ... Stack trace: #0 ..."``) keep
their newlines, so the trailing fields follow the last line. Join them with
the ``nginx_error`` multiline preset (a record starts with nginx's date); the
fields are read after the *last* ``, client:``, so text inside the message
(PHP output can hold anything) is never taken for them.

Apache 2.4 (default ErrorLogFormat) and 2.2::

    [Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] (111)Connection refused:
    [client 1.2.3.4:5678] AH00124: message, referer: http://example.com/
    [Wed Oct 11 14:32:52 2000] [error] [client 1.2.3.4] message

-> ``@timestamp``, ``level``, ``module``, ``pid``, ``tid`` (ints),
``os_error`` (``(111)Connection refused``), ``client_ip``, ``client_port``
(int), ``error_code`` (``AH00124``), ``message``, ``referrer``.

``level`` is kept lowercase as the servers write it (``debug``, ``info``,
``notice``, ``warn``, ``error``, ``crit``, ``alert``, ``emerg``, Apache's
``trace1``..``trace8``), unlike application logs whose levels are uppercased.
"""

from __future__ import annotations

import re

from parsers.dates import DateParser
from parsers.formats import set_request_fields, unescape_quoted
from parsers.ipaddr import split_host_port
from parsers.types import DATE_FAILURE, GROK_FAILURE, RESERVED_KEYS, Event, add_tag

__all__ = ["ErrorLogFormat"]

NGINX_ERROR = re.compile(
    r"(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[([a-z]++)\] (\d++)#(\d++): (?:\*(\d++) )?(.*+)", re.DOTALL
)
# ", key: value" pairs after the message; values are quoted or run to the next ", ".
_NGINX_KV = re.compile(
    r", (?:bytes from/to (client|upstream):(\d++)/(\d++)"
    r'|([a-z_]++): (?:"((?:[^"\\]++|\\.)*+)"|((?:[^,]++|,(?! [a-z_]++: | bytes from/to ))*+)))'
)
# The usual order nginx writes them in, matched by one regex; anything else goes through _NGINX_KV.
_QV = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
_NGINX_TAIL = re.compile(
    r", client: ([^,]++), server: ([^,]*+)"
    r'(?:, request: "(' + _QV + r')")?'
    r'(?:, upstream: "(' + _QV + r')")?'
    r'(?:, host: "(' + _QV + r')")?'
    r'(?:, referrer: "(' + _QV + r')")?'
    r"\s*+",
)
_NGINX_KEYS = {
    "client": "client_ip",
    "server": "server",
    "request": "request",
    "upstream": "upstream",
    "host": "host_header",
    "referrer": "referrer",
}

APACHE_ERROR = re.compile(
    r"\[((?:[A-Za-z]{3} )?[A-Za-z]{3} [ \d]\d [\d:.]++ \d{4})\] "
    r"\[(?:([A-Za-z0-9_.-]++):)?([a-z]++[1-8]?)\]"
    r"(?: \[pid (\d++)(?::tid (\d++))?\])?"
    r"(?: (\([0-9-]++\)[^:\[\]]*+):)?"
    r"(?: \[(?:client|remote) (\[[^\]]*+\](?::\d++)?|[^\]]++)\])?"
    r" ?(?:([A-Z]{1,4}[0-9]{3,6}): )?"
    r"(.*+)",
    re.DOTALL,
)


class ErrorLogFormat:
    """Parse nginx and Apache error-log lines (see module docstring for the fields)."""

    __slots__ = ("_parse_date", "overwrite_message")

    def __init__(self, dates: DateParser | None = None, *, overwrite_message: bool = True) -> None:
        self._parse_date = (dates or DateParser()).parse
        self.overwrite_message = overwrite_message

    def parse(self, event: Event, message: str) -> bool:
        """Fill ``event`` from ``message``; False (nothing set) if it is not an error-log line."""
        c = message[:1]
        if c.isdigit():
            return self._parse_nginx(event, message)
        if c == "[":
            return self._parse_apache(event, message)
        return False

    def __call__(self, event: Event) -> Event:
        message = event.get("message")
        if not isinstance(message, str) or not self.parse(event, message):
            add_tag(event, GROK_FAILURE)
        return event

    def _set_time(self, event: Event, text: str) -> None:
        t = self._parse_date(text)
        if t is None:
            add_tag(event, DATE_FAILURE)
        else:
            event["@timestamp"] = t

    def _set_message(self, event: Event, text: str) -> None:
        if self.overwrite_message:
            event["message"] = text

    def _parse_nginx(self, event: Event, message: str) -> bool:
        m = NGINX_ERROR.match(message)
        if m is None:
            return False
        ts, level, pid, tid, conn, tail = m.groups()
        self._set_time(event, ts)
        event["level"] = level
        event["pid"] = int(pid)
        event["tid"] = int(tid)
        if conn is not None:
            event["connection_id"] = int(conn)
        cut = tail.rfind(", client: ")
        if cut < 0:
            self._set_message(event, tail)
            return True
        self._set_message(event, tail[:cut])
        fast = _NGINX_TAIL.fullmatch(tail, cut)
        if fast is not None:
            client, server, request, upstream, host, referrer = fast.groups()
            event["client_ip"] = client
            if server and server != "-":
                event["server"] = server
            if request and request != "-":
                request = unescape_quoted(request)
                event["request"] = request
                set_request_fields(event, request)
            if upstream and upstream != "-":
                event["upstream"] = unescape_quoted(upstream)
            if host and host != "-":
                event["host_header"] = unescape_quoted(host)
            if referrer and referrer != "-":
                event["referrer"] = unescape_quoted(referrer)
            return True
        for kv in _NGINX_KV.finditer(tail, cut):
            peer, sent_from, sent_to, key, quoted, bare = kv.groups()
            if peer is not None:
                event["bytes_from_" + peer] = int(sent_from)
                event["bytes_to_" + peer] = int(sent_to)
                continue
            value = unescape_quoted(quoted) if quoted is not None else bare
            if not value or value == "-":
                continue
            name = _NGINX_KEYS.get(key, key)
            if name == "request":
                event["request"] = value
                set_request_fields(event, value)
            elif name not in RESERVED_KEYS and name not in event:
                event[name] = value
        return True

    def _parse_apache(self, event: Event, message: str) -> bool:
        m = APACHE_ERROR.match(message)
        if m is None:
            return False
        ts, module, level, pid, tid, os_error, client, code, text = m.groups()
        self._set_time(event, ts)
        event["level"] = level
        if module:
            event["module"] = module
        if pid:
            event["pid"] = int(pid)
        if tid:
            event["tid"] = int(tid)
        if os_error:
            event["os_error"] = os_error
        if client:
            ip, port = split_host_port(client)
            event["client_ip"] = ip
            if port is not None:
                event["client_port"] = port
        if code:
            event["error_code"] = code
        cut = text.rfind(", referer: ")
        if cut >= 0:
            event["referrer"] = text[cut + 11 :]
            text = text[:cut]
        self._set_message(event, text)
        return True
