"""Slack, DingTalk and email targets against real servers started by the tests.

Slack and DingTalk: a local aiohttp server checks each payload against the documented
format (Slack blocks; DingTalk markdown) and, for DingTalk, recomputes the signature from
the secret: `sign` = URL-encoded Base64 of HMAC-SHA256(secret, "{timestamp}\\n{secret}").
Email: aiosmtpd, a real SMTP server, with STARTTLS and AUTH, or implicit TLS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import orjson
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from sinks.webhook.config_targets import DingTalkTarget, EmailTarget, SlackTarget
from sinks.webhook.dingtalk import DingTalkDelivery
from sinks.webhook.email import EmailDelivery
from sinks.webhook.httpbase import DeliveryError
from sinks.webhook.slack import SlackDelivery

NOTE: dict[str, Any] = {
    "status": "firing", "kind": "firing", "fingerprint": "0123456789abcdef", "rule": "HighErrorRate",
    "labels": {"alertname": "HighErrorRate", "severity": "critical", "vhost": "shop"},
    "annotations": {"summary": "5xx share 2.50% over 5m", "value": "0.025", "threshold": "> 0.01",
                    "window": "5m", "count": "25", "first_seen": "x", "last_seen": "y"},
    "startsAt": "2024-05-14T09:05:00.000Z", "endsAt": "2024-05-14T09:15:00.000Z",
    "generatorURL": "http://pipeline/alerts",
    "samples": [{"@timestamp": "2024-05-14T09:04:59.000Z", "message": "GET /api/orders 502 <upstream>"}],
}
SECRET = "SEC0123456789abcdef"


class Http:
    """Records requests; answers with queued (status, body) pairs, else 200 with `default`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, bytes]] = []
        self.default = b"ok"
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "query": request.query_string, "headers": dict(request.headers),
                              "body": orjson.loads(await request.read())})
        status, body = self.answers.pop(0) if self.answers else (200, self.default)
        return web.Response(status=status, body=body)


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    server = Http()
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield server
    await runner.cleanup()


class TestSlack:
    async def test_blocks_carry_the_severity_value_and_samples(self, http: Http, tmp_path: Path) -> None:
        url_file = tmp_path / "slack-url"
        url_file.write_text(http.url + "/services/T0/B0/token\n")
        target = SlackDelivery("slack", SlackTarget.model_validate({"type": "slack", "url_file": str(url_file)}))
        await target.deliver([NOTE])
        await target.aclose()
        (req,) = http.requests
        assert req["path"] == "/services/T0/B0/token"
        assert req["headers"]["Content-Type"] == "application/json"
        body = req["body"]
        assert body["text"].startswith("🔴 [firing] HighErrorRate (critical)")  # the notification fallback
        header, section, samples, context = body["blocks"]
        assert header == {"type": "header", "text": {"type": "plain_text",
                                                      "text": "🔴 [firing] HighErrorRate (critical)"}}
        assert section["type"] == "section" and section["text"] == {"type": "mrkdwn",
                                                                     "text": "5xx share 2.50% over 5m"}
        fields = [f["text"] for f in section["fields"]]
        assert all(f["type"] == "mrkdwn" for f in section["fields"]) and len(fields) <= 10
        assert "*Severity*\ncritical" in fields and "*Value*\n0.025" in fields and "*Threshold*\n&gt; 0.01" in fields
        assert "*Window*\n5m" in fields and "*vhost*\nshop" in fields
        sample = "2024-05-14T09:04:59.000Z GET /api/orders 502 &lt;upstream&gt;"
        assert samples["text"]["text"] == f"*Samples*\n```{sample}```"
        assert context["type"] == "context"

    @pytest.mark.parametrize(("status", "answer", "permanent"), [
        pytest.param(400, b"invalid_payload", True, id="invalid-payload"),
        pytest.param(404, b"no_service", True, id="hook-gone"),
        pytest.param(429, b"rate_limited", False, id="rate-limited"),
        pytest.param(500, b"oops", False, id="server-error"),
    ])
    async def test_refusals_are_classified(self, http: Http, status: int, answer: bytes, permanent: bool) -> None:
        target = SlackDelivery("slack", SlackTarget.model_validate({"type": "slack", "url": http.url + "/hook"}))
        http.answers.append((status, answer))
        with pytest.raises(DeliveryError) as caught:
            await target.deliver([NOTE])
        await target.aclose()
        assert caught.value.permanent is permanent
        assert "/hook" not in str(caught.value)  # the URL carries the token: never shown


