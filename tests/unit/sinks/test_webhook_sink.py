"""The webhook sink (sinks/webhook/sink.py): durable folding, background delivery, restart, metrics.

Targets are in-memory fakes here (the seam `targets=`): these tests are about what
the sink does when a target works, fails for a while, rejects, or when the process
dies. Real Alertmanager and HTTP servers are in tests/integration/test_webhook_*.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pipeline.config import load_config
from pipeline.errors import ConfigError, TransientError
from pipeline.topology import Topology
from sinks.webhook import WebhookSink, WebhookSinkConfig
from sinks.webhook.targets import DeliveryError

APP_RULE = {
    "name": "AppError",
    "when": {"all": [{"field": "log_type", "equals": "application"}, {"field": "level", "in": ["ERROR", "CRITICAL"]}]},
    "labels": {"service": "{service|unknown}", "error_type": "{error.type}"},
    "annotations": {"summary": "{error.type}: {message:100}"},
}


def config(**overrides: Any) -> WebhookSinkConfig:
    body: dict[str, Any] = {
        "type": "webhook", "inputs": ["in"], "rules": [APP_RULE], "targets": [{"type": "console"}],
        "group_wait": 0.05, "update_interval": 0.1, "repeat_interval": 60, "resolve_after": 30,
        "persist_interval": 0, "retry": {"initial_backoff": 0.01, "max_backoff": 0.05},
    }
    body.update(overrides)
    return WebhookSinkConfig.model_validate(body)


def error(error_type: str = "KeyError", service: str = "api") -> dict[str, Any]:
    return {"log_type": "application", "level": "ERROR", "service": service, "error": {"type": error_type},
            "message": "boom"}


class FakeTarget:
    """Records deliveries; fails (transiently or for good) while told to."""

    type = "fake"
    max_batch = 100

    def __init__(self, name: str = "fake", notify_on: tuple[str, ...] = ("firing", "update", "repeat", "resolved"),
                 ) -> None:
        self.name = name
        self.notify_on = frozenset(notify_on)
        self.last_error: str | None = None
        self.rate_limit: int | None = None
        self.group_interval = 0.0
        self.delivered: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail: str | None = None  # None, "transient", "permanent"

    async def open(self) -> None:
        return None

    async def deliver(self, notes: list[dict[str, Any]]) -> None:
        self.attempts += 1
        if self.fail:
            raise DeliveryError(f"fake {self.fail} failure", permanent=self.fail == "permanent")
        self.delivered.extend(notes)

    async def check(self) -> None:
        if self.fail:
            raise DeliveryError(f"fake target {self.name} is down")

    async def aclose(self) -> None:
        return None

    def counts(self) -> list[tuple[str, str]]:
        return [(n["kind"], n["annotations"]["count"]) for n in self.delivered]


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def crash(sink: WebhookSink) -> None:
    """What kill -9 leaves: the tasks stop, nothing is flushed or written."""
    assert sink._ticker is not None
    sink._ticker.cancel()
    for task in sink._deliverers:
        task.cancel()


def saved_state(tmp_path: Path, name: str = "alerts") -> dict[str, Any]:
    return orjson.loads((tmp_path / "webhook" / f"{name}.json").read_bytes())


class TestSend:
    async def test_folds_a_flood_into_one_alert_and_delivers_it(self, tmp_path: Path) -> None:
        target = FakeTarget()
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[target])
        await sink.start()
        for _ in range(10):
            outcome = await sink.send([error()] * 1000)
            assert outcome.retry == [] and outcome.rejected == []
        await wait_until(lambda: target.counts()[-1:] == [("update", "10000")] or
                         target.counts() == [("firing", "10000")])
        await sink.aclose()
        assert len({n["fingerprint"] for n in target.delivered}) == 1

    async def test_state_is_durable_when_send_returns(self, tmp_path: Path) -> None:
        sink = WebhookSink("alerts", config(group_wait=10), data_dir=tmp_path, targets=[FakeTarget()])
        await sink.start()
        await sink.send([error()] * 3)
        (group,) = saved_state(tmp_path)["groups"]
        assert group["count"] == 3 and group["labels"]["error_type"] == "KeyError"
        await sink.aclose()

    async def test_concurrent_sends_share_writes_and_each_waits_for_its_own(self, tmp_path: Path) -> None:
        sink = WebhookSink("alerts", config(group_wait=10, persist_interval=0.02), data_dir=tmp_path,
                           targets=[FakeTarget()])
        await sink.start()
        saves: list[bytes] = []
        real_save = sink.store.save

        def slow_save(data: bytes) -> None:
            time.sleep(0.02)  # an fsync on a slow disk
            real_save(data)
            saves.append(data)

        sink.store.save = slow_save  # type: ignore[method-assign]

        async def send_and_check(i: int) -> None:
            await sink.send([error(f"E{i}")])
            # When send returns, the file on disk already holds this batch's alert.
            on_disk = {g["labels"]["error_type"] for g in saved_state(tmp_path)["groups"]}
            assert f"E{i}" in on_disk

        await asyncio.gather(*(send_and_check(i) for i in range(40)))
        assert len(saves) < 20, f"{len(saves)} writes for 40 concurrent sends: not coalesced"
        await sink.aclose()

    async def test_non_matching_batches_write_nothing(self, tmp_path: Path) -> None:
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[FakeTarget()])
        await sink.start()
        await sink.send([{"log_type": "application", "level": "INFO"}] * 100)
        assert sink.persister.writes == 0
        await sink.aclose()

    async def test_a_failed_write_is_retried_without_counting_twice(self, tmp_path: Path) -> None:
        sink = WebhookSink("alerts", config(group_wait=10), data_dir=tmp_path, targets=[FakeTarget()])
        await sink.start()
        real_save = sink.store.save
        failures = [OSError(28, "No space left on device")]

        def flaky_save(data: bytes) -> None:
            if failures:
                raise failures.pop()
            real_save(data)

        sink.store.save = flaky_save  # type: ignore[method-assign]
        batch = [error()] * 5
        with pytest.raises(TransientError, match="No space left"):
            await sink.send(batch)
        await sink.send(batch)  # the driver retries the very same list
        assert saved_state(tmp_path)["groups"][0]["count"] == 5
        await sink.aclose()


class TestDelivery:
    async def test_a_down_target_does_not_block_folding_and_gets_the_latest_count(self, tmp_path: Path) -> None:
        target = FakeTarget()
        target.fail = "transient"
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[target])
        await sink.start()
        for _ in range(5):
            started = time.monotonic()
            await sink.send([error()] * 100)
            assert time.monotonic() - started < 1.0
            await asyncio.sleep(0.12)
        await wait_until(lambda: target.attempts >= 3)
        with pytest.raises(TransientError, match="is down"):
            await sink.healthcheck()
        target.fail = None
        await wait_until(lambda: bool(target.delivered))
        # The undelivered firing notification was replaced by the newer ones: the target
        # sees the alert once, as new, with the current count.
        assert target.counts() == [("firing", "500")]
        await sink.healthcheck()
        await sink.aclose()

    async def test_permanent_rejection_is_dropped_and_counted(self, tmp_path: Path) -> None:
        target = FakeTarget()
        target.fail = "permanent"
        registry = CollectorRegistry()
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[target], registry=registry)
        await sink.start()
        await sink.send([error()])
        await wait_until(lambda: registry.get_sample_value(
            "pipeline_webhook_notifications_total",
            {"component": "alerts", "target": "fake", "outcome": "failed"}) == 1.0)
        assert len(sink.outboxes["fake"]) == 0
        await sink.aclose()

    async def test_notify_on_filters_per_target(self, tmp_path: Path) -> None:
        everything, chat = FakeTarget("am"), FakeTarget("chat", ("firing", "resolved"))
        sink = WebhookSink("alerts", config(resolve_after=0.4), data_dir=tmp_path, targets=[everything, chat])
        await sink.start()
        await sink.send([error()])
        await wait_until(lambda: bool(chat.delivered))
        await sink.send([error()] * 2)
        await wait_until(lambda: [k for k, _ in chat.counts()] == ["firing", "resolved"])
        assert [k for k, _ in everything.counts()] == ["firing", "update", "resolved"]
        assert chat.counts()[-1] == ("resolved", "3")
        await sink.aclose()

    async def test_aclose_notifies_what_is_pending(self, tmp_path: Path) -> None:
        target = FakeTarget()
        sink = WebhookSink("alerts", config(group_wait=20, update_interval=20), data_dir=tmp_path,
                           targets=[target])
        await sink.start()
        await sink.send([error("A")] * 4)
        await sink.aclose()
        assert target.counts() == [("firing", "4")]
        assert saved_state(tmp_path)["outboxes"]["fake"] == []

    async def test_aclose_is_bounded_when_a_target_is_down(self, tmp_path: Path) -> None:
        target = FakeTarget()
        target.fail = "transient"
        sink = WebhookSink("alerts", config(flush_timeout=5), data_dir=tmp_path, targets=[target])
        await sink.start()
        await sink.send([error()])
        await wait_until(lambda: target.attempts >= 1)
        started = time.monotonic()
        await sink.aclose()
        assert time.monotonic() - started < 1.0  # a failing target is not waited for
        pending = saved_state(tmp_path)["outboxes"]["fake"]
        assert [n["kind"] for n in pending] == ["firing"]


class TestRestart:
    async def test_a_firing_alert_survives_a_crash(self, tmp_path: Path) -> None:
        target = FakeTarget()
        first = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[target])
        await first.start()
        await first.send([error()] * 7)
        await wait_until(lambda: target.counts() == [("firing", "7")])
        target.fail = "transient"
        await first.send([error()] * 3)  # folded and durable, but the update cannot be delivered
        await wait_until(lambda: target.attempts >= 2)
        crash(first)

        target.fail = None
        second = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[target])
        await second.start()
        await wait_until(lambda: len(target.delivered) == 2)
        assert target.counts()[1] == ("update", "10")  # the pending notification, delivered after restart
        await second.send([error()] * 5)  # the same alert keeps counting
        await wait_until(lambda: target.counts()[-1] == ("update", "15"))
        assert {n["startsAt"] for n in target.delivered} == {target.delivered[0]["startsAt"]}
        await second.aclose()

    async def test_an_alert_resolves_after_a_restart(self, tmp_path: Path) -> None:
        target = FakeTarget()
        first = WebhookSink("alerts", config(resolve_after=0.5), data_dir=tmp_path, targets=[target])
        await first.start()
        await first.send([error()])
        await wait_until(lambda: bool(target.delivered))
        crash(first)
        second = WebhookSink("alerts", config(resolve_after=0.5), data_dir=tmp_path, targets=[target])
        await second.start()
        await wait_until(lambda: target.counts()[-1:] == [("resolved", "1")])
        await second.aclose()

    async def test_an_unreadable_state_file_is_moved_aside(self, tmp_path: Path) -> None:
        state = tmp_path / "webhook" / "alerts.json"
        state.parent.mkdir(parents=True)
        state.write_bytes(b'{"version": 1, "groups": [{"fingerp')  # torn by a broken disk
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[FakeTarget()])
        await sink.start()
        assert sink.aggregator.active == 0
        assert [p.name.split("-")[0] for p in state.parent.iterdir() if "unreadable" in p.name] == [
            "alerts.json.unreadable"]
        await sink.aclose()

    async def test_a_leftover_tmp_file_is_ignored(self, tmp_path: Path) -> None:
        target = FakeTarget()
        first = WebhookSink("alerts", config(group_wait=10), data_dir=tmp_path, targets=[target])
        await first.start()
        await first.send([error()] * 2)
        crash(first)
        (tmp_path / "webhook" / "alerts.json.tmp").write_bytes(b"garbage from a write cut short")
        second = WebhookSink("alerts", config(group_wait=10), data_dir=tmp_path, targets=[target])
        await second.start()
        assert [g.count for g in second.aggregator.groups.values()] == [2]
        await second.aclose()

    async def test_aclose_without_start_keeps_the_state_file(self, tmp_path: Path) -> None:
        first = WebhookSink("alerts", config(group_wait=10), data_dir=tmp_path, targets=[FakeTarget()])
        await first.start()
        await first.send([error()])
        await first.aclose()
        before = saved_state(tmp_path)
        never_started = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[FakeTarget()])
        await never_started.aclose()
        assert saved_state(tmp_path) == before


class TestMetrics:
    async def test_suppressed_and_notifications_are_exposed(self, tmp_path: Path) -> None:
        registry = CollectorRegistry()
        target = FakeTarget()
        sink = WebhookSink("alerts", config(max_alerts_per_minute=2, overflow_alert=False), data_dir=tmp_path,
                           targets=[target], registry=registry)
        other = WebhookSink("other", config(), data_dir=tmp_path, targets=[FakeTarget()], registry=registry)
        await sink.start()
        await sink.send([error(f"E{i}") for i in range(5)])
        await wait_until(lambda: len(target.delivered) == 2)
        assert registry.get_sample_value("pipeline_webhook_alerts_suppressed_total", {"component": "alerts"}) == 3
        assert registry.get_sample_value("pipeline_webhook_alerts_suppressed_total", {"component": "other"}) == 0
        assert registry.get_sample_value("pipeline_webhook_matches_total",
                                         {"component": "alerts", "rule": "AppError"}) == 5
        assert registry.get_sample_value("pipeline_webhook_active_alerts", {"component": "alerts"}) == 2
        assert registry.get_sample_value("pipeline_webhook_notifications_total",
                                         {"component": "alerts", "target": "fake", "outcome": "delivered"}) == 2
        assert b"pipeline_webhook_pending_notifications" in generate_latest(registry)
        await sink.aclose()
        await other.aclose()


class TestConfigFile:
    LOCAL = """
        data_dir: {data_dir}
        sources:
          in: {{type: stdin}}
        sinks:
          alerts:
            type: webhook
            inputs: [in]
            rules:
              - name: ApplicationError
                when:
                  all:
                    - {{field: log_type, equals: application}}
                    - {{field: level, in: [ERROR, CRITICAL]}}
                labels: {{service: "{{service|unknown}}"}}
            targets:
              - type: file
                path: {data_dir}/alerts.jsonl
              - type: alertmanager
                enabled: ${{ALERTMANAGER_ENABLED:-false}}
                url: ${{ALERTMANAGER_URL:-}}
    """

    def test_optional_alertmanager_is_off_without_the_variable(self, write_config: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("ALERTMANAGER_ENABLED", raising=False)
        monkeypatch.delenv("ALERTMANAGER_URL", raising=False)
        cfg = load_config(write_config(self.LOCAL.format(data_dir=tmp_path)))
        topology = Topology(cfg)
        sink = topology.nodes["alerts"].component
        assert isinstance(sink, WebhookSink) and [t.name for t in sink.targets] == ["file"]

    def test_optional_alertmanager_on_with_the_variables(self, write_config: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALERTMANAGER_ENABLED", "true")
        monkeypatch.setenv("ALERTMANAGER_URL", "http://127.0.0.1:9093")
        cfg = load_config(write_config(self.LOCAL.format(data_dir=tmp_path)))
        sink = Topology(cfg).nodes["alerts"].component
        assert [t.name for t in sink.targets] == ["file", "alertmanager"]

    @pytest.mark.parametrize(("url", "expected"), [
        pytest.param(None, ["file"], id="unset"),
        pytest.param("", ["file"], id="empty"),
        pytest.param("http://127.0.0.1:9093", ["file", "alertmanager"], id="set"),
    ])
    def test_enabled_auto_follows_the_url(self, write_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          url: str | None, expected: list[str]) -> None:
        monkeypatch.delenv("ALERTMANAGER_ENABLED", raising=False)
        if url is None:
            monkeypatch.delenv("ALERTMANAGER_URL", raising=False)
        else:
            monkeypatch.setenv("ALERTMANAGER_URL", url)
        text = self.LOCAL.format(data_dir=tmp_path).replace("${ALERTMANAGER_ENABLED:-false}", "auto")
        sink = Topology(load_config(write_config(text))).nodes["alerts"].component
        assert [t.name for t in sink.targets] == expected

    def test_enabled_without_url_names_the_key(self, write_config: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ALERTMANAGER_ENABLED", "true")
        monkeypatch.delenv("ALERTMANAGER_URL", raising=False)
        with pytest.raises(ConfigError) as info:
            load_config(write_config(self.LOCAL.format(data_dir=tmp_path)))
        assert any(
            "sinks.alerts.targets[1].alertmanager" in p and "url: must be a URL with a scheme" in p
            for p in info.value.problems
        )

    @pytest.mark.parametrize(("override", "message"), [
        pytest.param({"group_wait": 10, "resolve_after": 5}, "group_wait must be shorter", id="group-wait"),
        pytest.param({"rules": [APP_RULE, APP_RULE]}, "rule names must be unique", id="dupe-rules"),
        pytest.param({"targets": [{"type": "console"}, {"type": "console"}]}, None, id="numbered-names"),
        pytest.param({"targets": [{"type": "console", "name": "x"}, {"type": "file", "name": "x", "path": "p"}]},
                     "target names must be unique", id="dupe-targets"),
        pytest.param({"generator_url": "http://x/{nope}"}, "unknown placeholder", id="generator-url"),
        pytest.param({"targets": [{"type": "http", "url": "ftp://x"}]}, "unsupported scheme 'ftp'", id="http-url"),
        pytest.param({"targets": [{"type": "http"}]}, "http:// or https://", id="http-no-url"),
        pytest.param({"targets": [{"type": "http", "enabled": "auto"}]}, None, id="http-auto-no-url"),
        pytest.param({"targets": [{"type": "http", "url": "http://x", "body": {"t": "{bad"}}]}, "unbalanced",
                     id="body-template"),
        pytest.param({"targets": [{"type": "alertmanager", "url": "http://x", "notify_on": ["sometimes"]}]},
                     "Input should be", id="notify-on"),
    ])
    def test_validation(self, override: dict[str, Any], message: str | None) -> None:
        if message is None:
            config(**override)
            return
        with pytest.raises(ValueError, match=message):
            config(**override)

    def test_second_target_of_a_type_is_numbered(self, tmp_path: Path) -> None:
        sink = WebhookSink("alerts", config(targets=[{"type": "console"}, {"type": "console"}]), data_dir=tmp_path)
        assert [t.name for t in sink.targets] == ["console", "console-2"]

    def test_secrets_are_not_in_the_repr(self) -> None:
        cfg = config(targets=[{"type": "http", "url": "https://hooks.example/T0/B0/s3cr3t",
                               "headers": {"Authorization": "Bearer t0ken"}}])
        assert "s3cr3t" not in repr(cfg) and "t0ken" not in repr(cfg)
        assert "s3cr3t" not in str(cfg.model_dump())


def test_state_file_is_not_world_readable(tmp_path: Path) -> None:
    async def run() -> None:
        sink = WebhookSink("alerts", config(), data_dir=tmp_path, targets=[FakeTarget()])
        await sink.start()
        await sink.send([error()])
        await sink.aclose()

    asyncio.run(run())
    assert os.stat(tmp_path / "webhook" / "alerts.json").st_mode & 0o077 == 0
