"""nginx and Apache access logs: common, combined, and combined with trailing extras.

One anchored regex (stdlib ``re``, possessive quantifiers, no grok indirection
at run time) recognises::

    [vhost] remote ident user [time] "request" status bytes ["referrer" "agent"] [extras]

``remote`` is usually one address (``$remote_addr``, ``%h``). Production
formats also put a forwarded-for list there (``$http_x_forwarded_for``,
``$proxy_add_x_forwarded_for``), plain (``203.0.113.7, 10.0.0.1``), with no
space after the comma, or quoted, IPv4 and IPv6 mixed, entries with ports
(``81.2.69.142:51234``, ``[2001:db8::1]:443``). A ``vhost`` first
(nginx ``$host`` / ``$server_name``, Apache ``%v`` or ``%v:%p``) is recognised
as a token that is followed by more text before ``ident user [`` and does not
end with a comma. A one-token remote takes the fast path (one regex); any
other head is split off by hand before the first ``] "`` (the end of the
time), so the cost stays linear whatever the line.

``extras`` are what custom nginx ``log_format``s commonly append, either bare
(``"x_forwarded_for" 0.123 0.120 10.0.0.1:8080`` = request_time,
upstream_response_time, upstream_addr) or keyed (``rt=0.123 uct="0.000"
uht="0.001" urt="0.120" ua="10.0.0.1:8080" us="200"``).

Fields set (flat): ``client_ip``, ``ident``, ``user``, ``@timestamp``,
``method``, ``path``, ``query`` (without ``?``), ``http_version``, ``status``
(int), ``bytes`` (int), ``referrer``, ``user_agent`` (unquoted), and from the
extras ``x_forwarded_for``, ``request_time``, ``upstream_connect_time``,
``upstream_header_time``, ``upstream_response_time`` (floats; a list of
several upstream times, ``, `` or `` : `` separated, is summed),
``upstream_addr``, ``upstream_status``, ``upstream_cache_status`` (strings,
lists kept as written); other ``key=value`` extras are kept under their own
key when it is free. ``-`` means absent: the key is not set. A request line
that is not ``METHOD target [HTTP/x]`` (e.g. TLS bytes sent to a plain-HTTP
port) is kept raw in ``request``; an empty request ``""`` sets nothing.
``message`` is left unchanged.

The client address (documented choice, as Filebeat's nginx module makes it):

* ``client_ip`` is the first *public* address of the remote list (left to
  right: the original client first, then the proxies), else its first IP
  address of any kind, else its first entry as written (a host name, as
  Apache writes with ``HostnameLookups On``). Ports and brackets are removed;
  a port of the chosen entry goes to ``client_port`` (int).
* ``client_ip_list``: every entry as written, in order, when the remote
  position held more than one.
* A trailing ``"$http_x_forwarded_for"`` is kept in ``x_forwarded_for`` as
  written. When the remote address is not public (the request came through
  a private load balancer or proxy) and that header holds a public address,
  ``client_ip`` becomes its first public address and ``client_ip_list`` the
  whole chain: the header's entries, then the remote address. A public remote
  address is never replaced (a client can send any header).
* ``vhost`` (and ``vhost_port``, int) from a leading virtual host.

So GeoIP, which looks up ``client_ip``, finds the real client behind proxies.
"""

from __future__ import annotations

import re
from typing import Any

from parsers.dates import DateParser
from parsers.formats import unescape_quoted
from parsers.ipaddr import is_public_ip, split_host_port
from parsers.types import DATE_FAILURE, GROK_FAILURE, RESERVED_KEYS, Event, add_tag

__all__ = ["AccessLogFormat"]


