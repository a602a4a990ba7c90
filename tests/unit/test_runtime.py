"""The runtime end to end in-process: fan-out settlement, backpressure, DLQ, --once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from pipeline.acks import Receipt, Status
from pipeline.config import SinkConfig, SourceConfig, load_config
from pipeline.daemon import Daemon
from pipeline.errors import TransientError
from pipeline.event import Batch
from pipeline.registry import register
from pipeline.sink import Outcome
from pipeline.topology import Topology

# -- test components -------------------------------------------------------

RELEASES: list[tuple[int, Status]] = []
READ_BATCHES: list[int] = []
SINK_LOG: dict[str, list[list[dict[str, Any]]]] = {}


class CountingSourceConfig(SourceConfig):
    type: Literal["test_counting"]
    batches: int = 5
    batch_size: int = 10


class CountingSource:
    can_acknowledge = True

    def __init__(self, name: str, config: CountingSourceConfig) -> None:
        self.name = name
        self.config = config

    async def run(self, ctx: Any) -> None:
        for b in range(self.config.batches):
            if ctx.shutdown.is_set():
                return
            READ_BATCHES.append(b)
            events = [{"message": f"{b}-{i}", "n": b * self.config.batch_size + i}
                      for i in range(self.config.batch_size)]
            await ctx.emit(Batch(events, Receipt(lambda status, b=b: RELEASES.append((b, status)))))

    async def aclose(self) -> None:
        return None


@register("source", "test_counting", CountingSourceConfig)
def _build_source(name: str, config: CountingSourceConfig, ctx: Any) -> CountingSource:
    return CountingSource(name, config)


class ScriptedSinkConfig(SinkConfig):
    type: Literal["test_scripted"]
    behaviour: Literal["ok", "stall", "reject_odd", "fail_twice", "permanent", "retry_first_item_once"] = "ok"
    delay: float = Field(default=0.0)


class ScriptedSink:
    def __init__(self, name: str, config: ScriptedSinkConfig) -> None:
        self.name = name
        self.config = config
        self.calls = 0
        SINK_LOG[name] = []

    async def start(self) -> None:
        return None

    async def healthcheck(self) -> None:
        return None

    async def send(self, events: list[dict[str, Any]]) -> Outcome:
        self.calls += 1
        b = self.config.behaviour
        if self.config.delay:
            await asyncio.sleep(self.config.delay)
        if b == "stall":
            await asyncio.Event().wait()
        if b == "fail_twice" and self.calls <= 2:
            raise TransientError("server unavailable")
        if b == "permanent":
            return Outcome.reject_all(len(events), "record too large")
        SINK_LOG[self.name].append(list(events))
        if b == "reject_odd":
            return Outcome(rejected=[(i, "odd") for i, e in enumerate(events) if e["n"] % 2])
        if b == "retry_first_item_once" and self.calls == 1:
            return Outcome(retry=[0])
        return Outcome.delivered()

    async def aclose(self) -> None:
        return None


@register("sink", "test_scripted", ScriptedSinkConfig)
def _build_sink(name: str, config: ScriptedSinkConfig, ctx: Any) -> ScriptedSink:
    return ScriptedSink(name, config)


@pytest.fixture(autouse=True)
def _reset() -> None:
    RELEASES.clear()
    READ_BATCHES.clear()
    SINK_LOG.clear()


def _config(write_config: Any, tmp_path: Path, sinks: str, source: str = "{type: test_counting}",
            extra: str = "") -> Any:
    return load_config(write_config(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
{extra}
sources:
  src: {source}
sinks:
{sinks}
"""))


# -- tests -----------------------------------------------------------------


