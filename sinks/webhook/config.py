"""Config models of the `webhook` sink: rules (conditions, labels, annotations), timing, targets.

The models are the reference documentation (`pipeline schema`); docs/alerts.md explains
them with examples.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from pipeline.conditions import Condition
from pipeline.config import BatchOptions, Model, SinkConfig
from pipeline.template import Template, check_template, compile_tree
from pipeline.units import Duration
from pipeline.urls import check_http_url

# Prometheus' classic label-name syntax: valid in every Alertmanager version.
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Annotations the sink fills in itself on every notification.
RESERVED_ANNOTATIONS = ("count", "first_seen", "last_seen")
NotificationKind = Literal["firing", "update", "repeat", "resolved"]
ALL_KINDS: tuple[NotificationKind, ...] = ("firing", "update", "repeat", "resolved")
HTTP_KINDS: tuple[NotificationKind, ...] = ("firing", "repeat", "resolved")


def _check_names(kind: str, names: dict[str, str], reserved: tuple[str, ...] = ()) -> None:
    for name, source in names.items():
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(
                f"{kind} name {name!r} is invalid: use letters, digits and _ (not starting with a digit or __)"
            )
        if name in reserved:
            raise ValueError(f"annotation {name!r} is set by the sink itself")
        check_template(source)


class RuleConfig(Model):
    """When events turn into an alert, and what the alert says."""

    name: str = Field(
        min_length=1,
        description="Rule name: the `alertname` label unless `labels` sets one.",
        examples=["ApplicationError"],
    )
    when: Condition = Field(
        description="Condition an event must meet (structured matchers; nothing is evaluated as code).",
        examples=[{"field": "level", "in": ["ERROR", "CRITICAL"]}],
    )
    severity: str = Field(
        default="warning", description="The `severity` label (a template, like other labels).", examples=["critical"]
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Label templates. The rendered labels identify "
        "the alert: events with equal labels fold into one alert.",
        examples=[{"service": "{service|unknown}", "error_type": "{error.type}"}],
    )
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotation templates, rendered from the "
        "latest matching event. `count`, `first_seen` and `last_seen` are added.",
        examples=[{"summary": "{error.type}: {message:200}"}],
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        _check_names("label", value)
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        _check_names("annotation", value, RESERVED_ANNOTATIONS)
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        return check_template(value)


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

    def is_enabled(self) -> bool:
        if self.enabled == "auto":
            url = getattr(self, "url", "")
            return bool(url.get_secret_value() if isinstance(url, SecretStr) else url)
        return bool(self.enabled)


class _HttpOptions(Model):
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


TargetConfig = Annotated[AlertmanagerTarget | HttpTarget | FileTarget | ConsoleTarget, Field(discriminator="type")]


class WebhookSinkConfig(SinkConfig):
    """Alerts from log events: rules match events, matches fold into alerts, alerts go to targets."""

    type: Literal["webhook"]
    rules: list[RuleConfig] = Field(min_length=1, description="Alert rules, each evaluated on every event.")
    targets: list[TargetConfig] = Field(min_length=1, description="Where notifications go (each to all targets).")
    critical: bool = Field(
        default=False,
        description="Alert channels are not critical by default: a target that is down makes `/ready` report "
        "`degraded` (200) instead of failing, so a Slack outage does not stop a rollout. Notifications are kept "
        "and retried.",
    )
    group_wait: Duration = Field(
        default=1.0,
        ge=0,
        description="A new alert is first notified this long after its "
        "first match (so it carries a first count and new alerts share a request).",
    )
    update_interval: Duration = Field(
        default=10.0,
        gt=0,
        description="While firing, a notification with the new "
        "count is sent at most this often when the count changed.",
    )
    repeat_interval: Duration = Field(
        default=300.0, gt=0, description="While firing, re-notify this often even when nothing changed."
    )
    resolve_after: Duration = Field(
        default=300.0, gt=0, description="An alert resolves after this long without a new match."
    )
    max_alerts_per_minute: int = Field(
        default=60,
        gt=0,
        description="New alerts (distinct label sets) opened per "
        "rolling minute at most; matches beyond it are counted and dropped (and, with "
        "overflow_alert, folded into one overflow alert per rule).",
    )
    overflow_alert: bool = Field(
        default=True,
        description="Fold the matches that max_alerts_per_minute held back "
        'into one alert per rule labelled `overflow="true"`, so a storm stays visible.',
    )
    generator_url: str = Field(
        default="http://pipeline/{component}",
        description="`generatorURL` of the alerts: a template over {component}, {rule} and {host}.",
    )
    persist_interval: Duration = Field(
        default=0.01,
        ge=0,
        description="State writes (fsync) start at most this "
        "often; sends arriving while one is in flight share the next write.",
    )
    flush_timeout: Duration = Field(
        default=10.0,
        ge=0,
        description="At shutdown, wait this long at most for pending "
        "notifications to be delivered (what remains is kept in the state file).",
    )
    max_pending_notifications: int = Field(
        default=10000,
        gt=0,
        description="Undelivered notifications kept per target; beyond it the oldest are dropped (counted).",
    )
    max_in_flight: int = Field(
        default=4,
        gt=0,
        description="Concurrent sends: they share state writes, so more "
        "than one keeps throughput up while each send waits for its fsync.",
    )
    batch: BatchOptions = Field(
        default_factory=lambda: BatchOptions(timeout=0.25),
        description="How events are grouped per send (a short timeout keeps alerts prompt).",
    )

    @field_validator("generator_url")
    @classmethod
    def _generator_url(cls, value: str) -> str:
        unknown = set(Template(value).fields) - {"component", "rule", "host"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}: use {{component}}, {{rule}}, {{host}}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WebhookSinkConfig:
        if self.group_wait >= self.resolve_after:
            raise ValueError("group_wait must be shorter than resolve_after")
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {dupes}")
        targets = target_names(self.targets)
        dupes = sorted({n for n in targets if targets.count(n) > 1})
        if dupes:
            raise ValueError(f"target names must be unique: {dupes}")
        return self


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