def _line_regex(in_block: bool, escapes: bool = True) -> str:
    """The access line regex: for one line (a message), or for one line inside a block of lines.

    In a block no part may cross a newline, and the line ends at one; on a single line both
    forms match the same text with the same groups (a test checks it), so the worker
    processes' block scan (pipeline/workers/fastpath.py) gives exactly what `parse` gives.
    Without `escapes`, quoted values may hold no backslash: the same match on text that has
    none, in about half the time (the escape loop is most of the cost); use it only there.
    """
    nl = r"\n" if in_block else ""
    # A quoted value with backslash escapes, as an "unrolled loop" (normal* (escaped normal*)*):
    # linear, and about twice as fast in `re` as an alternation inside a repetition.
    qv = r'[^"\\' + nl + r']*+(?:\\.[^"\\' + nl + r"]*+)*+" if escapes else r'[^"\\' + nl + r"]*+"
    space_to_end = r"[^\S\n]*+$" if in_block else r"\s*+$"
    # Everything from "[time]" on; the heads say what comes before it.
    tail = (
        r"\[([^\]" + nl + r"]{1,64}+)\] "
        r'"(?:([A-Za-z][A-Za-z0-9_-]{0,31}+) ([^\s"?]*+)(?:\?([^\s"]*+))?(?: HTTP/([0-9.]++))?'
        r"|(" + qv + r'))" '
        r"(\d{3}|-) (\d++|-)"
        r'(?: "(' + qv + r')" "(' + qv + r')")?'
        # Fast path for the common bare extras: request_time [upstream_response_time [upstream_addr]].
        r"(?: (\d++(?:\.\d++)?|-)(?: (\d++(?:\.\d++)?|-)(?: ([^\s\",]++))?)?(?=" + space_to_end + r"))?"
        r"(.*+)"
    )
    # One remote token (the common case; ``parse`` sends a token with a list, quotes, brackets or
    # a port to ``set_remote``). A head of several tokens fails here.
    return r"(\S++) (\S++) (\S++) " + tail


ACCESS_LINE = re.compile(_line_regex(in_block=False), re.DOTALL)
_ACCESS_LINE_PLAIN = re.compile(_line_regex(in_block=False, escapes=False), re.DOTALL)
#: The same, matched at a line start inside a block of lines: it ends at the line's end.
ACCESS_LINE_IN_BLOCK = re.compile(_line_regex(in_block=True), re.MULTILINE)
#: ... for a block without any backslash (the common case).
ACCESS_LINE_IN_PLAIN_BLOCK = re.compile(_line_regex(in_block=True, escapes=False), re.MULTILINE)
#: The commonest access line, inside a block without backslashes or control characters, for
#: writing its JSON straight from the match (pipeline/workers/fastpath.py): one client address
#: (no list, brackets, quotes or port), ident and user "-", a request with method, path and
#: version, a status and a byte count without leading zeros (the count within 18 digits),
#: quoted referrer and agent, at most a `$request_time` with a 1-3 digit fraction, then only
#: spaces. A match that holds no newline is a line ``ACCESS_LINE_IN_PLAIN_BLOCK`` takes, with
#: the same values, and every value it captures is JSON-safe as written (no quote, backslash or
#: control character); ``fill`` sets exactly client_ip, method, path, query (if not empty),
#: http_version, status, bytes, referrer and user_agent (if not "-" or empty) and request_time
#: (a test compares them). The time and the quoted values are "anything but the closing
#: character", the fastest loop `re` has (a third less time than also excluding newlines): a
#: value left open runs into the next line, and the caller takes no match that holds a newline.
#: ([0-9], not \d: the same in ASCII, and a class test is cheaper than Unicode's digit lookup.)
ACCESS_COMMON_LINE_IN_PLAIN_BLOCK = re.compile(
    r'(?!- )([^\s",\[:]++|[0-9A-Fa-f:]++) - - \[([^\]]{1,64}+)\] '
    r'"([A-Za-z][A-Za-z0-9_-]{0,31}+) ([^\s"?]++)(?:\?([^\s"]*+))? HTTP/([0-9.]++)" '
    r'([1-9][0-9][0-9]) (0|[1-9][0-9]{0,17}+) "([^"]*+)" "([^"]*+)"'
    r"(?: ((?:0|[1-9][0-9]{0,5}+)\.[0-9]{1,3}+))?(?=[^\S\n]*+$)[^\n]*+",
    re.MULTILINE,
)
# Separators inside a remote list: commas, spaces, quotes.
_REMOTE_SPLIT = re.compile(r'[\s,"]++')

# One extra token: key=value (value quoted or bare), a quoted string, or a bare
# token that may be a list joined by ", " or " : " (several upstreams tried).
_EXTRA = re.compile(
    r'\s*+(?:([A-Za-z_][A-Za-z0-9_.-]*+)=(?:"((?:[^"\\]++|\\.)*+)"|([^\s"]*+))'
    r'|"((?:[^"\\]++|\\.)*+)"'
    r'|([^\s",]++(?:(?:, | : |,)[^\s",]++)*+))'
)
_TIME_LIST = re.compile(r"[0-9.]+|-")

