"""Small helpers shared by tests that drive a real daemon over HTTP."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """(status, body); (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def wait_until(predicate: Callable[[], T], timeout: float = 30.0, what: str = "condition", every: float = 0.1) -> T:
    """Poll until `predicate` returns something truthy and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def eventually(
    fetch: Callable[[], T | Awaitable[T]], ok: Callable[[T], bool], within: float = 30.0, what: str = "condition"
) -> T:
    """Poll `fetch()` (sync or async) from async code until `ok(value)`; return the value, fail after `within` s."""
    deadline = time.monotonic() + within
    while True:
        value = fetch()
        if inspect.isawaitable(value):
            value = await value
        if ok(value):  # type: ignore[arg-type]
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}; last value: {value!r}"[:3000])
        await asyncio.sleep(0.1)
