"""Config models of the `webhook` sink's targets: Alertmanager, generic HTTP, Slack, DingTalk, email,
a file and the console, with the delivery options they share (rate limit, group interval).

Secrets (webhook URLs with tokens, the DingTalk signing secret, the SMTP password) are
`SecretStr` values (normally `${ENV}`) or `*_file` options read through pipeline/secrets.py;
they are never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.config import Model
from pipeline.httpauth import HttpAuthOptions
from pipeline.template import check_template, compile_tree
from pipeline.tls import TlsOptions
from pipeline.units import Duration
from pipeline.urls import check_http_url

NotificationKind = Literal["firing", "update", "repeat", "resolved"]
ALL_KINDS: tuple[NotificationKind, ...] = ("firing", "update", "repeat", "resolved")
HTTP_KINDS: tuple[NotificationKind, ...] = ("firing", "repeat", "resolved")


class _TargetBase(Model):
    name: str | None = Field(
        default=None,
        description="Name in metrics, logs and the state file. Default: the "
        "type (`alertmanager`, `http-2` for a second one).",
        examples=["slack"],
    )
    enabled: bool | Literal["auto"] = Field(
        default=True,
        description="`false`: the target is ignored. `auto`: "
        "on when `url` is set, so one config carries an optional target "
        "(`url: ${ALERTMANAGER_URL:-}` with `enabled: auto`).",
    )

    rate_limit: int | None = Field(
        default=None,
        gt=0,
        description="Requests (mails) per rolling minute at most; beyond it notifications wait in the outbox, "
        "where newer states of an alert replace older ones. Default: none; Slack 60, DingTalk 20 "
        "(a robot takes 20 messages a minute).",
        examples=[20],
    )
    group_interval: Duration = Field(
        default=0.0,
        ge=0,
        description="Wait this long after a delivery before the next: what arrives meanwhile goes out "
        "together (email: one mail per group per interval). Default 0; email 1m.",
        examples=["1m"],
    )

    def is_enabled(self) -> bool:
        if self.enabled == "auto":
            url = getattr(self, "url", "")
            if url is None:
                return getattr(self, "url_file", None) is not None
            return bool(url.get_secret_value() if isinstance(url, SecretStr) else url)
        return bool(self.enabled)

    def default_rate_limit(self) -> int | None:
        return self.rate_limit


class _HttpOptions(HttpAuthOptions):
    """What every HTTP target accepts: headers, basic auth or a bearer token, TLS, a timeout."""

    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Request headers. Values are secret (never logged); use ${ENV} for tokens.",
        examples=[{"Authorization": "Bearer ${WEBHOOK_TOKEN}"}],
    )
    headers_from_files: dict[str, Path] = Field(
        default_factory=dict,
        description="Headers whose value is read "
        "from a file at each delivery (trailing newline stripped): "
        "mounted secrets that rotate.",
        examples=[{"Authorization": "/run/secrets/webhook-auth"}],
    )
    timeout: Duration = Field(default=10.0, gt=0, description="Per-request timeout.")
    tls: TlsOptions | None = Field(
        default=None,
        description="TLS to an https URL: CA, client certificate, verification (the shared TLS options, see "
        "docs/security.md). Unset: the system trust store, verification on.",
        examples=[{"ca_file": "/etc/ssl/certs/internal-ca.pem"}],
    )

    @model_validator(mode="after")
    def _auth_or_header(self) -> _HttpOptions:
        if self.auth_schemes() and any(h.lower() == "authorization" for h in [*self.headers, *self.headers_from_files]):
            raise ValueError("set the Authorization header or username/password/bearer_token, not both")
        return self


class AlertmanagerTarget(_TargetBase, _HttpOptions):
    """Prometheus Alertmanager: POST {url}/api/v2/alerts."""

    type: Literal["alertmanager"]
    url: str = Field(default="", description="Alertmanager base URL.", examples=["http://alertmanager:9093"])
    ends_at_margin: Duration = Field(
        default=60.0,
        ge=0,
        description="A firing alert is posted with endsAt = now + "
        "resolve_after + this, so Alertmanager never resolves it before the sink "
        "does (and does resolve it if the pipeline disappears).",
    )
    max_alerts_per_request: int = Field(default=100, gt=0, description="Alerts per POST at most.")
    notify_on: list[NotificationKind] = Field(
        default_factory=lambda: list(ALL_KINDS), description="Notification kinds sent to this target."
    )

    @model_validator(mode="after")
    def _url(self) -> AlertmanagerTarget:
        if self.is_enabled():
            try:
                check_http_url(self.url)
            except ValueError as exc:
                raise ValueError(
                    f"url: {exc}; set enabled: false (or auto: on only when url is set) to turn the target off"
                ) from None
        return self


class HttpTarget(_TargetBase, _HttpOptions):
    """Any webhook (Slack, Mattermost, Teams, an HTTP service): one request per notification."""

    type: Literal["http"]
    url: SecretStr = Field(
        default=SecretStr(""),
        description="Endpoint URL. Secret: webhook URLs often embed a token (Slack).",
        examples=["${SLACK_WEBHOOK_URL}"],
    )
    method: Literal["POST", "PUT", "PATCH"] = Field(default="POST", description="HTTP method.")
    body: dict[str, Any] | None = Field(
        default=None,
        description="JSON body: a mapping whose strings are templates "
        "over the alert (`{status}`, `{kind}`, `{labels.alertname}`, "
        "`{annotations.count}`, `{startsAt}`, `{fingerprint}`). Default: the "
        "alert itself as JSON.",
        examples=[{"text": "[{status}] {labels.alertname}: {annotations.summary} (x{annotations.count})"}],
    )
    format: Literal["notification", "alertmanager"] = Field(
        default="notification",
        description="Body without `body`: `notification` (the notification as JSON) or `alertmanager` (the "
        "Alertmanager v2 body: a JSON list with the alert, `labels.alertname` and all).",
    )
    notify_on: list[NotificationKind] = Field(
        default_factory=lambda: list(HTTP_KINDS),
        description="Notification kinds sent. `update` (count changed) is "
        "left out by default: chat channels would get one every "
        "update_interval during a storm.",
    )

    @field_validator("body")
    @classmethod
    def _body(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            compile_tree(value)
        return value

    @model_validator(mode="after")
    def _url(self) -> HttpTarget:
        if self.is_enabled():
            try:
                check_http_url(self.url.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"url: {exc}; set enabled: false to turn the target off") from None
        return self


class FileTarget(_TargetBase):
    """Append each notification as a JSON line (local runs, audits)."""

    type: Literal["file"]
    path: Path = Field(description="File to append to (created with its folder).", examples=["data/alerts.jsonl"])
    fsync: bool = Field(default=True, description="fsync after each write.")
    notify_on: list[NotificationKind] = Field(
        default_factory=lambda: list(ALL_KINDS), description="Notification kinds written."
    )


class ConsoleTarget(_TargetBase):
    """Print each notification as a JSON line."""

    type: Literal["console"]
    stream: Literal["stdout", "stderr"] = Field(
        default="stderr",
        description="Where to print (stderr by default, so it does not mix with a console sink's events).",
    )
    notify_on: list[NotificationKind] = Field(
        default_factory=lambda: list(ALL_KINDS), description="Notification kinds printed."
    )


_CHAT_TITLE = "[{status}] {labels.alertname} ({labels.severity})"


class _ChatTarget(_TargetBase):
    url: SecretStr | None = Field(
        default=None, description="The webhook URL (secret: it carries the token).", examples=["${SLACK_WEBHOOK_URL}"]
    )
    url_file: Path | None = Field(
        default=None, description="A file holding the webhook URL (a mounted secret), instead of `url`."
    )
    title: str = Field(
        default=_CHAT_TITLE,
        description="Title template over the notification (`{status}`, `{labels.X}`, `{annotations.X}`).",
    )
    text: str = Field(
        default="{annotations.summary|}",
        description="Text template over the notification; the value, threshold, window, count and sample "
        "events follow it.",
        examples=["{annotations.summary} on {labels.service}"],
    )
    timeout: Duration = Field(default=10.0, gt=0, description="Per-request timeout.")
    tls: TlsOptions | None = Field(
        default=None,
        description="TLS options (the shared TLS options, see docs/security.md), e.g. a private CA of a "
        "self-hosted chat server. Unset: the system trust store, verification on.",
    )
    notify_on: list[NotificationKind] = Field(
        default_factory=lambda: list(HTTP_KINDS), description="Notification kinds sent (no `update` by default)."
    )

    @field_validator("title", "text")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _one_url(self) -> _ChatTarget:
        if (self.url is None) == (self.url_file is None) and self.is_enabled():
            raise ValueError("set exactly one of url and url_file")
        url = self.url.get_secret_value() if self.url is not None else None
        if url is not None and self.is_enabled():
            try:
                check_http_url(url)
            except ValueError as exc:
                raise ValueError(f"url: {exc}") from None
        return self


class SlackTarget(_ChatTarget):
    """Slack incoming webhook: one message per notification, in blocks (severity, value, samples)."""

    type: Literal["slack"]

    def default_rate_limit(self) -> int | None:
        return self.rate_limit or 60  # Slack allows about one message per second per webhook


class DingTalkTarget(_ChatTarget):
    """DingTalk (钉钉) custom robot: a markdown message per notification, signed when `secret` is set."""

    type: Literal["dingtalk"]
    secret: SecretStr | None = Field(
        default=None,
        description="The robot's signing secret (`SEC...`): each request then carries `timestamp` and "
        "`sign` (HMAC-SHA256).",
        examples=["${DINGTALK_SECRET}"],
    )
    secret_file: Path | None = Field(default=None, description="A file holding the signing secret.")
    at_mobiles: list[str] = Field(
        default_factory=list, description="Mobile numbers to @-mention on firing notifications."
    )
    at_all: bool = Field(default=False, description="@-mention everyone on firing notifications.")

    def default_rate_limit(self) -> int | None:
        return self.rate_limit or 20  # a robot takes 20 messages a minute, then refuses for 10 minutes


class EmailTarget(_TargetBase):
    """Email over SMTP (STARTTLS, implicit TLS or plain, with auth): one mail per group and interval."""

    type: Literal["email"]
    host: str = Field(default="", description="SMTP server.", examples=["smtp.example.com"])
    port: int | None = Field(
        default=None, gt=0, lt=65536, description="SMTP port. Default: 465 with tls, 587 with starttls, else 25."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="`starttls` (upgrade the connection; fails if the server does not offer it), `tls` "
        "(implicit TLS, port 465) or `none` (a local relay only).",
    )
    tls: TlsOptions | None = Field(
        default=None,
        description="TLS options for `tls` and `starttls` (the shared TLS options, see docs/security.md). "
        "Unset: the system trust store, verification on.",
        examples=[{"ca_file": "/etc/ssl/certs/smtp-ca.pem"}],
    )
    username: str | None = Field(default=None, description="SMTP login (auth when set).", examples=["alerts"])
    password: SecretStr | None = Field(default=None, description="SMTP password.", examples=["${SMTP_PASSWORD}"])
    password_file: Path | None = Field(default=None, description="A file holding the SMTP password.")
    sender: str = Field(default="", alias="from", description="The From address.", examples=["pipeline@example.com"])
    to: list[str] = Field(default_factory=list, description="Recipients.", examples=[["oncall@example.com"]])
    subject: str = Field(
        default="[{status}] {labels.alertname}",
        description="Subject template over the group's first notification; ` (+N more)` is added for more.",
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname"],
        description="Labels that group notifications into one mail (per delivery round).",
    )
    group_interval: Duration = Field(
        default=60.0, ge=0, description="At most one mail per group this often: what arrives meanwhile is added."
    )
    timeout: Duration = Field(default=30.0, gt=0, description="Per-connection timeout.")
    notify_on: list[NotificationKind] = Field(
        default_factory=lambda: list(HTTP_KINDS), description="Notification kinds mailed (no `update` by default)."
    )

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return check_template(value)

    def is_enabled(self) -> bool:
        return bool(self.host) if self.enabled == "auto" else bool(self.enabled)

    @model_validator(mode="after")
    def _complete(self) -> EmailTarget:
        if not self.is_enabled():
            return self
        problems = [k for k, v in (("host", self.host), ("from", self.sender), ("to", self.to)) if not v]
        if problems:
            raise ValueError(f"an email target needs {problems}")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username")
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587}.get(self.security, 25)


TargetConfig = Annotated[
    AlertmanagerTarget | HttpTarget | SlackTarget | DingTalkTarget | EmailTarget | FileTarget | ConsoleTarget,
    Field(discriminator="type"),
]


def target_names(targets: list[Any]) -> list[str]:
    """Each target's name: its `name`, else its type (numbered from the second of a type on)."""
    seen: dict[str, int] = {}
    names = []
    for t in targets:
        if t.name:
            names.append(t.name)
            continue
        seen[t.type] = seen.get(t.type, 0) + 1
        names.append(t.type if seen[t.type] == 1 else f"{t.type}-{seen[t.type]}")
    return names