_FLOAT_KEYS = {
    "rt": "request_time",
    "request_time": "request_time",
    "urt": "upstream_response_time",
    "upstream_response_time": "upstream_response_time",
    "uct": "upstream_connect_time",
    "upstream_connect_time": "upstream_connect_time",
    "uht": "upstream_header_time",
    "upstream_header_time": "upstream_header_time",
}
_STR_KEYS = {
    "ua": "upstream_addr",
    "upstream": "upstream_addr",
    "upstream_addr": "upstream_addr",
    "us": "upstream_status",
    "upstream_status": "upstream_status",
    "cs": "upstream_cache_status",
    "ucs": "upstream_cache_status",
    "upstream_cache_status": "upstream_cache_status",
    "xff": "x_forwarded_for",
    "x_forwarded_for": "x_forwarded_for",
    "http_x_forwarded_for": "x_forwarded_for",
}
_BARE_FLOATS = ("request_time", "upstream_response_time")


def _sum_times(text: str) -> float | None:
    """ "0.120" -> 0.12; "0.120, 0.003" / "0.1 : 0.2" -> their sum; "-" -> None."""
    try:
        return float(text)
    except ValueError:
        pass
    total = 0.0
    seen = False
    for part in _TIME_LIST.findall(text):
        if part != "-":
            try:
                total += float(part)
            except ValueError:
                return None
            seen = True
    return round(total, 6) if seen else None


def _is_number_list(token: str) -> bool:
    return token[0].isdigit() and all(c in "0123456789., :-" for c in token)


def parse_extras(event: Event, rest: str) -> None:
    """Fields from the text after the user agent (bare and/or ``key=value`` extras)."""
    bare_floats = 0
    seen_quoted = False
    for m in _EXTRA.finditer(rest):
        key, qval, bval, quoted, bare = m.groups()
        if key is not None:
            value = unescape_quoted(qval) if qval is not None else bval
            if not value or value == "-":
                continue
            name = _FLOAT_KEYS.get(key)
            if name is not None:
                t = _sum_times(value)
                if t is not None:
                    event[name] = t
                continue
            name = _STR_KEYS.get(key, key)
            if name not in RESERVED_KEYS and name not in event:
                event[name] = value
        elif quoted is not None:
            # nginx "main" appends "$http_x_forwarded_for" right after the agent.
            if not seen_quoted and quoted and quoted != "-":
                event.setdefault("x_forwarded_for", unescape_quoted(quoted))
            seen_quoted = True
        elif bare:
            if bare == "-":
                bare_floats += 1
            elif _is_number_list(bare) and bare_floats < len(_BARE_FLOATS):
                t = _sum_times(bare)
                if t is not None:
                    event[_BARE_FLOATS[bare_floats]] = t
                bare_floats += 1
            elif ":" in bare:
                # $upstream_addr is always host:port or unix:path; other tokens are not guessed at.
                event.setdefault("upstream_addr", bare)


def _remote_entries(text: str) -> list[str]:
    """ "203.0.113.7, 10.0.0.1" / '"a, b"' / "a,b" -> the entries, "-" and empty ones left out."""
    return [e for e in _REMOTE_SPLIT.split(text) if e and e != "-"]


def _choose_client(entries: list[str]) -> tuple[str, int | None]:
    """(ip, port) of the first public address; else of the first IP; else of the first entry."""
    first_ip: tuple[str, int | None] | None = None
    for entry in entries:
        host, port = split_host_port(entry)
        public = is_public_ip(host)
        if public:
            return host, port
        if public is False and first_ip is None:
            first_ip = (host, port)
    return first_ip or split_host_port(entries[0])


def set_remote(event: Event, remote: str) -> None:
    """``client_ip`` (+ ``client_port``, ``client_ip_list``, ``vhost``, ``vhost_port``) from the head."""
    if " " in remote and remote[0] != '"':
        head, _, rest = remote.partition(" ")
        if head[-1] != ",":
            # A virtual host first (nginx $host, Apache %v[:%p]), then the remote address(es).
            host, port = split_host_port(head)
            if host and host != "-":
                event["vhost"] = host
                if port is not None:
                    event["vhost_port"] = port
            remote = rest
    entries = _remote_entries(remote)
    if not entries:
        return
    if len(entries) > 1:
        event["client_ip_list"] = entries
    ip, port = _choose_client(entries)
    event["client_ip"] = ip
    if port is not None:
        event["client_port"] = port