def expected_sign(timestamp: str) -> bytes:
    return hmac.new(SECRET.encode(), f"{timestamp}\n{SECRET}".encode(), hashlib.sha256).digest()


class TestDingTalk:
    async def test_markdown_message_signed_with_the_secret(self, http: Http) -> None:
        http.default = b'{"errcode":0,"errmsg":"ok"}'
        config = DingTalkTarget.model_validate({
            "type": "dingtalk", "url": http.url + "/robot/send?access_token=abc123", "secret": SECRET,
            "at_mobiles": ["13800000000"]})
        target = DingTalkDelivery("dingtalk", config)
        before = int(time.time() * 1000)
        await target.deliver([NOTE, {**NOTE, "status": "resolved", "kind": "resolved"}])
        await target.aclose()
        firing, resolved = http.requests
        assert firing["path"] == "/robot/send"
        query = dict(part.split("=", 1) for part in firing["query"].split("&"))
        assert query["access_token"] == "abc123"
        assert before <= int(query["timestamp"]) <= int(time.time() * 1000)
        assert base64.b64decode(unquote_plus(query["sign"])) == expected_sign(query["timestamp"])
        body = firing["body"]
        assert body["msgtype"] == "markdown"
        assert body["markdown"]["title"] == "[firing] HighErrorRate (critical)"
        text = body["markdown"]["text"]
        assert text.startswith("### 🔴 [firing] HighErrorRate (critical)\n\n5xx share 2.50% over 5m")
        assert "- **Value**: 0.025" in text and "- **Threshold**: > 0.01" in text and "- **Window**: 5m" in text
        assert "> 2024-05-14T09:04:59.000Z GET /api/orders 502 <upstream>" in text
        assert text.endswith("@13800000000") and body["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
        assert resolved["body"]["at"] == {"atMobiles": [], "isAtAll": False}  # no one is paged for a resolution
        assert resolved["body"]["markdown"]["text"].startswith("### ✅ [resolved]")

    async def test_unsigned_without_a_secret(self, http: Http) -> None:
        http.default = b'{"errcode":0,"errmsg":"ok"}'
        target = DingTalkDelivery("dingtalk", DingTalkTarget.model_validate(
            {"type": "dingtalk", "url": http.url + "/robot/send?access_token=abc"}))
        await target.deliver([NOTE])
        await target.aclose()
        assert http.requests[0]["query"] == "access_token=abc"

    @pytest.mark.parametrize(("answer", "permanent"), [
        pytest.param(b'{"errcode":310000,"errmsg":"sign not match"}', True, id="bad-signature"),
        pytest.param(b'{"errcode":300001,"errmsg":"token is not exist"}', True, id="revoked"),
        pytest.param(b'{"errcode":130101,"errmsg":"send too fast"}', False, id="too-fast"),
        pytest.param(b"<html>gateway</html>", False, id="not-json"),
    ])
    async def test_an_http_200_refusal_is_an_error(self, http: Http, answer: bytes, permanent: bool) -> None:
        http.default = answer
        target = DingTalkDelivery("dingtalk", DingTalkTarget.model_validate(
            {"type": "dingtalk", "url": http.url + "/robot/send?access_token=abc", "secret": SECRET}))
        with pytest.raises(DeliveryError) as caught:
            await target.deliver([NOTE])
        await target.aclose()
        assert caught.value.permanent is permanent
        assert "abc" not in str(caught.value) and SECRET not in str(caught.value)


# -- email -----------------------------------------------------------------------------------
class Mailbox:
    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], Message]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=["starttls", "tls"])
