"""Config models of the `webhook` sink: rules (conditions, labels, annotations), timing, targets.

The models are the reference documentation (`pipeline schema`); docs/alerts.md explains
them with examples.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.config import BatchOptions, SinkConfig
from pipeline.template import Template
from pipeline.units import Duration
from sinks.webhook.config_rules import RuleConfig
from sinks.webhook.config_targets import (
    AlertmanagerTarget,
    ConsoleTarget,
    DingTalkTarget,
    EmailTarget,
    FileTarget,
    HttpTarget,
    SlackTarget,
    TargetConfig,
    target_names,
)

__all__ = [
    "AlertmanagerTarget",
    "ConsoleTarget",
    "DingTalkTarget",
    "EmailTarget",
    "FileTarget",
    "HttpTarget",
    "RuleConfig",
    "SlackTarget",
    "TargetConfig",
    "WebhookSinkConfig",
    "target_names",
]


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
        default=300.0,
        gt=0,
        description="An `event` rule's alert resolves after this long without a new match (windowed rules "
        "resolve when their condition no longer holds).",
    )
    allowed_lateness: Duration = Field(
        default=60.0,
        ge=0,
        description="Windowed rules run on event time (`@timestamp`): an event up to this much older than "
        "the newest of its label set still counts; older ones are counted as late and ignored. It is also "
        "the slack an `absence` rule gives a stream that is behind the others.",
        examples=["2m"],
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
        "often (a large windowed state spaces them further: 5x the last write's CPU time, and 16 MiB/s at "
        "most; the wait for the disk does not count); sends arriving while one is in flight share the next write.",
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
