"""The index template the sink installs at start: typed mappings for log fields.

Without it, Elasticsearch guesses types from the first document it sees (a
`status` of "200" becomes text, `client_ip` a string), and every later index
inherits the guess. Strings not named here become `keyword` (ignore_above 1024)
rather than text + keyword multi-fields: log fields are filtered and
aggregated, and only `message` is searched as text.

Installation is idempotent: the template carries a hash of its own body in
`_meta`, and is written only when the installed one differs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from sinks.elasticsearch.config import ElasticsearchSinkConfig

TEMPLATE_VERSION = 1

PROPERTIES: dict[str, Any] = {
    "@timestamp": {"type": "date"},
    "message": {"type": "text"},
    "event_id": {"type": "keyword"},
    "host": {"type": "keyword"},
    "log_type": {"type": "keyword"},
    "level": {"type": "keyword"},
    "tags": {"type": "keyword"},
    # A client that is a host name, not an address, keeps its event: the field is just not indexed.
    "client_ip": {"type": "ip", "ignore_malformed": True},
    "status": {"type": "short"},
    "bytes": {"type": "long"},
    "request_time": {"type": "float"},
    "upstream_response_time": {"type": "float"},
    "upstream_connect_time": {"type": "float"},
    "upstream_header_time": {"type": "float"},
    "geoip": {"properties": {"location": {"type": "geo_point"}}},
}

DYNAMIC_TEMPLATES: list[dict[str, Any]] = [
    {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}},
]


def template_body(config: ElasticsearchSinkConfig) -> dict[str, Any]:
    """The `PUT _index_template/<name>` body, `_meta.hash` included."""
    opts = config.template
    body: dict[str, Any] = {
        "index_patterns": list(opts.index_patterns),
        "priority": opts.priority,
        "template": {
            "mappings": {"dynamic_templates": DYNAMIC_TEMPLATES, "properties": PROPERTIES},
        },
    }
    if opts.settings:
        body["template"]["settings"] = dict(opts.settings)
    if config.mode == "data_stream":
        body["data_stream"] = {}
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    body["_meta"] = {"managed_by": "pipeline", "version": TEMPLATE_VERSION, "hash": digest}
    return body


async def install(client: Any, name: str, body: dict[str, Any]) -> bool:
    """Install the template unless an identical one is there; True when it was written."""
    current = await client.options(ignore_status=404).indices.get_index_template(name=name)
    if current.meta.status == 200:
        for entry in (current.body or {}).get("index_templates", []):
            meta = entry.get("index_template", {}).get("_meta") or {}
            if entry.get("name") == name and meta.get("hash") == body["_meta"]["hash"]:
                return False
    fields = {k: v for k, v in body.items() if k != "_meta"}
    await client.indices.put_index_template(name=name, meta=body["_meta"], **fields)
    return True