class TestFanOut:
    async def test_batch_to_three_sinks_released_after_all(self, write_config: Any, tmp_path: Path) -> None:
        cfg = _config(write_config, tmp_path, """
  a: {type: test_scripted, inputs: [src], batch: {max_events: 10}}
  b: {type: test_scripted, inputs: [src], batch: {max_events: 10}, delay: 0.01}
  c: {type: test_scripted, inputs: [src], batch: {max_events: 10}, behaviour: fail_twice,
      retry: {initial_backoff: 0.001}}
""")
        await Daemon(cfg, once=True).run()
        assert sorted(b for b, _ in RELEASES) == [0, 1, 2, 3, 4]
        for name in "abc":
            assert sum(len(x) for x in SINK_LOG[name]) == 50

    @pytest.mark.allow_unsettled
    async def test_a_stalled_sink_holds_every_receipt(self, write_config: Any, tmp_path: Path) -> None:
        cfg = _config(write_config, tmp_path, """
  ok: {type: test_scripted, inputs: [src], batch: {max_events: 10}}
  stuck: {type: test_scripted, inputs: [src], behaviour: stall, batch: {max_events: 10}}
""", extra="shutdown_timeout: 0.3")
        daemon = Daemon(cfg, once=True)
        task = asyncio.create_task(daemon.run())
        await asyncio.sleep(0.3)
        assert RELEASES == []
        daemon.request_stop()
        await task
        assert RELEASES == []  # nothing released: a restart would replay everything


class TestBackpressure:
    @pytest.mark.allow_unsettled
    async def test_stalled_sink_stops_the_source_at_the_queue_bound(self, write_config: Any, tmp_path: Path) -> None:
        cfg = _config(write_config, tmp_path, """
  stuck: {type: test_scripted, inputs: [src], behaviour: stall, batch: {max_events: 10}}
""", source="{type: test_counting, batches: 1000}", extra="queue_capacity: 4\nshutdown_timeout: 0.2")
        daemon = Daemon(cfg, once=True)
        task = asyncio.create_task(daemon.run())
        await asyncio.sleep(0.5)
        read = len(READ_BATCHES)
        # 1 in the stalled send + 4 queued + 1 blocked in put: bounded, far below 1000.
        assert read <= 8, read
        await asyncio.sleep(0.2)
        assert len(READ_BATCHES) == read  # and it stays there
        daemon.request_stop()
        await task


class TestDeadLetter:
    async def test_rejected_events_go_to_dlq_and_settle(self, write_config: Any, tmp_path: Path) -> None:
        cfg = _config(write_config, tmp_path, """
  picky: {type: test_scripted, inputs: [src], behaviour: reject_odd, batch: {max_events: 10}}
""")
        daemon = Daemon(cfg, once=True)
        await daemon.run()
        assert sorted(b for b, _ in RELEASES) == [0, 1, 2, 3, 4]
        assert all(status is Status.REJECTED for _, status in RELEASES)
        records = daemon.topology.dlq.read_all()
        assert sorted(r["event"]["n"] for r in records) == list(range(1, 50, 2))
        assert {r["component"] for r in records} == {"picky"} and {r["reason"] for r in records} == {"odd"}
        assert daemon.metrics.stats["picky"].dead_lettered == 25
        assert daemon.metrics.stats["picky"].events_out == 25

    async def test_a_failing_dead_letter_write_is_retried(self, write_config: Any, tmp_path: Path) -> None:
        cfg = _config(write_config, tmp_path, """
  picky: {type: test_scripted, inputs: [src], behaviour: reject_odd, batch: {max_events: 10},
          retry: {initial_backoff: 0.001}}
""")
        daemon = Daemon(cfg, once=True)
        dlq = daemon.topology.dlq
        real_write = dlq.write
        failures = [OSError(28, "No space left on device")]

        def write(*args: Any) -> int:
            if failures:
                raise failures.pop()
            return real_write(*args)

        dlq.write = write  # type: ignore[method-assign]
        await daemon.run()  # before: the delivery task died with the OSError and took the sink down
        assert sorted(b for b, _ in RELEASES) == [0, 1, 2, 3, 4]
        assert sorted(r["event"]["n"] for r in dlq.read_all()) == list(range(1, 50, 2))
        assert daemon.metrics.stats["picky"].retries == {"dead_letter": 1}

    async def test_permanent_error_dead_letters_the_send(self, write_config: Any, tmp_path: Path) -> None:
        cfg = _config(write_config, tmp_path, """
  p: {type: test_scripted, inputs: [src], behaviour: permanent}
""")
        daemon = Daemon(cfg, once=True)
        await daemon.run()
        assert len(daemon.topology.dlq.read_all()) == 50

    async def test_only_failed_items_are_retried(self, write_config: Any, tmp_path: Path) -> None:
        cfg = _config(write_config, tmp_path, """
  r: {type: test_scripted, inputs: [src], behaviour: retry_first_item_once, batch: {max_events: 50},
      retry: {initial_backoff: 0.001}}
""")
        daemon = Daemon(cfg, once=True)
        await daemon.run()
        sends = SINK_LOG["r"]
        assert len(sends[0]) == 50 and len(sends[1]) == 1 and sends[1][0] is sends[0][0]
        assert daemon.metrics.stats["r"].retries == {"item": 1}


