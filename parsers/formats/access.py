"""nginx and Apache access logs: common, combined, and combined with trailing extras.

One anchored regex (stdlib ``re``, possessive quantifiers, no grok indirection
at run time) recognises::

    client ident user [time] "request" status bytes ["referrer" "agent"] [extras]

``extras`` are what custom nginx ``log_format``s commonly append, either bare
(``"x_forwarded_for" 0.123 0.120 10.0.0.1:8080`` = request_time,
upstream_response_time, upstream_addr) or keyed (``rt=0.123 uct="0.000"
uht="0.001" urt="0.120" ua="10.0.0.1:8080" us="200"``).

Fields set (flat): ``client_ip``, ``ident``, ``user``, ``@timestamp``,
``method``, ``path``, ``query`` (without ``?``), ``http_version``, ``status``
(int), ``bytes`` (int), ``referrer``, ``user_agent`` (unquoted), and from the
extras ``x_forwarded_for``, ``request_time``, ``upstream_connect_time``,
``upstream_header_time``, ``upstream_response_time`` (floats; a list of
several upstream times is summed), ``upstream_addr``, ``upstream_status``,
``upstream_cache_status`` (strings); other ``key=value`` extras are kept under
their own key when it is free. ``-`` means absent: the key is not set. A
request line that is not ``METHOD target [HTTP/x]`` (e.g. TLS bytes sent to a
plain-HTTP port) is kept raw in ``request``. ``message`` is left unchanged.
"""

from __future__ import annotations

import re

from parsers.dates import DateParser
from parsers.formats import unescape_quoted
from parsers.types import DATE_FAILURE, GROK_FAILURE, RESERVED_KEYS, Event, add_tag

__all__ = ["AccessLogFormat"]

# A quoted value with backslash escapes, as an "unrolled loop" (normal* (escaped normal*)*):
# linear, and about twice as fast in `re` as an alternation inside a repetition.
_QV = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
ACCESS_LINE = re.compile(
    r"(\S++) (\S++) (\S++) \[([^\]]++)\] "
    r'"(?:([A-Za-z][A-Za-z0-9_-]{0,31}+) ([^\s"?]*+)(?:\?([^\s"]*+))?(?: HTTP/([0-9.]++))?'
    r"|(" + _QV + r'))" '
    r"(\d{3}|-) (\d++|-)"
    r'(?: "(' + _QV + r')" "(' + _QV + r')")?'
    # Fast path for the common bare extras: request_time [upstream_response_time [upstream_addr]].
    r"(?: (\d++(?:\.\d++)?|-)(?: (\d++(?:\.\d++)?|-)(?: ([^\s\",]++))?)?(?=\s*+$))?"
    r"(.*+)",
    re.DOTALL,
)

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
            elif ":" in bare or bare[0].isdigit():
                event.setdefault("upstream_addr", bare)


class AccessLogFormat:
    """Parse nginx/Apache access lines (see module docstring for the fields)."""

    __slots__ = ("_match", "_parse_date")

    def __init__(self, dates: DateParser | None = None) -> None:
        self._parse_date = (dates or DateParser()).parse
        self._match = ACCESS_LINE.match

    def parse(self, event: Event, message: str) -> bool:
        """Fill ``event`` from ``message``; False (nothing set) if it is not an access line."""
        m = self._match(message)
        if m is None:
            return False
        (client, ident, user, ts, method, path, query, version, raw,
         status, nbytes, referrer, agent, rt, urt, uaddr, rest) = m.groups()  # fmt: skip
        if client != "-":
            event["client_ip"] = client
        if ident != "-":
            event["ident"] = ident
        if user != "-":
            event["user"] = user
        t = self._parse_date(ts)
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
        return True

    def __call__(self, event: Event) -> Event:
        message = event.get("message")
        if not isinstance(message, str) or not self.parse(event, message):
            add_tag(event, GROK_FAILURE)
        return event
