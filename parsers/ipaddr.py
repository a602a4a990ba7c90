"""IP address text: split ``host:port``, and tell public addresses from the others, fast.

Shared by the access/error formats (which address of a forwarded-for list is the
client), the GeoIP enricher (which addresses to skip without a tag) and ECS output.
IPv4, the common case, is classified with ``socket.inet_pton`` and a bisect over
integer ranges, with no ``ipaddress`` object (whose ``is_global`` walks a list of
networks and costs tens of microseconds); IPv6 goes through ``ipaddress``, cached.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import socket

__all__ = ["is_public_ip", "split_host_port"]


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


# IPv4 space that is not globally routable unicast: exactly what Python's ipaddress
# calls "not is_global, or multicast" ("this network", private, shared CGN, loopback,
# link-local, IETF protocol assignments, documentation, benchmarking, multicast,
# reserved, broadcast), as integer ranges so the check needs no IPv4Address object.
_V4_SPECIAL = sorted(
    (int(n.network_address), int(n.broadcast_address))
    for n in map(
        ipaddress.IPv4Network,
        ["0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
         "192.0.0.0/29", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
         "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"],
    )
)  # fmt: skip
_V4_STARTS = [start for start, _ in _V4_SPECIAL]


def is_public_ip(text: str) -> bool | None:
    """True for a globally routable unicast address; False for any other address (private,
    loopback, link-local, shared, documentation, benchmarking, multicast, reserved,
    unspecified); None when ``text`` is not an IP address at all (a host name, ``unknown``).

    Python's ``ipaddress`` classification ("is_global and not multicast"); an IPv4-mapped
    IPv6 address is classified as its IPv4 address. Public means a GeoIP database can
    have a record for it."""
    try:
        n = int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError, TypeError):
        return _public_other(text)
    i = bisect.bisect_right(_V4_STARTS, n) - 1
    return not (i >= 0 and n <= _V4_SPECIAL[i][1])


@functools.lru_cache(maxsize=4096)
def _public_other(text: str) -> bool | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return is_public_ip(str(addr.ipv4_mapped))
    return addr.is_global and not addr.is_multicast
