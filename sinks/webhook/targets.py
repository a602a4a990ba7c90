"""Where notifications go: Alertmanager, a generic HTTP webhook, a JSON-lines file, the console;
and `build_target`, which also builds the chat and mail channels (slack.py, dingtalk.py, email.py).

The shared base (protocol, errors, status handling) is httpbase.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from parsers.dates import rfc3339_ms
from pipeline.atomicfile import FILE_MODE, ensure_dir
from pipeline.errors import StartError
from pipeline.template import compile_tree
from sinks.webhook.config_targets import (
    AlertmanagerTarget,
    ConsoleTarget,
    DingTalkTarget,
    EmailTarget,
    FileTarget,
    HttpTarget,
    SlackTarget,
)
from sinks.webhook.httpbase import DeliveryError, HttpChannel, Notification, SessionFactory, Target, redact_url

__all__ = ["DeliveryError", "Target", "build_target", "redact_url"]


def alertmanager_alert(note: Notification, ends_firing: str) -> dict[str, Any]:
    """One alert of an Alertmanager v2 POST body (also the `http` target's `format: alertmanager`)."""
    return {
        "labels": note["labels"],
        "annotations": note["annotations"],
        "startsAt": note["startsAt"],
        "endsAt": note["endsAt"] if note["status"] == "resolved" else ends_firing,
        "generatorURL": note["generatorURL"],
    }


class AlertmanagerDelivery(HttpChannel):
    """POST {url}/api/v2/alerts: a list of {labels, annotations, startsAt, endsAt, generatorURL}."""

    type = "alertmanager"

    def __init__(
        self,
        name: str,
        config: AlertmanagerTarget,
        resolve_after: float,
        session_factory: SessionFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, config, config.notify_on, session_factory)
        self.base = config.url.rstrip("/")
        self.max_batch = config.max_alerts_per_request
        # While firing, endsAt stays ahead of the sink's own resolution, so Alertmanager never
        # resolves early; if the pipeline vanishes, Alertmanager still resolves it eventually.
        self._firing_for = resolve_after + config.ends_at_margin
        self._clock = clock

    def payload(self, notes: list[Notification]) -> list[dict[str, Any]]:
        ends_firing = rfc3339_ms(self._clock() + self._firing_for)
        return [alertmanager_alert(n, ends_firing) for n in notes]

    async def deliver(self, notes: list[Notification]) -> None:
        data = orjson.dumps(self.payload(notes))
        await self._request("POST", f"{self.base}/api/v2/alerts", f"{self.base}/api/v2/alerts", data)

    async def check(self) -> None:
        try:
            await self._request("GET", f"{self.base}/-/ready", f"{self.base}/-/ready")
        except DeliveryError as exc:
            raise DeliveryError(f"alertmanager target {self.name!r} not ready: {exc}") from None

    async def probe_access(self) -> None:
        """At the sink's start: refused TLS or credentials raise StartError; an Alertmanager that is
        merely down does not (notifications wait in the outbox)."""
        try:
            await self._request("GET", f"{self.base}/-/ready", f"{self.base}/-/ready")
        except DeliveryError as exc:
            if exc.refused is not None:
                raise StartError(f"targets.{self.name}.{exc.refused[0]}", str(exc)) from None


class HttpDelivery(HttpChannel):
    """One request per notification; the body is the `body` template rendered over it."""

    max_batch = 1

    def __init__(
        self,
        name: str,
        config: HttpTarget,
        component: str,
        session_factory: SessionFactory | None = None,
        resolve_after: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, config, config.notify_on, session_factory)
        self._url = config.url.get_secret_value()
        self._shown = redact_url(self._url)
        self._method = config.method
        self._body = compile_tree(config.body) if config.body is not None else None
        self._format = config.format
        self._component = component
        self._firing_for = resolve_after + 60.0
        self._clock = clock

    def render(self, note: Notification) -> bytes:
        if self._body is None and self._format == "alertmanager":
            return orjson.dumps([alertmanager_alert(note, rfc3339_ms(self._clock() + self._firing_for))])
        if self._body is None:
            return orjson.dumps(note)
        return orjson.dumps(self._body({**note, "component": self._component}))

    async def deliver(self, notes: list[Notification]) -> None:
        for note in notes:
            await self._request(self._method, self._url, self._shown, self.render(note))

    async def check(self) -> None:
        # A generic webhook has no side-effect-free probe: report the last delivery failure.
        if self.last_error:
            raise DeliveryError(f"http target {self.name!r} failing: {self.last_error}")


class FileDelivery:
    """Append notifications as JSON lines."""

    type = "file"
    max_batch = 500

    def __init__(self, name: str, config: FileTarget) -> None:
        self.name = name
        self.notify_on: frozenset[str] = frozenset(config.notify_on)
        self.path = Path(config.path)
        self.fsync = config.fsync
        self.last_error: str | None = None
        self.rate_limit: int | None = None
        self.group_interval = 0.0

    async def open(self) -> None:
        return None

    def _append(self, data: bytes) -> None:
        ensure_dir(self.path.parent)
        # Owner-only: notifications carry sample log lines, like the dead-letter queue.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)

    async def deliver(self, notes: list[Notification]) -> None:
        data = b"".join(orjson.dumps(n, option=orjson.OPT_APPEND_NEWLINE) for n in notes)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as exc:
            raise DeliveryError(f"append to {self.path}: {exc.strerror}") from None

    async def check(self) -> None:
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):
            raise DeliveryError(f"file target {self.name!r}: {folder} is not writable")

    async def aclose(self) -> None:
        return None


class ConsoleDelivery:
    """Print notifications as JSON lines."""

    type = "console"
    max_batch = 500

    def __init__(self, name: str, config: ConsoleTarget) -> None:
        self.name = name
        self.notify_on: frozenset[str] = frozenset(config.notify_on)
        self.stream = config.stream
        self.last_error: str | None = None
        self.rate_limit: int | None = None
        self.group_interval = 0.0

    async def open(self) -> None:
        return None

    async def deliver(self, notes: list[Notification]) -> None:
        out = sys.stdout if self.stream == "stdout" else sys.stderr
        out.buffer.write(b"".join(orjson.dumps(n, option=orjson.OPT_APPEND_NEWLINE) for n in notes))
        out.flush()

    async def check(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def build_target(
    name: str, config: Any, *, component: str, resolve_after: float, session_factory: SessionFactory | None = None
) -> Target:
    target: Target
    if isinstance(config, AlertmanagerTarget):
        target = AlertmanagerDelivery(name, config, resolve_after, session_factory)
    elif isinstance(config, HttpTarget):
        target = HttpDelivery(name, config, component, session_factory, resolve_after)
    elif isinstance(config, SlackTarget):
        from sinks.webhook.slack import SlackDelivery

        target = SlackDelivery(name, config, session_factory)
    elif isinstance(config, DingTalkTarget):
        from sinks.webhook.dingtalk import DingTalkDelivery

        target = DingTalkDelivery(name, config, session_factory)
    elif isinstance(config, EmailTarget):
        from sinks.webhook.email import EmailDelivery

        target = EmailDelivery(name, config)
    elif isinstance(config, FileTarget):
        target = FileDelivery(name, config)
    elif isinstance(config, ConsoleTarget):
        target = ConsoleDelivery(name, config)
    else:
        raise TypeError(f"unknown target config {type(config).__name__}")
    target.rate_limit = config.default_rate_limit()
    target.group_interval = config.group_interval
    return target
