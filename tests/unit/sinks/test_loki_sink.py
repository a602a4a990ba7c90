"""sinks/loki/sink.py: requests, headers and how each answer is classified, under the real driver.

A local aiohttp server (127.0.0.1, random port) answers as each case needs: 429s,
5xx, 400s with Loki's reasons and 413s, which a real server does not give on demand.
Integration tests run the same sink against a real server (VictoriaLogs).
"""

from __future__ import annotations

import base64
import logging
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import generate_latest
from pydantic import ValidationError

from parsers.dates import rfc3339_ms
from pipeline.acks import Status
from pipeline.config import parse_config
from pipeline.errors import ConfigError, StartError, TransientError
from pipeline.logs import JsonFormatter
from pipeline.metrics import Metrics
from sinks.loki import LokiSink, LokiSinkConfig
from tests.unit.sinks.driver_harness import DriverHarness
from tests.unit.sinks.loki_decode import decode_body

SECRET = "s3cr3t-Pa55word"
Reply = tuple[int, str]


class Server:
    """Records pushes; answers each with `answer(request body)` (204 by default)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answer: Callable[[bytes], Reply] = lambda body: (204, "")
        self.probes: list[tuple[str, dict[str, str]]] = []  # GETs: the sink's start probe, healthchecks
        self.probe_status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "GET":
            self.probes.append((request.path, dict(request.headers)))
            return web.Response(status=self.probe_status, text="ok")
        self.requests.append((request.path, dict(request.headers), body))
        status, text = self.answer(body)
        return web.Response(status=status, text=text)

    def pushes(self) -> list[list[dict[str, Any]]]:
        return [decode_body(body) for path, _, body in self.requests if path.endswith("/push")]

    def lines(self) -> list[str]:
        return [e["line"] for push in self.pushes() for s in push for e in s["entries"]]


async def serve(srv: Server, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    return runner


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    runner = await serve(srv)
    yield srv
    await runner.cleanup()


def make_sink(url: str, clock: Callable[[], float] | None = None, **body: Any) -> tuple[LokiSink, Metrics]:
    body = {"type": "loki", "inputs": ["src"], "endpoint": url, "labels": {"job": "test", "svc": "{service|none}"},
            "retry": {"initial_backoff": "10ms", "max_backoff": "50ms"}, "batch": {"timeout": "10ms"}, **body}
    config = LokiSinkConfig.model_validate(body)
    metrics = Metrics()
    stats = metrics.component("loki", "sink", "loki")
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    return LokiSink("loki", config, metrics=metrics, stats=stats, **kwargs), metrics


def events(n: int, start: int = 0, **fields: Any) -> list[dict[str, Any]]:
    return [{"@timestamp": rfc3339_ms(), "message": f"event {i}", "service": "api", **fields}
            for i in range(start, start + n)]


def free_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class TestDelivery:
    async def test_push_request(self, server: Server, tmp_path: Path) -> None:
        sink, _ = make_sink(server.url, line="{message}", tenant_id="team-a", structured_metadata=["trace_id"])
        async with DriverHarness(tmp_path, sink, *_stats(sink)) as h:
            receipt = await h.put(events(3, trace_id="t-1"))
            await h.finish()
        assert receipt.settled and h.released == [Status.DELIVERED]
        [(path, headers, body)] = server.requests
        assert path == "/loki/api/v1/push"
        assert headers["Content-Type"] == "application/x-protobuf"
        assert headers["X-Scope-OrgID"] == "team-a"
        assert "Authorization" not in headers and "Content-Encoding" not in headers
        [[stream]] = server.pushes()
        assert stream["labels"] == '{job="test", svc="api"}'
        assert [e["line"] for e in stream["entries"]] == ["event 0", "event 1", "event 2"]
        assert all(e["metadata"] == [("trace_id", "t-1")] for e in stream["entries"])
        assert h.stats.events_out == 3 and h.stats.bytes_out == len(body)

    async def test_path_override(self, server: Server, tmp_path: Path) -> None:
        sink, _ = make_sink(server.url + "/prefix", path="/insert/loki/api/v1/push")
        async with DriverHarness(tmp_path, sink, *_stats(sink)) as h:
            await h.put(events(1))
            await h.finish()
        assert server.requests[0][0] == "/prefix/insert/loki/api/v1/push"

    async def test_json_with_gzip(self, server: Server, tmp_path: Path) -> None:
        sink, _ = make_sink(server.url, encoding="json", compression="gzip", line="{message}")
        async with DriverHarness(tmp_path, sink, *_stats(sink)) as h:
            await h.put(events(2, trace_id="x"))
            await h.finish()
        [(_, headers, body)] = server.requests
        assert headers["Content-Type"] == "application/json" and headers["Content-Encoding"] == "gzip"
        # aiohttp's server inflates the body itself: what crossed the wire is the smaller Content-Length.
        assert int(headers["Content-Length"]) < len(body)
        [stream] = orjson.loads(body)["streams"]
        assert stream["stream"] == {"job": "test", "svc": "api"}
        assert [v[1] for v in stream["values"]] == ["event 0", "event 1"]

    async def test_basic_auth_from_a_file(self, server: Server, tmp_path: Path) -> None:
        (tmp_path / "pw").write_text(SECRET + "\n")
        sink, _ = make_sink(server.url, username="12345", password_file=str(tmp_path / "pw"))
        await sink.start()
        try:
            await sink.send(events(1))
        finally:
            await sink.aclose()
        assert server.requests[0][1]["Authorization"] == "Basic " + base64.b64encode(
            f"12345:{SECRET}".encode()).decode()

    async def test_bearer_token(self, server: Server) -> None:
        sink, _ = make_sink(server.url, bearer_token=SECRET)
        await sink.start()
        try:
            await sink.send(events(1))
        finally:
            await sink.aclose()
        assert server.requests[0][1]["Authorization"] == f"Bearer {SECRET}"

    def test_unreadable_secret_file_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"bearer_token_file: cannot read .*missing"):
            make_sink("http://127.0.0.1:1", bearer_token_file=str(tmp_path / "missing"))


def _stats(sink: LokiSink) -> tuple[Metrics, Any]:
    metrics = sink._metrics
    return metrics, metrics.stats["loki"]


class TestClassification:
    @pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 401, 403, 404, 408])
    async def test_retried_until_accepted(self, server: Server, tmp_path: Path, status: int) -> None:
        answers = [(status, "try later"), (status, "try later"), (204, "")]
        server.answer = lambda body: answers.pop(0) if answers else (204, "")
        sink, metrics = make_sink(server.url, line="{message}")
        async with DriverHarness(tmp_path, sink, metrics, metrics.stats["loki"]) as h:
            await h.put(events(5))
            await h.finish()
        assert h.released == [Status.DELIVERED]
        assert h.dlq.read_all() == []
        assert len(server.requests) == 3
        assert server.lines()[-5:] == [f"event {i}" for i in range(5)]
        assert h.stats.retries == {"error": 2}
        text = generate_latest(metrics.registry).decode()
        assert f'pipeline_loki_responses_total{{code="{status}",component="loki"}} 2.0' in text
        assert 'pipeline_loki_responses_total{code="204",component="loki"} 1.0' in text

    async def test_unreachable_server_is_retried(self) -> None:
        sink, metrics = make_sink(free_port_url())
        await sink.start()
        try:
            with pytest.raises(TransientError, match=r"push to http://127.0.0.1:.*ClientConnectorError"):
                await sink.send(events(1))
        finally:
            await sink.aclose()
        assert 'code="error"' in generate_latest(metrics.registry).decode()

    @pytest.mark.parametrize("reason", [
        "entry for stream '{job=\"test\"}' has timestamp too old: 2020-01-01T00:00:00Z, oldest acceptable "
        "timestamp is: 2024-04-24T10:00:00Z",
        "Max entry size '262144' bytes exceeded for stream '{job=\"test\"}' while adding an entry with length "
        "'300000' bytes",
    ])
    async def test_400_is_dead_lettered_with_the_servers_reason(self, server: Server, tmp_path: Path,
                                                                reason: str) -> None:
        server.answer = lambda body: (400, reason + "\n")
        sink, metrics = make_sink(server.url)
        async with DriverHarness(tmp_path, sink, metrics, metrics.stats["loki"]) as h:
            await h.put(events(3))
            await h.finish()
        assert h.released == [Status.REJECTED]
        dead = h.dlq.read_all()
        assert len(dead) == 3 and len(server.requests) == 1  # not retried
        assert {d["reason"] for d in dead} == {f"loki: HTTP 400: {reason}"}
        assert h.stats.dead_lettered == 3 and h.stats.events_out == 0

    async def test_413_halves_the_send_until_it_fits(self, server: Server, tmp_path: Path) -> None:
        # The server takes bodies of at most about 3 events; one event is too big on its own.
        def answer(body: bytes) -> Reply:
            lines = [e["line"] for s in decode_body(body) for e in s["entries"]]
            too_big = len(lines) > 3 or any(len(x) > 10_000 for x in lines)
            return (413, "request entity too large") if too_big else (204, "")

        server.answer = answer
        batch = events(10)
        batch[6]["message"] = "y" * 20_000
        sink, metrics = make_sink(server.url, line="{message}")
        async with DriverHarness(tmp_path, sink, metrics, metrics.stats["loki"]) as h:
            await h.put(batch)
            await h.finish()
        accepted = [line for push, (_, _, body) in zip(server.pushes(), server.requests, strict=True)
                    if answer(body)[0] == 204 for s in push for line in [e["line"] for e in s["entries"]]]
        assert sorted(accepted) == sorted(f"event {i}" for i in range(10) if i != 6)
        dead = h.dlq.read_all()
        assert [d["event"]["message"][:3] for d in dead] == ["yyy"]
        assert dead[0]["reason"] == "loki: HTTP 413: request entity too large"
        assert h.released == [Status.REJECTED]

    async def test_after_a_part_landed_only_the_rest_is_retried(self, server: Server) -> None:
        answers = [(413, "too large"), (204, ""), (503, "unavailable")]
        server.answer = lambda body: answers.pop(0)
        sink, _ = make_sink(server.url, line="{message}")
        await sink.start()
        try:
            outcome = await sink.send(events(4))
        finally:
            await sink.aclose()
        assert outcome.retry == [2, 3] and outcome.rejected == []
        assert server.lines()[4:6] == ["event 0", "event 1"]


class TestStreamCapsInTheSink:
    async def test_overflow_warning_is_rate_limited_and_counted(self, server: Server,
                                                                caplog: pytest.LogCaptureFixture) -> None:
        now = [0.0]
        sink, metrics = make_sink(server.url, clock=lambda: now[0], max_streams=2, line="{message}")
        await sink.start()
        try:
            with caplog.at_level(logging.WARNING, logger="sinks.loki"):
                for round_ in range(3):
                    await sink.send([e | {"service": f"u{round_}-{i}"} for i, e in enumerate(events(5))])
                warnings = [r for r in caplog.records if "too many Loki streams" in r.getMessage()]
                assert len(warnings) == 1
                assert warnings[0].over_max_streams == 3  # type: ignore[attr-defined]
                assert warnings[0].example_labels == '{job="test", svc="u0-2"}'  # type: ignore[attr-defined]
                now[0] = 61.0
                await sink.send([e | {"service": "new"} for e in events(2)])
                warnings = [r for r in caplog.records if "too many Loki streams" in r.getMessage()]
                assert len(warnings) == 2
                assert warnings[1].over_max_streams == 10 + 2  # type: ignore[attr-defined]
            text = generate_latest(metrics.registry).decode()
            assert 'pipeline_loki_overflow_events_total{cap="total",component="loki"} 15.0' in text
            assert 'pipeline_loki_streams{component="loki"} 2.0' in text
        finally:
            await sink.aclose()
        assert "pipeline_loki_streams{" not in generate_latest(metrics.registry).decode()  # gone with the sink
        # Nothing was lost: every line reached the server, the overflow ones in the overflow stream.
        assert sorted(server.lines()) == sorted([f"event {i}" for i in range(5)] * 3 + ["event 0", "event 1"])
        overflow = [s for push in server.pushes() for s in push if "pipeline_overflow" in s["labels"]]
        assert sum(len(s["entries"]) for s in overflow) == 15
        assert overflow[0]["entries"][0]["metadata"] == [("svc", "u0-2")]

    async def test_overflow_is_counted_once_across_retries(self, server: Server, tmp_path: Path) -> None:
        answers = [(503, "busy"), (503, "busy")]
        server.answer = lambda body: answers.pop(0) if answers else (204, "")
        sink, metrics = make_sink(server.url, max_streams=1)
        async with DriverHarness(tmp_path, sink, metrics, metrics.stats["loki"]) as h:
            await h.put([e | {"service": s} for e, s in zip(events(3), ["a", "b", "c"], strict=True)])
            await h.finish()
        assert h.released == [Status.DELIVERED] and len(server.requests) == 3
        text = generate_latest(metrics.registry).decode()
        assert 'pipeline_loki_overflow_events_total{cap="total",component="loki"} 2.0' in text

    async def test_dead_letter_overflow_under_the_driver(self, server: Server, tmp_path: Path) -> None:
        sink, metrics = make_sink(server.url, max_streams_per_batch=1, overflow="dead_letter")
        async with DriverHarness(tmp_path, sink, metrics, metrics.stats["loki"]) as h:
            await h.put([e | {"service": s} for e, s in zip(events(3), ["a", "b", "a"], strict=True)])
            await h.finish()
        assert [d["reason"] for d in h.dlq.read_all()] == [
            'loki: over the stream cap (batch): labels {job="test", svc="b"}']
        assert len(server.lines()) == 2 and h.released == [Status.REJECTED]


class TestSecrets:
    async def test_never_logged_nor_shown(self, server: Server, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
        answers = [(401, "no"), (401, "no")]
        server.answer = lambda body: answers.pop(0) if answers else (204, "")
        sink, metrics = make_sink(server.url, username="u", password=SECRET, tenant_id="t")
        with caplog.at_level(logging.DEBUG):
            async with DriverHarness(tmp_path, sink, metrics, metrics.stats["loki"]) as h:
                await h.put(events(1))
                await h.finish()
        assert h.stats.retries == {"error": 2}
        logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)  # extras included
        assert "HTTP 401" in logged and SECRET not in logged
        assert base64.b64encode(f"u:{SECRET}".encode()).decode() not in logged
        assert SECRET not in repr(sink.config) and SECRET not in str(sink.config.model_dump())


class TestHealthcheck:
    async def test_ready(self, server: Server) -> None:
        sink, _ = make_sink(server.url)
        await sink.start()
        try:
            await sink.healthcheck()
            server.probe_status = 503
            with pytest.raises(TransientError, match="/ready: HTTP 503 ok"):
                await sink.healthcheck()
        finally:
            await sink.aclose()
        assert [r[0] for r in server.probes] == ["/ready", "/ready", "/ready"]  # the start probe, two checks

    async def test_unreachable(self) -> None:
        sink, _ = make_sink(free_port_url(), healthcheck_path="/health")
        await sink.start()
        try:
            with pytest.raises(TransientError, match=r"loki unreachable at http://127.0.0.1:.*/health"):
                await sink.healthcheck()
        finally:
            await sink.aclose()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class TestTls:
    @pytest.fixture
    async def tls_server(self, tls_files: tuple[Path, Path]) -> AsyncIterator[Server]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
        srv = Server()
        runner = await serve(srv, context)
        yield srv
        await runner.cleanup()

    async def _push(self, url: str, **body: Any) -> None:
        sink, _ = make_sink(url, **body)
        try:
            await sink.start()
            await sink.send(events(1))
        finally:
            await sink.aclose()

    async def test_with_the_ca_file(self, tls_server: Server, tls_files: tuple[Path, Path]) -> None:
        await self._push(tls_server.url, tls={"ca_file": str(tls_files[0])})
        assert len(tls_server.requests) == 1

    async def test_unknown_ca_is_refused_at_start(self, tls_server: Server) -> None:
        with pytest.raises(StartError, match=r"tls.ca_file: the server's certificate is not trusted"):
            await self._push(tls_server.url)
        assert tls_server.requests == []

    async def test_verify_off(self, tls_server: Server) -> None:
        await self._push(tls_server.url, tls={"verify": False})
        assert len(tls_server.requests) == 1

    async def test_client_certificate(self, tls_files: tuple[Path, Path]) -> None:
        cert, key = tls_files
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: the server wants a certificate it trusts
        context.load_verify_locations(str(cert))
        srv = Server()
        runner = await serve(srv, context)
        try:
            with pytest.raises((StartError, TransientError)):  # refused at start, or by the push
                await self._push(srv.url, tls={"ca_file": str(cert)})
            await self._push(srv.url, tls={"ca_file": str(cert), "cert_file": str(cert), "key_file": str(key)})
        finally:
            await runner.cleanup()
        assert len(srv.requests) == 1

    def test_missing_ca_file_names_the_key(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"tls.ca_file: cannot load"):
            make_sink("https://127.0.0.1:1", tls={"ca_file": str(tmp_path / "nope.pem")})


class TestConfig:
    @pytest.mark.parametrize(("body", "message"), [
        pytest.param({"endpoint": "loki:3100"}, "must be a URL with a scheme", id="no-scheme"),
        pytest.param({"endpoint": "http://u:p@loki:3100"}, "not in the URL", id="credentials-in-url"),
        pytest.param({"path": "loki/api/v1/push"}, "must start with '/'", id="relative-path"),
        pytest.param({"labels": {}}, "at least 1 item", id="no-labels"),
        pytest.param({"labels": {"bad-name": "x"}}, "label name 'bad-name' is invalid", id="label-name"),
        pytest.param({"labels": {"__name__": "x"}}, "is invalid", id="reserved-label-name"),
        pytest.param({"labels": {"pipeline_overflow": "x"}}, "is reserved", id="overflow-label"),
        pytest.param({"labels": {"a": "{unclosed"}}, "label 'a': unbalanced", id="bad-template"),
        pytest.param({"structured_metadata": {"a b": "{x}"}}, "structured metadata name", id="metadata-name"),
        pytest.param({"labels": {"trace_id": "{trace_id}"}, "structured_metadata": ["trace_id"]},
                     "either a label or structured metadata", id="label-and-metadata"),
        pytest.param({"compression": "gzip"}, "gzip applies to encoding: json", id="gzip-protobuf"),
        pytest.param({"username": "u"}, "needs both username and password", id="user-without-password"),
        pytest.param({"password": "p"}, "needs both username and password", id="password-without-user"),
        pytest.param({"username": "u", "password": "p", "bearer_token": "t"}, "choose one", id="two-auths"),
        pytest.param({"bearer_token": "t", "bearer_token_file": "/x"}, "not both", id="token-twice"),
        pytest.param({"tls": {"verify": False}}, "use https://", id="tls-on-http"),
        pytest.param({"headers": {"Authorization": "x"}}, "set by the sink", id="auth-header"),
        pytest.param({"max_streams": 0}, "greater than 0", id="max-streams"),
        pytest.param({"overflow": "drop"}, "'stream' or 'dead_letter'", id="no-silent-drop"),
    ])
    def test_invalid(self, body: dict[str, Any], message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            LokiSinkConfig.model_validate({"type": "loki", "inputs": ["s"], **body})

    def test_defaults(self) -> None:
        config = LokiSinkConfig.model_validate({"type": "loki", "inputs": ["s"], "endpoint": "http://loki:3100/"})
        assert config.push_url == "http://loki:3100/loki/api/v1/push"
        assert (config.encoding, config.compression, config.overflow) == ("protobuf", "none", "stream")
        assert config.labels == {"job": "pipeline", "host": "{host|unknown}", "log_type": "{log_type|unknown}"}

    def test_migration_guide_shows_the_example_config(self) -> None:
        root = Path(__file__).resolve().parents[3]
        example = (root / "config" / "loki-agent.yaml").read_text()
        body = example[example.index("data_dir:"):]  # without the header comments
        assert body in (root / "docs" / "promtail-migration.md").read_text()

    def test_errors_name_file_component_and_key(self) -> None:
        raw = {"sources": {"in": {"type": "stdin"}},
               "sinks": {"lk": {"type": "loki", "inputs": ["in"], "endpoint": "nope", "encoding": "xml"}}}
        with pytest.raises(ConfigError) as err:
            parse_config(raw, "p.yaml", {})
        text = str(err.value)
        assert "p.yaml: sinks.lk.endpoint:" in text and "p.yaml: sinks.lk.encoding:" in text
