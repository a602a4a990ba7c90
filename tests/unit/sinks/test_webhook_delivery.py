"""The delivery loop (sinks/webhook/delivery.py) inside the sink: dead letters, rate limit, group interval;
and a windowed rule through the sink: persisted before the batch settles, restored after a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pipeline.dlq import DeadLetterQueue
from sinks.webhook import WebhookSink
from tests.unit.sinks.test_webhook_sink import FakeTarget, config, crash, error, saved_state, wait_until

BURST = {"name": "ErrorBurst", "type": "frequency", "when": {"field": "level", "equals": "ERROR"},
         "labels": {"service": "{service}"}, "window": "10m", "threshold": 3}


def stamped(second: int, service: str = "api") -> dict[str, Any]:
    return {**error(service=service), "@timestamp": f"2024-05-14T09:00:{second:02d}.000Z"}


class TestDeadLetters:
    async def test_a_refused_notification_goes_to_the_dead_letter_queue(self, tmp_path: Path) -> None:
        target = FakeTarget()
        target.fail = "permanent"
        dlq = DeadLetterQueue(tmp_path / "dead_letter")
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[target], dlq=dlq)
        await sink.start()
        await sink.send([error()])
        await wait_until(lambda: sink.stats.notifications.get(("fake", "failed"), 0) >= 1)
        await sink.aclose()
        (record,) = dlq.read_all()
        assert record["component"] == "alerts/fake"
        assert record["reason"] == "notification refused: fake permanent failure"
        assert record["event"]["labels"]["alertname"] == "AppError" and record["event"]["kind"] == "firing"
        assert len(sink.outboxes["fake"]) == 0


class TestPacing:
    async def test_the_rate_limit_holds_notifications_in_the_outbox(self, tmp_path: Path) -> None:
        target = FakeTarget()
        target.rate_limit = 1  # one delivery a minute
        sink = WebhookSink("alerts", config(flush_timeout=0.2), data_dir=tmp_path, targets=[target])
        await sink.start()
        await sink.send([error("A")])
        await wait_until(lambda: len(target.delivered) == 1)
        await sink.send([error("B"), error("C")])
        await wait_until(lambda: len(sink.outboxes["fake"]) == 2)
        await asyncio.sleep(0.3)  # several ticks and delivery turns
        assert len(target.delivered) == 1 and target.attempts == 1
        await sink.aclose()

    async def test_the_group_interval_sends_what_arrived_meanwhile_together(self, tmp_path: Path) -> None:
        target = FakeTarget()
        target.group_interval = 0.5
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[target])
        await sink.start()
        await sink.send([error("A")])
        await wait_until(lambda: target.attempts == 1)
        for name in "BCD":
            await sink.send([error(name)])
        await wait_until(lambda: len(target.delivered) == 4)
        assert target.attempts == 2  # B, C and D in one delivery
        await sink.aclose()


class TestWindowedThroughTheSink:
    async def test_a_windowed_alert_is_durable_when_the_batch_settles_and_survives_a_crash(
            self, tmp_path: Path) -> None:
        target = FakeTarget()
        sink = WebhookSink("alerts", config(rules=[BURST]), data_dir=tmp_path, targets=[target])
        await sink.start()
        await sink.send([stamped(0), stamped(1)])
        (rule,) = saved_state(tmp_path)["windowed"].values()
        assert rule["keys"][0]["total"] == 2  # the window is on disk when send returns
        await sink.send([stamped(2)])
        assert [g["labels"]["alertname"] for g in saved_state(tmp_path)["groups"]] == ["ErrorBurst"]
        await wait_until(lambda: [n["kind"] for n in target.delivered] == ["firing"])
        # Crash once the delivery is recorded: the alert notified and nothing left in the outbox (before that,
        # a resend after restart is the at-least-once case). An older state file also has an empty outbox,
        # from before the notification was queued, so wait for notified_at too.
        await wait_until(
            lambda: saved_state(tmp_path)["outboxes"]["fake"] == []
            and saved_state(tmp_path)["groups"][0]["notified_at"] is not None
        )
        crash(sink)

        again = FakeTarget()
        restarted = WebhookSink("alerts", config(rules=[BURST]), data_dir=tmp_path, targets=[again])
        await restarted.start()
        await restarted.send([stamped(3)])
        (window,) = restarted.windowed[0].states.values()
        assert window.total == 4 and window.group is not None  # the same window and the same firing alert
        await restarted.aclose()
        assert "firing" not in [n["kind"] for n in again.delivered]  # not notified as new again
        assert {n["startsAt"] for n in [*target.delivered, *again.delivered]} == {"2024-05-14T09:00:02.000Z"}
