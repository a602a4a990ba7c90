"""sinks/elasticsearch: the sink with the real client on a scripted transport, run by the real driver.

The transport (an elastic_transport node class) is the I/O seam: it answers the
way a cluster does under load (429 items, 503s, dropped connections), which a
real single-node test server can't be made to do on demand. Integration tests
run the same sink against the real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from elastic_transport import ApiResponseMeta, BaseAsyncNode, ConnectionError, HttpHeaders
from elastic_transport._node import NodeApiResponse
from elasticsearch import AsyncElasticsearch
from prometheus_client import generate_latest
from pydantic import ValidationError

from pipeline.acks import Status
from pipeline.errors import ConfigError, StartError, TransientError
from pipeline.metrics import Metrics
from sinks.elasticsearch import ElasticsearchSink, ElasticsearchSinkConfig
from sinks.elasticsearch.template import template_body
from tests.unit.sinks.driver_harness import DriverHarness

Request = tuple[str, str, bytes | None]
Reply = tuple[int, Any] | BaseException
Handler = Callable[[str, str, bytes | None], Reply]


class Script:
    """What the scripted cluster answers: a handler per request, and a log of requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.delay = 0.0

    def bulk_bodies(self) -> list[list[dict[str, Any]]]:
        return [[orjson.loads(x) for x in body.split(b"\n") if x]
                for method, target, body in self.requests if target.startswith("/_bulk") and body]


def scripted_client(script: Script) -> Callable[[ElasticsearchSinkConfig, dict[str, Any]], AsyncElasticsearch]:
    class Node(BaseAsyncNode):
        async def perform_request(self, method: str, target: str, body: bytes | None = None,  # type: ignore[override]
                                  headers: Any = None, request_timeout: Any = None) -> NodeApiResponse:
            script.requests.append((method, target, body))
            if script.delay:
                await asyncio.sleep(script.delay)
            reply = script.handler(method, target, body)
            if isinstance(reply, BaseException):
                raise reply
            status, payload = reply
            meta = ApiResponseMeta(status=status, http_version="1.1", duration=0.0, node=self.config,
                                   headers=HttpHeaders({"content-type": "application/json",
                                                        "x-elastic-product": "Elasticsearch"}))
            return NodeApiResponse(meta, orjson.dumps(payload))

        async def close(self) -> None:  # type: ignore[override]
            return None

    def factory(config: ElasticsearchSinkConfig, auth: dict[str, Any]) -> AsyncElasticsearch:
        return AsyncElasticsearch("http://scripted:9200", node_class=Node, max_retries=0)

    return factory


def bulk_actions(body: bytes | None) -> list[dict[str, Any]]:
    assert body is not None
    lines = [orjson.loads(x) for x in body.split(b"\n") if x]
    return lines[0::2]


def ok_items(body: bytes | None, status: int = 201) -> dict[str, Any]:
    return {"errors": False, "items": [{"create": {"status": status}} for _ in bulk_actions(body)]}


def event(i: int, **extra: Any) -> dict[str, Any]:
    return {"@timestamp": "2024-03-01T10:00:00.000Z", "event_id": f"e{i}", "log_type": "access",
            "message": f"m{i}", "status": 200, **extra}


def make_config(**overrides: Any) -> ElasticsearchSinkConfig:
    raw = {"type": "elasticsearch", "inputs": ["src"], "retry": {"initial_backoff": "5ms", "max_backoff": "20ms"},
           "batch": {"max_events": 100, "timeout": "10ms"}, **overrides}
    return ElasticsearchSinkConfig.model_validate(raw)


class Harness(DriverHarness):
    """The sink under the real driver: feed batches, collect what was released and dead-lettered."""

    def __init__(self, tmp_path: Path, script: Script, **overrides: Any) -> None:
        metrics = Metrics()
        stats = metrics.component("es", "sink", "elasticsearch")
        sink = ElasticsearchSink("es", make_config(**overrides), metrics=metrics, stats=stats,
                                 client_factory=scripted_client(script))
        super().__init__(tmp_path, sink, metrics, stats)


    def metric_lines(self, name: str) -> list[str]:
        return [line for line in generate_latest(self.metrics.registry).decode().splitlines()
                if line.startswith(name)]