class TestTopology:
    async def test_queue_depth_gauge_is_exposed(self, write_config: Any, tmp_path: Path) -> None:
        from prometheus_client import generate_latest

        cfg = _config(write_config, tmp_path, "  a: {type: test_scripted, inputs: [src]}\n")
        topo = Topology(cfg, once=True)
        text = generate_latest(topo.metrics.registry).decode()
        assert 'pipeline_queue_depth{component="a"} 0.0' in text
        await topo.run()
        text = generate_latest(topo.metrics.registry).decode()
        assert 'pipeline_events_out_total{component="src",kind="source",type="test_counting"} 50.0' in text
        assert "pipeline_queue_depth{" not in text  # a finished topology drops its gauges


class TestStdinToFile:
    def test_lines_arrive_with_timestamp_message_host(self, tmp_path: Path) -> None:
        cfg = tmp_path / "c.yaml"
        out = tmp_path / "out.jsonl"
        cfg.write_text(f"""
data_dir: {tmp_path}/data
api: {{enabled: false}}
sources:
  in: {{type: stdin}}
sinks:
  f: {{type: file, inputs: [in], path: "{out}"}}
""")
        proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(cfg), "--once"],
                              input=b"a\nb\n", capture_output=True, env={**os.environ, "NODE_NAME": ""})
        assert proc.returncode == 0, proc.stderr.decode()
        events = [json.loads(line) for line in out.read_text().splitlines()]
        assert [e["message"] for e in events] == ["a", "b"]
        for e in events:
            assert e["host"] and e["@timestamp"].endswith("Z") and len(e["@timestamp"]) == 24
        assert b"summary:" in proc.stdout

    def test_invalid_utf8_and_long_line_are_tagged(self, tmp_path: Path) -> None:
        cfg = tmp_path / "c.yaml"
        out = tmp_path / "out.jsonl"
        cfg.write_text(f"""
api: {{enabled: false}}
data_dir: {tmp_path}/data
sources:
  in: {{type: stdin, max_line_bytes: 100}}
sinks:
  f: {{type: file, inputs: [in], path: "{out}"}}
""")
        data = b"ok\n\xff\xfebad\n" + b"x" * 1000 + b"\nlast-no-newline"
        proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(cfg), "--once"],
                              input=data, capture_output=True)
        assert proc.returncode == 0, proc.stderr.decode()
        events = [json.loads(line) for line in out.read_text().splitlines()]
        assert [e["message"][:5] for e in events] == ["ok", "\ufffd\ufffdbad", "xxxxx", "last-"]
        assert events[1]["tags"] == ["_invalid_utf8"]
        assert events[2]["tags"] == ["_truncated"] and len(events[2]["message"]) == 100
        assert events[3]["message"] == "last-no-newline"