def smtp(request: pytest.FixtureRequest, tls_files: tuple[Path, Path]) -> Iterator[tuple[Mailbox, str, int]]:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox()
    port = free_port()
    if request.param == "starttls":  # plain connection, STARTTLS required before AUTH and mail
        controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                                auth_required=True, authenticator=authenticate)
    else:  # implicit TLS from the first byte
        controller = Controller(box, hostname="127.0.0.1", port=port, ssl_context=context, auth_required=True,
                                auth_require_tls=False, authenticator=authenticate)
    controller.start()
    yield box, request.param, port
    controller.stop()


def email_target(security: str, port: int, cert: Path, **over: Any) -> EmailDelivery:
    body = {"type": "email", "host": "127.0.0.1", "port": port, "security": security, "tls": {"ca_file": str(cert)},
            "username": "alerts", "password": "s3cret", "from": "pipeline@example.com",
            "to": ["oncall@example.com", "lead@example.com"], **over}
    return EmailDelivery("email", EmailTarget.model_validate(body))


# aiosmtpd counts only STARTTLS as TLS for AUTH: with implicit TLS, AUTH needs auth_require_tls=False, and a warning.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
class TestEmail:
    async def test_one_mail_per_group_with_text_and_html(self, smtp: tuple[Mailbox, str, int],
                                                         tls_files: tuple[Path, Path]) -> None:
        box, security, port = smtp
        target = email_target(security, port, tls_files[0])
        other = {**NOTE, "fingerprint": "ffff", "labels": {**NOTE["labels"], "alertname": "ErrorBurst"}}
        second = {**NOTE, "fingerprint": "eeee", "labels": {**NOTE["labels"], "vhost": "api"}}
        await target.deliver([NOTE, other, second])
        assert len(box.mails) == 2  # grouped by alertname: HighErrorRate (2 alerts), ErrorBurst (1)
        sender, rcpts, mail = next(m for m in box.mails if "HighErrorRate" in m[2]["Subject"])
        assert sender == "pipeline@example.com" and rcpts == ["oncall@example.com", "lead@example.com"]
        assert mail["Subject"] == "[firing] HighErrorRate (+1 more)"
        assert mail["To"] == "oncall@example.com, lead@example.com"
        assert mail.is_multipart()
        text, markup = (part.get_payload(decode=True).decode() for part in mail.walk() if not part.is_multipart())
        assert "Value: 0.025" in text and "Threshold: > 0.01" in text and "vhost: api" in text
        assert "<th align='left'>Value</th><td>0.025</td>" in markup
        assert "GET /api/orders 502 &lt;upstream&gt;" in markup  # escaped

    async def test_a_wrong_password_is_permanent(self, smtp: tuple[Mailbox, str, int],
                                                 tls_files: tuple[Path, Path]) -> None:
        _, security, port = smtp
        with pytest.raises(DeliveryError) as caught:
            await email_target(security, port, tls_files[0], password="wrong").deliver([NOTE])
        assert caught.value.permanent and "wrong" not in str(caught.value)

    async def test_a_refused_recipient_is_permanent(self, smtp: tuple[Mailbox, str, int],
                                                    tls_files: tuple[Path, Path]) -> None:
        box, security, port = smtp
        box.refuse = {"oncall@example.com", "lead@example.com"}
        with pytest.raises(DeliveryError, match="recipients refused") as caught:
            await email_target(security, port, tls_files[0]).deliver([NOTE])
        assert caught.value.permanent

    async def test_an_untrusted_certificate_is_retried(self, smtp: tuple[Mailbox, str, int], tmp_path: Path) -> None:
        _, security, port = smtp
        target = EmailDelivery("email", EmailTarget.model_validate({
            "type": "email", "host": "127.0.0.1", "port": port, "security": security, "username": "alerts",
            "password": "s3cret", "from": "p@example.com", "to": ["o@example.com"], "timeout": "5s"}))
        with pytest.raises(DeliveryError) as caught:
            await target.deliver([NOTE])  # the test CA is not trusted by default
        assert not caught.value.permanent

    async def test_server_down_is_retried(self, tls_files: tuple[Path, Path]) -> None:
        with pytest.raises(DeliveryError) as caught:
            await email_target("starttls", free_port(), tls_files[0], timeout="2s").deliver([NOTE])
        assert not caught.value.permanent