def cluster(bulk: Callable[[bytes | None, int], Reply]) -> Script:
    """A scripted cluster: template calls succeed, `bulk(body, call_number)` answers bulk requests."""
    calls = {"bulk": 0}

    def handler(method: str, target: str, body: bytes | None) -> Reply:
        if target.startswith("/_index_template"):
            return (404, {}) if method == "GET" else (200, {"acknowledged": True})
        if target.startswith("/_bulk"):
            calls["bulk"] += 1
            return bulk(body, calls["bulk"])
        if target.startswith("/_cluster/health"):
            return 200, {"status": "green"}
        return 404, {"error": {"type": "not_found", "reason": target}}

    return Script(handler)


class TestDelivery:
    async def test_delivers_and_settles(self, tmp_path: Path) -> None:
        script = cluster(lambda body, n: (200, ok_items(body)))
        async with Harness(tmp_path, script) as h:
            await h.put([event(i) for i in range(10)])
            await h.finish()
        assert h.released == [Status.DELIVERED]
        assert h.stats.events_out == 10
        assert [a["create"]["_id"] for a in script.bulk_bodies()[0][0::2]] == [f"e{i}" for i in range(10)]
        assert 'pipeline_elasticsearch_items_total{component="es",result="created"} 10.0' in \
            h.metric_lines("pipeline_elasticsearch_items_total")

    async def test_request_uses_bytes_body_and_response_filter(self, tmp_path: Path) -> None:
        script = cluster(lambda body, n: (200, ok_items(body)))
        async with Harness(tmp_path, script, pipeline="enrich") as h:
            await h.put([event(0)])
            await h.finish()
        method, target, body = next(r for r in script.requests if r[1].startswith("/_bulk"))
        assert method == "PUT" and "filter_path=" in target and "pipeline=enrich" in target
        assert body is not None and body.endswith(b"\n")

    async def test_replayed_events_conflict_and_count_as_delivered(self, tmp_path: Path) -> None:
        def bulk(body: bytes | None, n: int) -> Reply:
            return 200, {"errors": True, "items": [
                {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}}
                for _ in bulk_actions(body)]}

        async with Harness(tmp_path, cluster(bulk)) as h:
            await h.put([event(i) for i in range(5)])
            await h.finish()
        assert h.released == [Status.DELIVERED]
        assert h.dlq.read_all() == []
        assert 'pipeline_elasticsearch_items_total{component="es",result="duplicate"} 5.0' in \
            h.metric_lines("pipeline_elasticsearch_items_total")


class TestPartialFailure:
    async def test_429_items_are_retried_alone_until_accepted(self, tmp_path: Path) -> None:
        # First bulk: items 1 and 3 are rejected with 429; the retry must carry only those two.
        def bulk(body: bytes | None, n: int) -> Reply:
            actions = bulk_actions(body)
            if n == 1:
                items = [{"create": {"status": 429, "error": {"type": "es_rejected_execution_exception",
                                                              "reason": "queue full"}}}
                         if i in (1, 3) else {"create": {"status": 201}} for i in range(len(actions))]
                return 200, {"errors": True, "items": items}
            return 200, ok_items(body)

        script = cluster(bulk)
        async with Harness(tmp_path, script) as h:
            receipt = await h.put([event(i) for i in range(5)])
            await h.finish()
        assert receipt.settled and h.released == [Status.DELIVERED]
        bodies = script.bulk_bodies()
        assert len(bodies) == 2
        assert [a["create"]["_id"] for a in bodies[1][0::2]] == ["e1", "e3"]
        assert h.stats.retries == {"es_rejected_execution_exception": 2}
        assert h.stats.events_out == 5

    async def test_mapping_errors_go_to_the_dlq_and_the_rest_lands(self, tmp_path: Path) -> None:
        def bulk(body: bytes | None, n: int) -> Reply:
            items = []
            for line_no, doc in enumerate([orjson.loads(x) for x in (body or b"").split(b"\n") if x][1::2]):
                if doc["status"] == "abc":
                    items.append({"create": {"status": 400, "error": {
                        "type": "document_parsing_exception", "reason": f"failed to parse field [status] #{line_no}"}}})
                else:
                    items.append({"create": {"status": 201}})
            return 200, {"errors": True, "items": items}

        script = cluster(bulk)
        async with Harness(tmp_path, script) as h:
            await h.put([event(i, status="abc" if i == 2 else 200) for i in range(4)])
            await h.finish()
        assert h.released == [Status.REJECTED]  # settled; the DLQ holds the bad one
        dead = h.dlq.read_all()
        assert [d["event"]["event_id"] for d in dead] == ["e2"]
        assert dead[0]["reason"].startswith("document_parsing_exception: failed to parse field [status]")
        assert dead[0]["component"] == "es"
        assert len(script.bulk_bodies()) == 1  # nothing retried
        assert h.stats.events_out == 3 and h.stats.dead_lettered == 1