def _forwarded_client(event: Event) -> None:
    """Behind a private proxy, take the client from a trailing X-Forwarded-For (see module doc)."""
    client = event.get("client_ip")
    if client is not None and is_public_ip(client) is not False:
        return  # a public remote (or a host name) is never replaced
    entries = _remote_entries(event["x_forwarded_for"])
    for entry in entries:
        host, port = split_host_port(entry)
        if is_public_ip(host):
            remote = event.get("client_ip_list") or ([client] if client is not None else [])
            event["client_ip"] = host
            event.pop("client_port", None)
            if port is not None:
                event["client_port"] = port
            event["client_ip_list"] = entries + remote
            return


class AccessLogFormat:
    """Parse nginx/Apache access lines (see module docstring for the fields)."""

    __slots__ = ("_match", "_match_plain", "parse_date")

    def __init__(self, dates: DateParser | None = None) -> None:
        # Public: the JSON fast path (pipeline/workers/fastpath.py) dates its lines as `fill` does.
        self.parse_date = (dates or DateParser()).parse
        self._match = ACCESS_LINE.match
        self._match_plain = _ACCESS_LINE_PLAIN.match

    def parse(self, event: Event, message: str) -> bool:
        """Fill ``event`` from ``message``; False (nothing set) if it is not an access line."""
        m = (self._match_plain if "\\" not in message else self._match)(message)
        if m is None:
            # Most lines that fail here are not access lines at all (auto-detection tries
            # this format first): a C-speed scan for the end of the time turns them away.
            return '] "' in message and self._parse_head(event, message)
        return self.fill(event, m.groups())

    def fill(self, event: Event, groups: tuple[str | Any, ...]) -> bool:
        """Set the fields of a line that ``ACCESS_LINE`` (or ``ACCESS_LINE_IN_BLOCK``) matched."""
        (client, ident, user, ts, method, path, query, version, raw,
         status, nbytes, referrer, agent, rt, urt, uaddr, rest) = groups  # fmt: skip
        if client != "-":
            # ``\S++`` is the fastest head; the rare token that needs splitting is told apart here.
            if "," in client or client[0] in '"[' or (":" in client and "." in client):
                set_remote(event, client)
            else:
                event["client_ip"] = client
        if ident != "-":
            event["ident"] = ident
        if user != "-":
            event["user"] = user
        t = self.parse_date(ts)
        if t is None:
            add_tag(event, DATE_FAILURE)
        else:
            event["@timestamp"] = t
        if method is not None:
            event["method"] = method
            if path:
                event["path"] = path
            if query:
                event["query"] = query
            if version:
                event["http_version"] = version
        elif raw and raw != "-":
            event["request"] = raw
        if status != "-":
            event["status"] = int(status)
        if nbytes != "-":
            event["bytes"] = int(nbytes)
        if referrer and referrer != "-":
            event["referrer"] = unescape_quoted(referrer)
        if agent and agent != "-":
            event["user_agent"] = unescape_quoted(agent)
        if rt is not None:
            if rt != "-":
                event["request_time"] = float(rt)
            if urt is not None and urt != "-":
                event["upstream_response_time"] = float(urt)
            if uaddr is not None and uaddr != "-":
                event["upstream_addr"] = uaddr
        elif rest and not rest.isspace():
            parse_extras(event, rest)
            if "x_forwarded_for" in event:
                _forwarded_client(event)
        return True

    def _parse_head(self, event: Event, message: str) -> bool:
        """A head the fast regex does not take (vhost, lists with spaces): split it off by hand
        before the end of the time (the first ``] "``), then parse the rest as a line whose
        remote is ``-``, after setting the client fields from the head."""
        cut = message.find('] "')
        lb = message.rfind(" [", 0, cut)
        if lb < 0:
            return False
        head = message[:lb].rsplit(" ", 2)
        if len(head) != 3 or " " not in head[0] or not head[1] or not head[2]:
            # A one-token head is what the fast regex already tried: the rest did not match.
            return False
        line = f"- {head[1]} {head[2]}{message[lb:]}"
        if self._match(line) is None:
            return False  # nothing set
        set_remote(event, head[0])  # first: a trailing X-Forwarded-For is weighed against it
        return self.parse(event, line)

    def __call__(self, event: Event) -> Event:
        message = event.get("message")
        if not isinstance(message, str) or not self.parse(event, message):
            add_tag(event, GROK_FAILURE)
        return event
