"""Email over SMTP: one mail per group of notifications (by `group_by` labels) per delivery round.

The client is aiosmtplib, a maintained asyncio SMTP client (STARTTLS, implicit TLS,
AUTH): it runs on the event loop like the HTTP targets, so a slow server never holds a
worker thread and the delivery task can be cancelled at shutdown, which smtplib in a
thread could not. The delivery loop waits `group_interval` (1m) between rounds: at
most one mail per group per interval, with everything that arrived meanwhile.

Each mail has a text part and an HTML part. SMTP 5xx answers (recipients or sender
refused, authentication failed) are permanent and dead-lettered; 4xx answers,
connection errors and timeouts are retried.
"""

from __future__ import annotations

import html
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from pipeline.errors import ConfigError
from pipeline.secrets import secret_value
from pipeline.template import Template
from pipeline.tls import TlsOptions, client_context
from sinks.webhook import render
from sinks.webhook.config_targets import EmailTarget
from sinks.webhook.httpbase import DeliveryError, Notification


class EmailDelivery:
    type = "email"
    max_batch = 200

    def __init__(self, name: str, config: EmailTarget) -> None:
        self.name = name
        self.notify_on: frozenset[str] = frozenset(config.notify_on)
        self.last_error: str | None = None
        self.rate_limit: int | None = None
        self.group_interval = config.group_interval
        self._config = config
        self._subject = Template(config.subject)
        # Built once (a ConfigError at build time names an unusable TLS file).
        self._context = None if config.security == "none" else client_context(config.tls or TlsOptions(), "tls")

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def check(self) -> None:
        if self.last_error:
            raise DeliveryError(f"email target {self.name!r} failing: {self.last_error}")

    def groups(self, notes: list[Notification]) -> list[list[Notification]]:
        by: dict[tuple[str, ...], list[Notification]] = {}
        for note in notes:
            labels = note.get("labels", {})
            by.setdefault(tuple(str(labels.get(k, "")) for k in self._config.group_by), []).append(note)
        return list(by.values())

    def message(self, notes: list[Notification]) -> EmailMessage:
        c = self._config
        first = notes[0]
        subject = render.render(self._subject, first)
        if len(notes) > 1:
            subject += f" (+{len(notes) - 1} more)"
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = c.sender
        msg["To"] = ", ".join(c.to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=c.sender.rpartition("@")[2] or None)
        text, markup = [], []
        for note in notes:
            title = f"[{note.get('status', '')}] {note.get('labels', {}).get('alertname', '')}"
            desc = render.description(note)
            facts = render.facts(note)
            samples = render.sample_lines(note)
            text += [title, *([desc] if desc else []), *(f"  {k}: {v}" for k, v in facts)]
            if samples:
                text += ["  samples:", *(f"    {s}" for s in samples)]
            text.append("")
            markup.append(f"<h3>{render.mark(note)} {html.escape(title)}</h3>")
            if desc:
                markup.append(f"<p>{html.escape(desc)}</p>")
            rows = "".join(
                f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts
            )
            markup.append(f"<table>{rows}</table>")
            if samples:
                markup.append("<pre>" + html.escape("\n".join(samples)) + "</pre>")
        msg.set_content("\n".join(text))
        msg.add_alternative("<html><body>" + "".join(markup) + "</body></html>", subtype="html")
        return msg

    def _tls(self) -> ssl.SSLContext | None:
        return self._context

    async def deliver(self, notes: list[Notification]) -> None:
        c = self._config
        try:
            password = secret_value(c.password, c.password_file, "password")
        except ConfigError as exc:
            raise DeliveryError(str(exc)) from None
        for group in self.groups(notes):
            try:
                await aiosmtplib.send(
                    self.message(group),
                    hostname=c.host,
                    port=c.smtp_port,
                    username=c.username,
                    password=password if c.username else None,
                    use_tls=c.security == "tls",
                    start_tls=c.security == "starttls",
                    tls_context=self._tls(),
                    timeout=c.timeout,
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = ", ".join(sorted(r.recipient for r in exc.recipients))
                raise DeliveryError(f"smtp {c.host}: recipients refused: {refused}", permanent=True) from None
            except aiosmtplib.SMTPResponseException as exc:
                raise DeliveryError(f"smtp {c.host}: {exc.code} {exc.message}", permanent=exc.code >= 500) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise DeliveryError(f"smtp {c.host}:{c.smtp_port}: {type(exc).__name__}: {exc}") from None
