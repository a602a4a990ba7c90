"""sd_notify client: tell systemd we are ready, reloading, stopping, and still alive.

The protocol (sd_notify(3)) is one datagram of `KEY=value` lines sent to the
AF_UNIX socket named by `NOTIFY_SOCKET`: a filesystem path, or an abstract
socket written `@name`. There is no reply, so a lost message can only be
logged. Without `NOTIFY_SOCKET` (not under systemd, or `Type=simple`) every
call is a no-op.

Sending never raises into the caller: readiness or watchdog bookkeeping must
not be able to crash the daemon. The first failure is logged as a warning,
later ones are not (the watchdog pings twice per period and would flood the
log).

The watchdog (`WatchdogSec=` in the unit) sets `WATCHDOG_USEC` and
`WATCHDOG_PID`. We ping at half the period, from a task on the event loop, so
a loop that is stuck (a blocking call, a busy loop) stops the pings and
systemd restarts the service: the pings prove the loop turns, not merely
that the process exists.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _socket_address(value: str | None) -> str | bytes | None:
    """Parse NOTIFY_SOCKET: `/path` or `@abstract`; anything else (e.g. `vsock:`) is unsupported."""
    if not value:
        return None
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        # The abstract namespace: a leading NUL byte instead of the `@`.
        return b"\0" + value[1:].encode()
    log.warning(
        "NOTIFY_SOCKET is not a unix socket path or @abstract name; not notifying systemd",
        extra={"notify_socket": value},
    )
    return None


def _watchdog_period(env: Mapping[str, str], pid: int) -> float | None:
    """The watchdog period in seconds, or None when no watchdog is asked of this process."""
    raw = env.get("WATCHDOG_USEC")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    # systemd sets WATCHDOG_PID to the main PID. A child that inherited the
    # environment (a worker process) must not ping on the main process's behalf.
    # If it is unset, the watchdog is ours (older systemd, or a test harness).
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != pid:
                return None
        except ValueError:
            return None
    return usec / 1_000_000


class Notifier:
    """Sends sd_notify messages; every method is a cheap no-op when `enabled` is False."""

    def __init__(self, env: Mapping[str, str] | None = None, *, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        self._address = _socket_address(env.get("NOTIFY_SOCKET"))
        self._period = _watchdog_period(env, os.getpid() if pid is None else pid)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> bool:
        """Send `fields` (each `KEY=value`) as one datagram; True if it was handed to the kernel."""
        if self._address is None or not fields:
            return False
        try:
            if self._sock is None:
                # Non-blocking: if systemd's socket buffer is full, drop the
                # message rather than stall the event loop.
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "cannot notify systemd (further failures are not logged)",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
            return False
        return True

    def ready(self, status: str = "running") -> None:
        self.notify("READY=1", f"STATUS={_one_line(status)}")

    def reloading(self, status: str = "reloading configuration") -> None:
        # MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) tell this
        # reload apart from an earlier one; older versions ignore the field.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", f"STATUS={_one_line(status)}")

    def stopping(self, status: str = "draining in-flight batches") -> None:
        self.notify("STOPPING=1", f"STATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """How often to ping (half the watchdog period, as sd_watchdog_enabled(3) advises), or None."""
        if self._address is None or self._period is None:
            return None
        return self._period / 2

    def start_watchdog(self) -> asyncio.Task[None] | None:
        """Spawn the ping task on the running loop when a watchdog is configured; the caller cancels it."""
        interval = self.watchdog_interval()
        if interval is None:
            return None
        return asyncio.create_task(watchdog_loop(self, interval), name="sd-watchdog")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    # A newline would start a new KEY=value field of the message.
    return text.replace("\n", " ")


async def watchdog_loop(notifier: Notifier, interval: float) -> None:
    """Ping `WATCHDOG=1` every `interval` seconds until cancelled."""
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)
