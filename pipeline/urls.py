"""Checks for the addresses in a config: HTTP(S) URLs and host:port pairs, at load time.

A URL without a scheme (`localhost:9200`) used to pass validation and then fail
forever at run time; every URL and DSN is now checked when the config loads, so
`pipeline validate` names it. Error messages never echo the value (a URL may
carry a password or a token): they say what is wrong with it.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

HTTP_SCHEMES = ("http", "https")


def check_http_url(value: str, schemes: tuple[str, ...] = HTTP_SCHEMES) -> str:
    """Return `value` if it is an absolute URL with one of `schemes`, a host and a valid port."""
    if "://" not in value:
        raise ValueError(f"must be a URL with a scheme ({' or '.join(s + '://' for s in schemes)}host[:port])")
    parts = urlsplit(value)
    if parts.scheme.lower() not in schemes:
        raise ValueError(f"unsupported scheme {parts.scheme!r} (use {' or '.join(schemes)})")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    try:
        parts.port  # noqa: B018 (the property validates the port)
    except ValueError:
        raise ValueError("the URL's port must be a number from 1 to 65535") from None
    if parts.port == 0:
        raise ValueError("the URL's port must be a number from 1 to 65535")
    return value


def check_host_port(value: str) -> str:
    """Return `value` if it is `host:port` (IPv6 hosts in brackets) with a valid port."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or host in ("[]",):
        raise ValueError(f"{value!r} must be host:port")
    if "://" in value:
        raise ValueError(f"{value!r} must be host:port, without a scheme")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    return value


# Field types: a list of these reports the failing item's index (`hosts[1]: ...`).
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
HostPort = Annotated[str, AfterValidator(check_host_port)]