class TestOutage:
    @pytest.mark.parametrize("failure", [
        pytest.param(lambda: ConnectionError("refused"), id="connection-refused"),
        pytest.param(lambda: (503, {"error": {"type": "unavailable", "reason": "no master"}, "status": 503}),
                     id="http-503"),
        pytest.param(lambda: (429, {"error": {"type": "es_rejected_execution_exception", "reason": "busy"},
                                    "status": 429}), id="http-429"),
    ])
    async def test_whole_request_failures_are_retried_and_nothing_settles_meanwhile(
            self, tmp_path: Path, failure: Callable[[], Reply]) -> None:
        gate = asyncio.Event()
        third_attempt = asyncio.Event()

        def bulk(body: bytes | None, n: int) -> Reply:
            if n >= 3:
                third_attempt.set()
            return (200, ok_items(body)) if gate.is_set() else failure()

        async with Harness(tmp_path, cluster(bulk)) as h:
            receipt = await h.put([event(i) for i in range(3)])
            await asyncio.wait_for(third_attempt.wait(), 10)
            assert not receipt.settled  # the server is "down": held, not settled, not dead-lettered
            assert h.driver.last_error is not None
            gate.set()
            await h.finish()
        assert h.released == [Status.DELIVERED]
        assert h.dlq.read_all() == []
        assert h.stats.retries.get("error", 0) >= 2

    async def test_a_later_request_failing_retries_only_its_events(self, tmp_path: Path) -> None:
        # bulk_max_bytes forces one request per event; the second request fails once.
        def bulk(body: bytes | None, n: int) -> Reply:
            return ConnectionError("reset") if n == 2 else (200, ok_items(body))

        script = cluster(bulk)
        async with Harness(tmp_path, script, bulk_max_bytes=200) as h:
            await h.put([event(i) for i in range(3)])
            await h.finish()
        assert h.released == [Status.DELIVERED]
        ids = [[a["create"]["_id"] for a in body[0::2]] for body in script.bulk_bodies()]
        assert ids == [["e0"], ["e1"], ["e1"], ["e2"]]

    async def test_mismatched_response_is_retried(self, tmp_path: Path) -> None:
        def bulk(body: bytes | None, n: int) -> Reply:
            return (200, {"errors": False, "items": []}) if n == 1 else (200, ok_items(body))

        async with Harness(tmp_path, cluster(bulk)) as h:
            await h.put([event(0), event(1)])
            await h.finish()
        assert h.released == [Status.DELIVERED]
        assert h.stats.retries == {"error": 1}

    async def test_413_halves_the_request(self, tmp_path: Path) -> None:
        def bulk(body: bytes | None, n: int) -> Reply:
            if len(bulk_actions(body)) > 1:
                return 413, {"error": {"type": "content_too_long", "reason": "too big"}, "status": 413}
            return 200, ok_items(body)

        script = cluster(bulk)
        async with Harness(tmp_path, script) as h:
            await h.put([event(i) for i in range(3)])
            await h.finish()
        assert h.released == [Status.DELIVERED]
        singles = [[a["create"]["_id"] for a in b[0::2]] for b in script.bulk_bodies() if len(b) == 2]
        assert sorted(x[0] for x in singles) == ["e0", "e1", "e2"]


