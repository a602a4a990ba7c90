"""What an operator sees: readiness (critical and non-critical sinks, start errors), process metrics,
dead-letter log lines, the final "stopped" line, and global flags after the subcommand."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson
import pytest

from pipeline.acks import Receipt
from pipeline.cli import _config_problems, _parser
from pipeline.config import SinkConfig, SourceConfig, load_config
from pipeline.daemon import Daemon
from pipeline.dlq import DeadLetterQueue
from pipeline.errors import ConfigError, StartError
from pipeline.event import Batch
from pipeline.registry import register
from pipeline.sink import Outcome
from tests.helpers import free_port


class OneBatchSourceConfig(SourceConfig):
    type: Literal["test_one_batch"]
    wait: bool = False  # keep running until shutdown (daemon tests)


class OneBatchSource:
    can_acknowledge = True

    def __init__(self, name: str, config: OneBatchSourceConfig) -> None:
        self.name = name
        self.config = config

    async def run(self, ctx: Any) -> None:
        await ctx.emit(Batch([{"message": "a"}, {"message": "b"}], Receipt()))
        if self.config.wait:
            await ctx.shutdown.wait()

    async def aclose(self) -> None:
        return None


@register("source", "test_one_batch", OneBatchSourceConfig)
def _source(name: str, config: OneBatchSourceConfig, ctx: Any) -> OneBatchSource:
    return OneBatchSource(name, config)


class ProbeSinkConfig(SinkConfig):
    type: Literal["test_probe"]
    start: Literal["ok", "refused"] = "ok"
    healthy: bool = True
    reject: bool = False
    stall: bool = False  # a send never returns (a destination that hangs)


class ProbeSink:
    def __init__(self, name: str, config: ProbeSinkConfig) -> None:
        self.name = name
        self.config = config

    async def start(self) -> None:
        if self.config.start == "refused":
            raise StartError("topic", "topic 'x' does not exist")

    async def healthcheck(self) -> None:
        if not self.config.healthy:
            raise ConnectionError("channel down")

    async def send(self, events: list[dict[str, Any]]) -> Outcome:
        if self.config.stall:
            await asyncio.Event().wait()
        if self.config.reject:
            return Outcome.reject_all(len(events), "mapping conflict on field x")
        return Outcome.delivered()

    async def aclose(self) -> None:
        return None


@register("sink", "test_probe", ProbeSinkConfig)
def _sink(name: str, config: ProbeSinkConfig, ctx: Any) -> ProbeSink:
    return ProbeSink(name, config)


def config_for(tmp_path: Path, sinks: str, wait: bool = True) -> Path:
    port = free_port()
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"data_dir: {tmp_path}/data\n"
        f"api: {{address: '127.0.0.1:{port}'}}\n"
        "sources:\n"
        f"  in: {{type: test_one_batch, wait: {str(wait).lower()}}}\n"
        f"sinks:\n{sinks}"
    )
    return path


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, orjson.loads(await resp.read())


async def with_daemon(path: Path, check: Any) -> Any:
    config = load_config(path)
    daemon = Daemon(config)
    task = asyncio.create_task(daemon.run())
    base = f"http://{config.root.api.address}"
    try:
        for _ in range(200):
            await asyncio.sleep(0.05)
            try:
                status, _ = await get_json(f"{base}/health")
            except aiohttp.ClientError:
                continue
            if status == 200:
                break
        return await check(base)
    finally:
        daemon.request_stop()
        await asyncio.wait_for(task, 30)


class TestReadiness:
    @pytest.mark.allow_unsettled
    async def test_a_start_error_keeps_the_daemon_unready_with_the_reason(self, tmp_path: Path) -> None:
        path = config_for(tmp_path, "  k: {type: test_probe, inputs: [in], start: refused}\n")

        async def check(base: str) -> dict[str, Any]:
            for _ in range(100):
                status, body = await get_json(f"{base}/ready")
                if status == 503 and "k" in body.get("reasons", {}):
                    return body
                await asyncio.sleep(0.1)
            raise AssertionError("never unready for k")

        body = await with_daemon(path, check)
        assert body["status"] == "not ready"

    async def test_a_noncritical_sink_down_is_degraded_not_unready(self, tmp_path: Path) -> None:
        path = config_for(
            tmp_path,
            "  store: {type: test_probe, inputs: [in]}\n"
            "  alerts: {type: test_probe, inputs: [in], healthy: false, critical: false}\n",
        )

        async def check(base: str) -> tuple[int, dict[str, Any]]:
            return await get_json(f"{base}/ready")

        status, body = await with_daemon(path, check)
        assert (status, body) == (200, {"status": "degraded", "degraded": {"alerts": "ConnectionError: channel down"}})

    async def test_a_critical_sink_down_is_unready_and_lists_degraded_too(self, tmp_path: Path) -> None:
        path = config_for(
            tmp_path,
            "  store: {type: test_probe, inputs: [in], healthy: false}\n"
            "  alerts: {type: test_probe, inputs: [in], healthy: false, critical: false}\n",
        )

        async def check(base: str) -> tuple[int, dict[str, Any]]:
            return await get_json(f"{base}/ready")

        status, body = await with_daemon(path, check)
        assert status == 503
        assert body == {
            "status": "not ready",
            "reasons": {"store": "ConnectionError: channel down"},
            "degraded": {"alerts": "ConnectionError: channel down"},
        }

    def test_the_webhook_sink_is_not_critical_by_default(self) -> None:
        from sinks.webhook.config import WebhookSinkConfig

        assert WebhookSinkConfig.model_fields["critical"].default is False
        assert SinkConfig.model_fields["critical"].default is True


class TestStartErrorWithOnce:
    @pytest.mark.allow_unsettled
    async def test_once_run_raises_it_and_the_cli_prints_one_line(self, tmp_path: Path) -> None:
        path = config_for(tmp_path, "  k: {type: test_probe, inputs: [in], start: refused}\n", wait=False)
        daemon = Daemon(load_config(path), once=True)
        with pytest.raises(BaseException) as info:
            await daemon.run()
        assert _config_problems(info.value, str(path)) == [f"{path}: sinks.k.topic: topic 'x' does not exist"]

    def test_a_crash_beside_a_config_error_keeps_its_traceback(self) -> None:
        group = BaseExceptionGroup("x", [ConfigError(["a: b"]), RuntimeError("boom")])
        assert _config_problems(group, "f.yaml") == []
        nested = BaseExceptionGroup("x", [BaseExceptionGroup("y", [StartError("k", "m")]), ConfigError(["a: b"])])
        assert sorted(_config_problems(nested, "f.yaml")) == ["a: b", "f.yaml: k: m"]


class TestMetricsAndLogs:
    async def test_process_metrics_are_exposed(self, tmp_path: Path) -> None:
        path = config_for(tmp_path, "  k: {type: test_probe, inputs: [in]}\n")

        async def check(base: str) -> str:
            async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
                return await resp.text()

        text = await with_daemon(path, check)
        for metric in (
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ):
            assert f"\n{metric} " in text, metric

    async def test_dead_letters_log_one_line_and_the_final_line_says_stopped(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        path = config_for(tmp_path, "  k: {type: test_probe, inputs: [in], reject: true}\n", wait=False)
        daemon = Daemon(load_config(path), once=True)
        await daemon.run()
        dead = [r for r in caplog.records if r.getMessage() == "events dead-lettered"]
        assert len(dead) == 1
        record: Any = dead[0]
        assert (record.component, record.events, record.reason) == ("k", 2, "mapping conflict on field x")
        assert record.file.startswith(f"{tmp_path}/data/dead_letter/dead-letter-")
        stopped: Any = [r for r in caplog.records if r.getMessage() == "stopped"][-1]
        assert (stopped.events_read, stopped.events_delivered, stopped.dead_lettered) == (2, 0, 2)

    def test_the_dead_letter_log_is_throttled_and_the_rest_logged_at_close(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        dlq = DeadLetterQueue(tmp_path / "dlq")
        for _ in range(5):
            dlq.write("es", [{"m": 1}, {"m": 2}], "too large")
        lines: list[Any] = [r for r in caplog.records if r.getMessage() == "events dead-lettered"]
        assert [r.events for r in lines] == [2]
        dlq.log_pending()
        lines = [r for r in caplog.records if r.getMessage() == "events dead-lettered"]
        assert [r.events for r in lines] == [2, 8]
        assert len(dlq.read_all()) == 10


class TestGlobalFlags:
    @pytest.mark.parametrize(
        "argv",
        [
            ["--log-level", "debug", "--log-format", "text", "validate", "--config", "x"],
            ["validate", "--config", "x", "--log-level", "debug", "--log-format", "text"],
            ["--log-level", "error", "validate", "--log-level", "debug", "--config", "x", "--log-format", "text"],
        ],
    )
    def test_before_or_after_the_subcommand(self, argv: list[str]) -> None:
        args = _parser().parse_args(argv)
        assert (args.command, args.log_level, args.log_format) == ("validate", "debug", "text")

    def test_defaults(self) -> None:
        args = _parser().parse_args(["version"])
        assert (args.log_level, args.log_format) == ("info", "json")


class TestStatusLag:
    @pytest.mark.allow_unsettled
    async def test_status_shows_file_lag_and_the_oldest_unsettled_batch(self, tmp_path: Path) -> None:
        logs = tmp_path / "logs"
        logs.mkdir()
        (logs / "a.log").write_bytes(b"line\n" * 100)
        port = free_port()
        path = tmp_path / "pipeline.yaml"
        path.write_text(
            f"data_dir: {tmp_path}/data\n"
            f"api: {{address: '127.0.0.1:{port}'}}\n"
            "shutdown_timeout: 1\n"
            "sources:\n"
            f"  files: {{type: file, include: ['{logs}/*.log'], start_at: beginning}}\n"
            "sinks:\n"
            "  stuck: {type: test_probe, inputs: [files], stall: true, batch: {timeout: 0.05}}\n"
        )

        async def check(base: str) -> dict[str, Any]:
            for _ in range(100):
                _, body = await get_json(f"{base}/status")
                by_name = {c["name"]: c for c in body["components"]}
                if (by_name["stuck"]["oldest_unsettled_s"] or 0) > 0.3:
                    return by_name
                await asyncio.sleep(0.1)
            raise AssertionError("no unsettled age")

        by_name = await with_daemon(path, check)
        assert by_name["files"]["lag"] == {"unit": "bytes", "total": 500, "streams": {f"{logs}/a.log": 500}}
        assert by_name["stuck"]["in_flight"] == 1 and by_name["stuck"]["started"] is True
