"""Built-in log formats: small callable classes that parse ``event["message"]`` in place.

Each format has ``__slots__``, regexes compiled at import, and two entry
points: ``parse(event, message) -> bool`` (fill fields, report whether the
shape matched, no tagging; used by the auto-detecting dispatcher) and
``__call__(event) -> event`` (tags ``_grokparsefailure`` when nothing
matched). Helpers shared by several formats live here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from parsers.types import Event

__all__ = ["REQUEST_LINE", "is_public_ip", "set_request_fields", "split_host_port", "unescape_quoted"]

#: "GET /path?query HTTP/1.1" (the version is optional, as in HTTP/0.9 lines).
REQUEST_LINE = re.compile(r"([A-Za-z][A-Za-z0-9_-]{0,31}) ([^\s?]*+)(?:\?(\S*+))?(?: HTTP/(\d++(?:\.\d++)?))?")

_ESCAPE = re.compile(r'\\(["\\])')


def unescape_quoted(text: str) -> str:
    """Undo Apache's escaping of a quoted value (``\\"`` -> ``"``, ``\\\\`` -> ``\\``).

    nginx's ``\\xHH`` escapes are left as written (decoding them could produce
    invalid UTF-8)."""
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


def set_request_fields(event: Event, request: str) -> bool:
    """Split a request line into ``method``, ``path``, ``query``, ``http_version``.

    Returns False (and sets nothing) when the text is not a request line.
    """
    m = REQUEST_LINE.fullmatch(request)
    if m is None:
        return False
    method, path, query, version = m.groups()
    event["method"] = method
    if path:
        event["path"] = path
    if query:
        event["query"] = query
    if version:
        event["http_version"] = version
    return True


def set_new(event: Event, key: str, value: Any) -> None:
    """Set ``key`` only if the event does not hold it yet (never clobber)."""
    if key not in event:
        event[key] = value


def split_host_port(text: str) -> tuple[str, int | None]:
    """ "1.2.3.4:5678" / "[::1]:5678" / "::1:5678" / "1.2.3.4" / "host:80" -> (host, port).

    An unbracketed IPv6 address is only split when what is left is still an
    address ("2001:db8::1:5678" stays whole: it is itself a valid address)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if sep and port.isdigit():
            return host, int(port)
        return text.strip("[]"), None
    colons = text.count(":")
    if colons == 0:
        return text, None
    host, _, port = text.rpartition(":")
    if not port.isdigit():
        return text, None
    if colons == 1:
        return host, int(port)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return host, int(port)
    return text, None


def is_public_ip(text: str) -> bool | None:
    """True for a globally routable unicast address, False for any other address
    (private, loopback, link-local, shared, documentation, multicast, reserved),
    None when ``text`` is not an IP address at all (a host name, ``unknown``).

    The same classification as the GeoIP enricher's: a public address is one a
    GeoIP database can have a record for."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not addr.is_multicast
