"""DingTalk (钉钉) custom robot: one markdown message per notification, signed when a secret is set.

Signing (DingTalk's "加签" rule): `timestamp` is the current time in milliseconds;
the string `"{timestamp}\n{secret}"` is signed with HMAC-SHA256 keyed by the secret;
`sign` is the Base64 of the digest, URL-encoded; both go in the query string next to
`access_token`. DingTalk refuses a timestamp more than an hour off.

DingTalk answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`; any other errcode is
a refusal: 130101 (more than 20 messages a minute) and -1 (busy) are retried, the rest
(bad signature 310000, keyword or IP rules, a revoked token 300001) are permanent and
dead-lettered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus

import orjson

from pipeline.errors import ConfigError
from pipeline.secrets import secret_value
from pipeline.template import Template
from sinks.webhook import render
from sinks.webhook.config_targets import DingTalkTarget, _HttpOptions
from sinks.webhook.httpbase import DeliveryError, HttpChannel, Notification, SessionFactory, redact_url

RETRYABLE_ERRCODES = frozenset({-1, 130101})
TEXT_CHARS = 18000  # the robot's message limit is 20,000 bytes of markdown


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` query value for `timestamp_ms` (already URL-encoded)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def check_answer(body: bytes) -> None:
    """Raise DeliveryError unless the robot's JSON answer says errcode 0."""
    try:
        answer = orjson.loads(body)
        code = int(answer.get("errcode", 0))
    except (ValueError, TypeError, AttributeError):
        raise DeliveryError(f"dingtalk: unexpected answer {body[:200]!r}") from None
    if code != 0:
        message = str(answer.get("errmsg", ""))[:200]
        raise DeliveryError(f"dingtalk: errcode {code} {message}", permanent=code not in RETRYABLE_ERRCODES)


class DingTalkDelivery(HttpChannel):
    type = "dingtalk"
    max_batch = 1

    def __init__(
        self,
        name: str,
        config: DingTalkTarget,
        session_factory: SessionFactory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, _HttpOptions(timeout=config.timeout, tls=config.tls), config.notify_on, session_factory)
        self._config = config
        self._title = Template(config.title)
        self._text = Template(config.text)
        self._clock = clock

    def _secrets(self) -> tuple[str, str | None]:
        c = self._config
        try:
            url = secret_value(c.url, c.url_file, "url")
            secret = secret_value(c.secret, c.secret_file, "secret")
        except ConfigError as exc:
            raise DeliveryError(str(exc)) from None
        if not url:
            raise DeliveryError(f"dingtalk target {self.name!r}: no url")
        return url, secret or None

    def signed_url(self, url: str, secret: str | None) -> str:
        if not secret:
            return url
        timestamp = int(self._clock() * 1000)
        return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign(secret, timestamp)}"

    def payload(self, note: Notification) -> dict[str, Any]:
        title = render.render(self._title, note)
        lines = [f"### {render.mark(note)} {title}"]
        text = render.render(self._text, note) or render.description(note)
        if text:
            lines += ["", text]
        lines += ["", *(f"- **{k}**: {v}" for k, v in render.facts(note))]
        samples = render.sample_lines(note)
        if samples:
            lines += ["", "**Samples**", "", *(f"> {s}" for s in samples)]
        firing = note.get("status") == "firing"
        mobiles = self._config.at_mobiles if firing else []
        if mobiles:
            lines += ["", " ".join(f"@{m}" for m in mobiles)]  # DingTalk needs the @ in the text too
        body = "\n".join(lines)
        return {
            "msgtype": "markdown",
            "markdown": {"title": title[:100], "text": body if len(body) <= TEXT_CHARS else body[:TEXT_CHARS] + "…"},
            "at": {"atMobiles": list(mobiles), "isAtAll": bool(self._config.at_all and firing)},
        }

    async def deliver(self, notes: list[Notification]) -> None:
        url, secret = self._secrets()
        for note in notes:
            data = orjson.dumps(self.payload(note))
            await self._request("POST", self.signed_url(url, secret), redact_url(url), data, check=check_answer)

    async def check(self) -> None:
        if self.last_error:
            raise DeliveryError(f"dingtalk target {self.name!r} failing: {self.last_error}")