class TestLifecycle:
    async def test_aclose_drains_in_flight_sends(self, tmp_path: Path) -> None:
        script = cluster(lambda body, n: (200, ok_items(body)))
        script.delay = 0.05  # every request is slow: sends are in flight when the input ends
        async with Harness(tmp_path, script, max_in_flight=2, batch={"max_events": 3, "timeout": "1ms"}) as h:
            receipts = [await h.put([event(i * 10 + j) for j in range(3)]) for i in range(4)]
            assert not all(r.settled for r in receipts)
            await h.finish()  # end of input, driver drains, then aclose
        assert all(r.settled for r in receipts)
        assert h.released == [Status.DELIVERED] * 4
        assert len(script.bulk_bodies()) == 4

    async def test_template_installed_once_then_skipped_when_identical(self, tmp_path: Path) -> None:
        installed: dict[str, Any] = {}

        def handler(method: str, target: str, body: bytes | None) -> Reply:
            if target.startswith("/_index_template/pipeline-logs"):
                if method == "GET":
                    if not installed:
                        return 404, {"error": {"type": "resource_not_found_exception", "reason": "missing"}}
                    return 200, {"index_templates": [{"name": "pipeline-logs", "index_template": installed}]}
                assert body is not None
                installed.update(orjson.loads(body))
                return 200, {"acknowledged": True}
            return 404, {}

        script = Script(handler)
        config = make_config()
        sink = ElasticsearchSink("es", config, metrics=Metrics(), stats=Metrics().component("es", "sink", "x"),
                                 client_factory=scripted_client(script))
        await sink.start()
        await sink.start()
        await sink.aclose()
        puts = [r for r in script.requests if r[0] == "PUT"]
        assert len(puts) == 1
        assert installed["index_patterns"] == ["logs-*"] and installed["priority"] == 200
        props = installed["template"]["mappings"]["properties"]
        assert props["client_ip"]["type"] == "ip" and props["status"]["type"] == "short"
        assert props["geoip"]["properties"]["location"]["type"] == "geo_point"
        assert installed["_meta"]["hash"] == template_body(config)["_meta"]["hash"]

    @pytest.mark.parametrize("has_match_only_text", [True, False])
    async def test_free_text_fields_are_match_only_text_or_text_when_the_cluster_lacks_it(
            self, tmp_path: Path, has_match_only_text: bool) -> None:
        installed: list[dict[str, Any]] = []
        missing = "The mapper type [match_only_text] declared on field [message] does not exist."

        def handler(method: str, target: str, body: bytes | None) -> Reply:
            if method == "GET":
                return 404, {}
            assert body is not None
            if b"match_only_text" in body and not has_match_only_text:
                return 400, {"error": {"type": "illegal_argument_exception", "reason": "template after composition "
                                       "is invalid", "caused_by": {"type": "mapper_parsing_exception",
                                                                   "reason": missing}}, "status": 400}
            installed.append(orjson.loads(body))
            return 200, {"acknowledged": True}

        config = make_config()
        sink = ElasticsearchSink("es", config, metrics=Metrics(), stats=Metrics().component("es", "sink", "x"),
                                 client_factory=scripted_client(Script(handler)))
        await sink.start()
        await sink.aclose()
        props = installed[0]["template"]["mappings"]["properties"]
        expected = {"type": "match_only_text"} if has_match_only_text else {"type": "text", "norms": False}
        assert props["message"] == expected
        assert props["error"]["properties"]["stack_trace"] == expected
        assert props["error"]["properties"]["message"] == expected
        assert props["error"]["properties"]["type"]["type"] == "keyword"
        assert installed[0]["_meta"]["hash"] == sink.template_body["_meta"]["hash"]

    async def test_template_refused_is_a_start_error(self, tmp_path: Path) -> None:
        def handler(method: str, target: str, body: bytes | None) -> Reply:
            if method == "GET":
                return 404, {}
            return 400, {"error": {"type": "illegal_argument_exception", "reason": "same priority"}, "status": 400}

        sink = ElasticsearchSink("es", make_config(), metrics=Metrics(), stats=Metrics().component("es", "sink", "x"),
                                 client_factory=scripted_client(Script(handler)))
        with pytest.raises(StartError, match="same priority") as err:
            await sink.start()
        assert err.value.key == "template"
        await sink.aclose()

    @pytest.mark.parametrize(("reply", "message"), [
        pytest.param(ConnectionError("refused"), "unreachable", id="down"),
        pytest.param((200, {"status": "red"}), "red", id="red"),
    ])
    async def test_healthcheck_raises_with_reason(self, reply: Reply, message: str) -> None:
        sink = ElasticsearchSink("es", make_config(), metrics=Metrics(), stats=Metrics().component("es", "sink", "x"),
                                 client_factory=scripted_client(Script(lambda m, t, b: reply)))
        with pytest.raises(TransientError, match=message):
            await sink.healthcheck()
        await sink.aclose()


