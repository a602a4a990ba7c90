"""The ECS index template and how the elasticsearch sink chooses it (sinks/elasticsearch/ecs_template.py)."""

from __future__ import annotations

from typing import Any

import pytest

from parsers import EventParser
from pipeline.metrics import Metrics
from sinks.elasticsearch import ElasticsearchSink, ElasticsearchSinkConfig
from sinks.elasticsearch.ecs_template import ECS_PROPERTIES


def sink(**template: Any) -> ElasticsearchSink:
    config = ElasticsearchSinkConfig.model_validate({"type": "elasticsearch", "inputs": ["x"], "template": template})
    metrics = Metrics()
    return ElasticsearchSink("es", config, metrics=metrics, stats=metrics.component("es", "sink", "elasticsearch"))


def leaves(props: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, spec in props.items():
        if "properties" in spec:
            out.update(leaves(spec["properties"], f"{prefix}{key}."))
        else:
            out[prefix + key] = spec["type"]
    return out


def event_leaves(event: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            out.update(event_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


class TestChoice:
    def test_default_schema_keeps_the_default_template(self) -> None:
        body = sink().template_body
        assert "client_ip" in body["template"]["mappings"]["properties"]
        assert "schema" not in body["_meta"]

    def test_ecs_schema(self) -> None:
        body = sink(schema="ecs", name="ecs-logs", index_patterns=["ecs-*"]).template_body
        assert body["_meta"]["schema"] == "ecs"
        assert body["index_patterns"] == ["ecs-*"]
        assert body["template"]["mappings"]["properties"]["source"]["properties"]["ip"] == {"type": "ip"}

    def test_unknown_schema_is_a_config_error(self) -> None:
        with pytest.raises(ValueError, match="schema"):
            sink(schema="otel")


class TestCoverage:
    """Every field the ECS parser writes for access and error logs has an explicit mapping."""

    LINES = [
        'shop.example.com:443 "81.2.69.142:5000, 10.0.0.1" - bob [02/Jan/2024:03:04:05 +0000] "GET /a?b=1 HTTP/1.1" '
        '500 9 "https://r/" "curl/8.5.0" "81.2.69.142" rt=0.1 uct="0.001" uht="0.002" urt="0.003" ua="10.0.0.5:80" '
        'us="500" cs=MISS',
        '1.2.3.4 - - [02/Jan/2024:03:04:05 +0000] "\\x16\\x03" 400 0 "-" "-"',
        '2024/01/02 03:04:05 [error] 7#7: *9 x, client: 1.2.3.4, server: s, request: "GET / HTTP/1.1", subrequest: '
        '"/ssi", upstream: "http://u/", host: "h", referrer: "https://r/"',
        "2024/01/02 03:04:05 [error] 7#7: *9 x, client: 1.2.3.4, server: s, bytes from/to client:1/2, "
        "bytes from/to upstream:3/4",
        "[Wed Oct 11 14:32:52.123 2000] [proxy:error] [pid 1:tid 2] (111)Connection refused: [client 1.2.3.4:5] "
        "AH00957: x, referer: https://r/",
    ]

    def test_parsed_fields_are_all_mapped(self) -> None:
        mapped = leaves(ECS_PROPERTIES)
        parser = EventParser("auto", schema="ecs")
        for line in self.LINES:
            event = parser({"message": line, "host": "h", "source": {"path": "/p", "offset": 1}, "event_id": "i"})
            assert "tags" not in event, line
            missing = set(event_leaves(event)) - set(mapped)
            assert not missing, (line, missing)
