"""ECS events (parse transform `schema: ecs`) into the real Elasticsearch under the ECS template.

The sink installs `sinks/elasticsearch/ecs_template.py` (`template.schema: ecs`), the events
come from the real parser on realistic lines, and the checks read back what Elasticsearch
made of them: the mapping types and queries a Filebeat dashboard runs (a term on
`event.dataset`, a CIDR term on `source.ip`, a range on `http.response.status_code`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elasticsearch import AsyncElasticsearch

from parsers import GEOIP_FAILURE, EventParser, GeoIPEnricher
from parsers.dates import rfc3339_ms
from pipeline.acks import Status
from tests.integration.test_elasticsearch_sink import Run, es  # noqa: F401  (es is a fixture)

DATA = Path(__file__).resolve().parents[1] / "data" / "parsers"
CITY = Path(__file__).resolve().parents[1] / "data" / "geoip" / "GeoLite2-City-Test.mmdb"
ERROR_LINES = [
    *(DATA / "error_nginx.log").read_text().splitlines(),
    *(DATA / "error_apache.log").read_text().splitlines(),
]


def ecs_events() -> list[dict[str, Any]]:
    parser = EventParser("auto", schema="ecs")
    lines = (DATA / "access_production.log").read_text().splitlines() + ERROR_LINES
    events = []
    for i, line in enumerate(lines):
        event = {"@timestamp": rfc3339_ms(), "message": line, "host": "web-1", "event_id": f"ecs{i}",
                 "source": {"path": "/var/log/nginx/all.log", "offset": i * 100}}  # fmt: skip
        events.append(parser(event))
    # GeoIP as the README tells ECS users to set it up: field source.ip, target source.geo.
    with GeoIPEnricher(str(CITY), field="source.ip", target="source.geo") as geoip:
        geoip.enrich_batch(events)
    return events


def mapped_type(mapping: dict[str, Any], dotted: str) -> str:
    node: dict[str, Any] = {"properties": mapping}
    for part in dotted.split("."):
        node = node["properties"][part]
    return str(node["type"])


class TestEcsTemplate:
    async def test_ecs_events_index_under_the_ecs_template(
        self, es_url: str, es_index: str, es: AsyncElasticsearch, tmp_path: Path  # noqa: F811
    ) -> None:
        events = ecs_events()
        # Every line parsed; only GeoIP may tag (1.2.3.4 is public but not in the test database).
        assert {tag for e in events for tag in e.get("tags", [])} <= {GEOIP_FAILURE}
        run = Run(es_url, es_index, tmp_path, template={
            "name": f"{es_index}-ecs", "index_patterns": [f"{es_index}-*"], "schema": "ecs"})  # fmt: skip
        try:
            await run.start()
            await run.put(events)
            await run.finish()
        finally:
            await run.abort()
        assert run.released == [Status.DELIVERED]
        assert run.dlq.read_all() == []

        installed = (await es.indices.get_index_template(name=f"{es_index}-ecs")).body["index_templates"][0]
        assert installed["index_template"]["_meta"]["schema"] == "ecs"

        await es.indices.refresh(index=f"{es_index}-*")
        mappings = (await es.indices.get_mapping(index=f"{es_index}-*")).body
        for body in mappings.values():
            props = body["mappings"]["properties"]
            for field, kind in [("source.ip", "ip"), ("http.response.status_code", "long"),
                                ("http.response.body.bytes", "long"), ("event.created", "date"),
                                ("event.duration", "long"), ("url.original", "keyword"),
                                ("user_agent.original", "keyword"), ("log.level", "keyword"),
                                ("process.pid", "long"), ("host.name", "keyword")]:  # fmt: skip
                if field.split(".")[0] in props:
                    assert mapped_type(props, field) == kind, field

        async def count(query: dict[str, Any]) -> int:
            return int((await es.count(index=f"{es_index}-*", query=query)).body["count"])

        def expected(predicate: Any) -> int:
            n = sum(1 for e in events if predicate(e))
            assert n > 0  # each query below must have something to find
            return n

        for dataset in ("nginx.access", "nginx.error", "apache.error"):
            assert await count({"term": {"event.dataset": dataset}}) == expected(
                lambda e, d=dataset: e["event"]["dataset"] == d)  # fmt: skip
        # A CIDR term only works on an ip field: the GeoIP test network 81.2.69.0/24.
        assert await count({"term": {"source.ip": "81.2.69.0/24"}}) == expected(
            lambda e: e.get("source", {}).get("ip", "").startswith("81.2.69."))  # fmt: skip
        assert await count({"range": {"http.response.status_code": {"gte": 500}}}) == expected(
            lambda e: e.get("http", {}).get("response", {}).get("status_code", 0) >= 500)  # fmt: skip
        assert await count({"term": {"user_agent.os.name": "iOS"}}) == expected(
            lambda e: e.get("user_agent", {}).get("os", {}).get("name") == "iOS")  # fmt: skip
        assert await count({"term": {"nginx.access.remote_ip_list": "10.20.0.4"}}) == expected(
            lambda e: "10.20.0.4" in e.get("nginx", {}).get("access", {}).get("remote_ip_list", []))  # fmt: skip
        # source.geo.location is a geo_point (a box around the whole world finds every located event).
        box = {"geo_bounding_box": {"source.geo.location": {"top_left": [-180, 90], "bottom_right": [180, -90]}}}
        assert await count(box) == expected(lambda e: "location" in e.get("source.geo", {}))
