"""`webhook` sink: alert rules over events, grouped into alerts, sent to Alertmanager and webhooks.

Modules: config (models), rules (conditions ->
predicates), aggregate (grouping and timing, pure), outbox (per-target queue),
state (atomic, coalesced persistence), targets (delivery), metrics, sink (the
Sink itself: send, background ticker and delivery). Templates are
pipeline/template.py's. See docs/alerts.md.
"""

from __future__ import annotations

from pipeline.context import BuildContext
from pipeline.registry import register
from sinks.webhook.config import WebhookSinkConfig
from sinks.webhook.sink import WebhookSink

__all__ = ["WebhookSink", "WebhookSinkConfig"]


@register("sink", "webhook", WebhookSinkConfig)
def build(name: str, config: WebhookSinkConfig, ctx: BuildContext) -> WebhookSink:
    return WebhookSink(name, config, data_dir=ctx.data_dir, host=ctx.host, registry=ctx.metrics.registry, dlq=ctx.dlq)
