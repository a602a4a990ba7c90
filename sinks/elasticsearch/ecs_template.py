"""The index template for events parsed with `schema: ecs`: typed mappings for the ECS fields.

Selected by the sink's `template.schema: ecs`. It types the fields `parsers/ecs.py`
writes with the ECS types Filebeat's templates give them (`source.ip` an `ip`,
`http.response.status_code` a `long`, `event.created` a `date`, `source.geo.location`
a `geo_point`, ...), so Kibana visualisations and dashboards built on Filebeat's nginx
and apache data keep working. Two deliberate differences from Elastic's own template:
fields ECS maps as `wildcard` or `match_only_text` are `keyword` / `text` here (those
types live in optional Elasticsearch modules; keyword answers the same term, prefix and
aggregation queries), and strings not named here become `keyword` (ignore_above 1024),
as in the default template.

Installation is shared with the default template (`template.install`): the body carries
a hash of itself in `_meta` and is only written when the installed one differs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from sinks.elasticsearch.config import ElasticsearchSinkConfig

__all__ = ["ECS_PROPERTIES", "ecs_template_body"]

ECS_TEMPLATE_VERSION = 1

_KW: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
_LONG: dict[str, Any] = {"type": "long"}
_FLOAT: dict[str, Any] = {"type": "float"}
_DATE: dict[str, Any] = {"type": "date"}
_IP: dict[str, Any] = {"type": "ip"}
_TEXT: dict[str, Any] = {"type": "text"}
# Long values (URLs, agents, stack traces) stay searchable as text; aggregations use the keyword.
_KW_TEXT: dict[str, Any] = {"type": "keyword", "ignore_above": 8191, "fields": {"text": {"type": "text"}}}


def _obj(**props: dict[str, Any]) -> dict[str, Any]:
    return {"properties": props}


_GEO = _obj(
    location={"type": "geo_point"},
    continent_name=_KW,
    country_iso_code=_KW,
    country_name=_KW,
    region_name=_KW,
    region_iso_code=_KW,
    city_name=_KW,
    timezone=_KW,
)
_ENDPOINT = _obj(
    ip=_IP,
    address=_KW,
    domain=_KW,
    port=_LONG,
    geo=_GEO,
    **{"as": _obj(number=_LONG, organization=_obj(name=_KW))},
)
_UPSTREAM = _obj(addr=_KW, status=_KW, cache_status=_KW, connect_time=_FLOAT, header_time=_FLOAT, response_time=_FLOAT)
_WEB_ACCESS = _obj(remote_ip_list=_KW, x_forwarded_for=_KW, ident=_KW, request=_KW_TEXT, upstream=_UPSTREAM)
_WEB_ERROR = _obj(
    connection_id=_LONG,
    server=_KW,
    request=_KW_TEXT,
    upstream=_KW,
    subrequest=_KW,
    module=_KW,
    os_error=_KW,
    bytes_from_client=_LONG,
    bytes_to_client=_LONG,
    bytes_from_upstream=_LONG,
    bytes_to_upstream=_LONG,
)

ECS_PROPERTIES: dict[str, Any] = {
    "@timestamp": _DATE,
    "message": _TEXT,
    "tags": _KW,
    "log_type": _KW,
    "event_id": _KW,
    "ecs": _obj(version=_KW),
    "event": _obj(
        created=_DATE,
        duration=_LONG,
        kind=_KW,
        category=_KW,
        type=_KW,
        outcome=_KW,
        module=_KW,
        dataset=_KW,
    ),
    "service": _obj(type=_KW, name=_KW),
    "host": _obj(name=_KW),
    "log": _obj(
        level=_KW,
        logger=_KW,
        offset=_LONG,
        file=_obj(path=_KW),
        origin=_obj(file=_obj(name=_KW, line=_LONG)),
    ),
    "kafka": _obj(topic=_KW, partition=_LONG, offset=_LONG),
    "source": _ENDPOINT,
    "destination": _ENDPOINT,
    "http": _obj(
        version=_KW,
        request=_obj(method=_KW, referrer=_KW_TEXT, id=_KW),
        response=_obj(status_code=_LONG, body=_obj(bytes=_LONG)),
    ),
    "url": _obj(original=_KW_TEXT, path=_KW_TEXT, query=_KW_TEXT, domain=_KW),
    "user": _obj(name=_KW, id=_KW),
    "user_agent": _obj(
        original=_KW_TEXT,
        name=_KW,
        version=_KW,
        os=_obj(name=_KW, version=_KW, full=_KW),
        device=_obj(name=_KW),
    ),
    "process": _obj(pid=_LONG, thread=_obj(id=_LONG, name=_KW)),
    "error": _obj(code=_KW, type=_KW, message=_TEXT, stack_trace=_TEXT),
    "trace": _obj(id=_KW),
    "span": _obj(id=_KW),
    "nginx": _obj(access=_WEB_ACCESS, error=_WEB_ERROR),
    "apache": _obj(access=_WEB_ACCESS, error=_WEB_ERROR),
}

_DYNAMIC_TEMPLATES: list[dict[str, Any]] = [
    {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}},
]


def ecs_template_body(config: ElasticsearchSinkConfig) -> dict[str, Any]:
    """The `PUT _index_template/<name>` body for ECS events, `_meta.hash` included."""
    opts = config.template
    body: dict[str, Any] = {
        "index_patterns": list(opts.index_patterns),
        "priority": opts.priority,
        "template": {"mappings": {"dynamic_templates": _DYNAMIC_TEMPLATES, "properties": ECS_PROPERTIES}},
    }
    if opts.settings:
        body["template"]["settings"] = dict(opts.settings)
    if config.mode == "data_stream":
        body["data_stream"] = {}
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    body["_meta"] = {"managed_by": "pipeline", "schema": "ecs", "version": ECS_TEMPLATE_VERSION, "hash": digest}
    return body
