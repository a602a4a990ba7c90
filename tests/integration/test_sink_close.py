"""Every sink closes every client it opened, on every path: a start that fails (a closed port, a
missing topic), a start cancelled half-way (shutdown), calls after `aclose`, and `aclose` twice.

A leaked aiohttp session or Kafka client only shows when the garbage collector finalises it:
a ResourceWarning (which the suite's filterwarnings ignores, so they are recorded here
explicitly) and an "Unclosed ..." call of the event loop's exception handler.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import TransientError
from pipeline.metrics import Metrics

CLOSED = "127.0.0.1:1"  # nothing listens on port 1

SinkFactory = Callable[[Path, dict[str, str]], Any]


def kafka(bootstrap: str, **extra: Any) -> SinkFactory:
    def make(tmp_path: Path, env: dict[str, str]) -> Any:
        from sinks.kafka import KafkaSink, KafkaSinkConfig

        raw = {"type": "kafka", "inputs": ["x"], "bootstrap_servers": env.get(bootstrap, bootstrap),
               "request_timeout": "3s", **extra}
        return KafkaSink("k", KafkaSinkConfig.model_validate(raw))

    return make


def elasticsearch(host: str) -> SinkFactory:
    def make(tmp_path: Path, env: dict[str, str]) -> Any:
        from sinks.elasticsearch import ElasticsearchSink, ElasticsearchSinkConfig

        raw = {"type": "elasticsearch", "inputs": ["x"], "hosts": [env.get(host, host)], "request_timeout": "3s",
               "template": {"name": f"{env['prefix']}-t", "index_patterns": [f"{env['prefix']}-*"]}}
        metrics = Metrics()
        return ElasticsearchSink("e", ElasticsearchSinkConfig.model_validate(raw), metrics=metrics,
                                 stats=metrics.component("e", "sink", "elasticsearch"))

    return make


def webhook(url: str) -> SinkFactory:
    def make(tmp_path: Path, env: dict[str, str]) -> Any:
        from sinks.webhook import WebhookSink, WebhookSinkConfig

        raw = {"type": "webhook", "inputs": ["x"],
               "rules": [{"name": "r", "when": {"field": "level", "equals": "ERROR"}}],
               "targets": [{"type": "alertmanager", "url": env.get(url, url), "timeout": "2s"},
                           {"type": "http", "url": f"{env.get(url, url)}/hook", "timeout": "2s"}],
               "flush_timeout": "1s"}
        return WebhookSink("w", WebhookSinkConfig.model_validate(raw), data_dir=tmp_path)

    return make


def clickhouse(dsn: str) -> SinkFactory:
    def make(tmp_path: Path, env: dict[str, str]) -> Any:
        from sinks.clickhouse import ClickHouseSink, ClickHouseSinkConfig

        raw = {"type": "clickhouse", "inputs": ["x"], "dsn": dsn.replace("TMP", str(tmp_path)),
               "connect_timeout": "2s"}
        return ClickHouseSink("c", ClickHouseSinkConfig.model_validate(raw), data_dir=tmp_path, metrics=Metrics())

    return make


SINKS = [
    pytest.param(kafka(CLOSED), id="kafka-closed-port"),
    pytest.param(kafka("KAFKA", topic="{log_type}-missing-t"), id="kafka-topics-missing"),
    pytest.param(kafka("KAFKA", topic="TOPIC"), id="kafka-up"),
    pytest.param(elasticsearch(f"http://{CLOSED}"), id="elasticsearch-closed-port"),
    pytest.param(elasticsearch("ES"), id="elasticsearch-up"),
    pytest.param(webhook(f"http://{CLOSED}"), id="webhook-closed-port"),
    pytest.param(webhook("ALERTMANAGER"), id="webhook-up"),
    pytest.param(clickhouse(f"http://default@{CLOSED}"), id="clickhouse-closed-port"),
    pytest.param(clickhouse("chdb://TMP/chdb"), id="clickhouse-embedded"),
]


class Leaks:
    """ResourceWarnings and 'Unclosed ...' loop errors raised while the test ran, gc included."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def check(self) -> list[str]:
        for _ in range(3):
            gc.collect()
        return self.found


@pytest.fixture
async def leaks() -> Any:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    found = Leaks()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        found.found.append(f"loop: {context.get('message')}")

    loop.set_exception_handler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
        gc.collect()
    found.found.extend(f"warning: {w.message}" for w in caught if issubclass(w.category, ResourceWarning))
    loop.set_exception_handler(previous)
    assert found.found == []


@pytest.fixture
def env(kafka_bootstrap: str, es_url: str, alertmanager_url: str, kafka_topic: Any,
        unique_name: str) -> Iterator[dict[str, str]]:
    yield {"KAFKA": kafka_bootstrap, "ES": es_url, "ALERTMANAGER": alertmanager_url, "prefix": unique_name,
           "TOPIC": kafka_topic()}


async def attempt(coro: Any) -> None:
    try:
        await asyncio.wait_for(coro, 30)
    except (TransientError, OSError, ConnectionError) as exc:
        assert str(exc)
    except Exception as exc:  # a client error the sink let through: still must not leak
        assert type(exc).__name__


@pytest.mark.parametrize("factory", SINKS)
class TestEveryClientIsClosed:
    async def test_start_then_aclose_then_calls_after_close(
            self, factory: SinkFactory, tmp_path: Path, env: dict[str, str], leaks: Leaks) -> None:
        sink = factory(tmp_path, env)
        await attempt(sink.start())
        await attempt(sink.healthcheck())
        await sink.aclose()
        # A readiness probe after shutdown must not open a new client.
        with pytest.raises(TransientError):
            await sink.healthcheck()
        await sink.aclose()  # twice: nothing left to close, no error
        del sink
        assert leaks.check() == []

    async def test_aclose_without_start(
            self, factory: SinkFactory, tmp_path: Path, env: dict[str, str], leaks: Leaks) -> None:
        sink = factory(tmp_path, env)
        await sink.aclose()
        del sink
        assert leaks.check() == []

    @pytest.mark.parametrize("delay", [0.0, 0.05, 0.3])
    async def test_start_cancelled_half_way_then_aclose(
            self, factory: SinkFactory, tmp_path: Path, env: dict[str, str], leaks: Leaks, delay: float) -> None:
        # Shutdown while the driver is still starting the sink: its task is cancelled, then aclose runs.
        sink = factory(tmp_path, env)
        task = asyncio.ensure_future(sink.start())
        await asyncio.sleep(delay)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.aclose()
        del sink, task
        assert leaks.check() == []