class TestDataStream:
    async def test_writes_create_ops_to_the_data_stream(self, tmp_path: Path) -> None:
        script = cluster(lambda body, n: (200, ok_items(body)))
        async with Harness(tmp_path, script, mode="data_stream", namespace="prod") as h:
            await h.put([event(0), event(1, log_type="error"), {**event(2), "log_type": None}])
            await h.finish()
        actions = script.bulk_bodies()[0][0::2]
        # No log_type: the default of every sink, application.
        assert [a["create"]["_index"] for a in actions] == ["logs-access-prod", "logs-error-prod",
                                                            "logs-application-prod"]
        assert template_body(h.config)["data_stream"] == {}


class TestConfig:
    @pytest.mark.parametrize("overrides", [
        pytest.param({"password": "x"}, id="password-without-user"),
        pytest.param({"username": "u"}, id="user-without-password"),
        pytest.param({"username": "u", "password": "p", "api_key": "k"}, id="two-auth-schemes"),
        pytest.param({"api_key": "k", "api_key_file": "/x"}, id="value-and-file"),
        pytest.param({"mode": "data_stream", "index": "logs-%Y"}, id="dated-data-stream"),
        pytest.param({"index": "logs-%j"}, id="bad-date-code"),
    ])
    def test_invalid(self, overrides: dict[str, Any]) -> None:
        with pytest.raises(ValidationError):
            make_config(**overrides)

    def test_secret_files_are_read_and_never_shown(self, tmp_path: Path) -> None:
        secret = tmp_path / "pw"
        secret.write_text("s3cret\n")
        config = make_config(username="u", password_file=str(secret))
        sink = ElasticsearchSink("es", config, metrics=Metrics(), stats=Metrics().component("es", "sink", "x"))
        assert sink._auth == {"basic_auth": ("u", "s3cret")}
        assert "s3cret" not in repr(make_config(username="u", password="s3cret"))

    def test_unreadable_secret_file_is_a_config_error(self, tmp_path: Path) -> None:
        config = make_config(api_key_file=str(tmp_path / "missing"))
        with pytest.raises(ConfigError, match="api_key_file"):
            ElasticsearchSink("es", config, metrics=Metrics(), stats=Metrics().component("es", "sink", "x"))

    def test_registered(self) -> None:
        from pipeline import registry

        spec = registry.lookup("sink", "elasticsearch")
        assert spec is not None and spec.model is ElasticsearchSinkConfig


def test_the_client_is_imported_without_pyarrow_which_stays_importable() -> None:
    # A fresh interpreter: pyarrow (installed for the ClickHouse extra) would cost every
    # Elasticsearch process about 37 MiB (sinks/elasticsearch/client.py).
    import subprocess
    import sys

    code = (
        "import sys, sinks.elasticsearch\n"
        "assert 'pyarrow' not in sys.modules, 'pyarrow imported'\n"
        "import pyarrow, elasticsearch.serializer\n"
        "print(pyarrow.__name__)\n"
    )
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "pyarrow", proc.stderr
