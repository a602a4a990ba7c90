"""Run one sink under the real SinkDriver in-process: put batches, watch receipts settle.

Used by the sinks' unit tests (a sink on a scripted client) and by the sink compliance
suite (tests/integration/test_sink_compliance.py: a sink built from its config, as the
daemon builds it, against its real destination).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Self

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pipeline import registry
from pipeline.acks import Receipt, Status
from pipeline.config import PipelineConfig, RootConfig
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.driver import SinkDriver
from pipeline.event import Batch, Event
from pipeline.metrics import ComponentStats, Metrics
from pipeline.queues import BatchQueue
from pipeline.sink import Outcome


class RecordingSink:
    """Stands between the driver and the sink: records what each send carried, and can hold sends.

    Only observes (every call goes to the sink unchanged). `hold()` makes the next sends wait
    at a gate before reaching the sink, so a test can act while a send is surely in flight."""

    def __init__(self, sink: Any) -> None:
        self.inner = sink
        self.name: str = sink.name
        self.sends: list[list[Event]] = []
        self.in_send = 0  # sends entered and not returned
        self.entered = asyncio.Event()  # set at every send's entry
        self._gate: asyncio.Event | None = None

    def hold(self) -> None:
        self._gate = asyncio.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()
        self._gate = None

    async def start(self) -> None:
        await self.inner.start()

    async def healthcheck(self) -> None:
        await self.inner.healthcheck()

    async def send(self, events: list[Event]) -> Outcome:
        self.sends.append(list(events))
        self.in_send += 1
        self.entered.set()
        try:
            gate = self._gate
            if gate is not None:
                await gate.wait()
            outcome: Outcome = await self.inner.send(events)
            return outcome
        finally:
            self.in_send -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


class DriverHarness:
    """`async with` starts the sink and its driver; `finish()` ends the stream and drains."""

    def __init__(self, tmp_path: Path, sink: Any, metrics: Metrics, stats: ComponentStats) -> None:
        self.sink = sink
        self.config = sink.config
        self.metrics = metrics
        self.stats = stats
        self.dlq = DeadLetterQueue(tmp_path / "dlq")
        self.queue = BatchQueue(sink.name, 8)
        self.recorder = RecordingSink(sink)
        self.driver = SinkDriver(self.recorder, self.config, self.queue, stats, metrics, self.dlq)
        self.released: list[Status] = []
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, tmp_path: Path, name: str, raw: dict[str, Any], data_dir: Path | None = None) -> Self:
        """Build the sink as the daemon does: its registered model validates `raw`, its factory builds it."""
        spec = registry.lookup("sink", raw["type"])
        assert spec is not None, f"no sink type {raw['type']!r}"
        model = spec.model.model_validate(raw)
        metrics = Metrics()
        data_dir = data_dir if data_dir is not None else tmp_path / "data"
        config = PipelineConfig(path="<harness>", root=RootConfig(data_dir=data_dir))
        dlq = DeadLetterQueue(tmp_path / "dlq")
        ctx = BuildContext(config=config, data_dir=data_dir, host="harness", dlq=dlq, metrics=metrics)
        sink = spec.factory(name, model, ctx)
        return cls(tmp_path, sink, metrics, metrics.component(name, "sink", raw["type"]))

    async def __aenter__(self) -> Self:
        await self.sink.start()
        self.task = asyncio.create_task(self.driver.run())
        return self

    async def put(self, events: list[dict[str, Any]]) -> Receipt:
        receipt = Receipt(self.released.append)
        await self.queue.put(Batch(events, receipt))
        return receipt

    async def finish(self, within: float = 10) -> None:
        await self.queue.close()
        assert self.task is not None
        await asyncio.wait_for(self.task, within)
        await self.sink.aclose()

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.sink.aclose()

    @property
    def sends(self) -> list[list[Event]]:
        """The events of every send the driver made, in call order (retries included)."""
        return self.recorder.sends

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples `name` with these labels, read from the Prometheus exposition (0 when none)."""
        text = generate_latest(self.metrics.registry).decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )
