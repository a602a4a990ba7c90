"""Slack incoming webhook: one message per notification, as blocks (title, severity, value, samples).

Slack answers 200 `ok`; 400 (`invalid_payload`), 403, 404 and 410 (channel or hook gone)
are permanent and dead-lettered; 429 and 5xx are retried (httpbase.py). The URL carries
the token: it is a secret, shown as scheme://host only.
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.errors import ConfigError
from pipeline.secrets import secret_value
from pipeline.template import Template
from sinks.webhook import render
from sinks.webhook.config_targets import SlackTarget, _HttpOptions
from sinks.webhook.httpbase import DeliveryError, HttpChannel, Notification, SessionFactory, redact_url

HEADER_CHARS = 150  # Slack's limit for a header block
SECTION_CHARS = 3000  # ... for a section's text
FIELDS = 10  # ... fields per section


def escape(text: str) -> str:
    """Slack mrkdwn: &, < and > are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackDelivery(HttpChannel):
    type = "slack"
    max_batch = 1

    def __init__(self, name: str, config: SlackTarget, session_factory: SessionFactory | None = None) -> None:
        super().__init__(name, _HttpOptions(timeout=config.timeout, tls=config.tls), config.notify_on, session_factory)
        self._config = config
        self._title = Template(config.title)
        self._text = Template(config.text)

    def _url(self) -> str:
        try:
            url = secret_value(self._config.url, self._config.url_file, "url")
        except ConfigError as exc:  # a mounted secret unreadable now: retried like a failed delivery
            raise DeliveryError(str(exc)) from None
        if not url:
            raise DeliveryError(f"slack target {self.name!r}: no url")
        return url

    def payload(self, note: Notification) -> dict[str, Any]:
        title = f"{render.mark(note)} {render.render(self._title, note)}"
        text = render.render(self._text, note) or render.description(note)
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": cut(title, 150)}}]
        section: dict[str, Any] = {"type": "section"}
        if text:
            section["text"] = {"type": "mrkdwn", "text": cut(escape(text), SECTION_CHARS)}
        facts = render.facts(note)[:FIELDS]
        if facts:
            section["fields"] = [{"type": "mrkdwn", "text": cut(f"*{escape(k)}*\n{escape(v)}", 2000)} for k, v in facts]
        if len(section) > 1:
            blocks.append(section)
        samples = render.sample_lines(note)
        if samples:
            body = cut(escape("\n".join(samples)), SECTION_CHARS - 20)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Samples*\n```{body}```"}})
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(str(note.get("generatorURL", "")))}]}
        )
        return {"text": cut(title + (f": {text}" if text else ""), SECTION_CHARS), "blocks": blocks}

    async def deliver(self, notes: list[Notification]) -> None:
        url = self._url()
        for note in notes:
            await self._request("POST", url, redact_url(url), orjson.dumps(self.payload(note)))

    async def check(self) -> None:
        if self.last_error:
            raise DeliveryError(f"slack target {self.name!r} failing: {self.last_error}")
