"""The index template the sink installs at start: typed mappings for log fields.

Without it, Elasticsearch guesses types from the first document it sees (a
`status` of "200" becomes text, `client_ip` a string), and every later index
inherits the guess. Strings not named here become `keyword` (ignore_above 1024)
rather than text + keyword multi-fields: log fields are filtered and
aggregated. The long free-text fields (`message`, `error.message`,
`error.stack_trace`) are searched as text, of any length: with
`match_only_text` (the type Elasticsearch made for logs: indexed without
frequencies, positions or norms, so smaller; no scoring; phrase queries
checked against the source) where the cluster has it, else `text` without norms. It
lives in the mapper-extras module, which every distribution ships but a
stripped build (the integration-test distribution) may lack: `text_type: auto`
tries it and falls back.

Installation is idempotent: the template carries a hash of its own body in
`_meta`, and is written only when the installed one differs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from sinks.elasticsearch.config import ElasticsearchSinkConfig

TEMPLATE_VERSION = 2
MATCH_ONLY_TEXT = "match_only_text"
# The text type when match_only_text is missing: no norms (log lines are not ranked by length).
PLAIN_TEXT: dict[str, Any] = {"type": "text", "norms": False}
# Free-text fields (dotted paths), mapped with the text type chosen by `template.text_type`.
TEXT_FIELDS = ("message", "error.message", "error.stack_trace")

PROPERTIES: dict[str, Any] = {
    "@timestamp": {"type": "date"},
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
    "error": {"properties": {"type": {"type": "keyword", "ignore_above": 1024}}},
}

DYNAMIC_TEMPLATES: list[dict[str, Any]] = [
    {"strings_as_keyword": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}},
]


def properties(text_type: str) -> dict[str, Any]:
    """The mapped fields, free text as `text_type` (match_only_text or text)."""
    text = {"type": MATCH_ONLY_TEXT} if text_type == MATCH_ONLY_TEXT else PLAIN_TEXT
    props: dict[str, Any] = orjson.loads(orjson.dumps(PROPERTIES))  # a deep copy
    for path in TEXT_FIELDS:
        node = props
        *parents, leaf = path.split(".")
        for name in parents:
            node = node.setdefault(name, {}).setdefault("properties", {})
        node[leaf] = dict(text)
    return props


def template_body(config: ElasticsearchSinkConfig, text_type: str | None = None) -> dict[str, Any]:
    """The `PUT _index_template/<name>` body, `_meta.hash` included.

    `text_type` is the concrete type of the free-text fields; by default the configured one
    (`auto` tries match_only_text first)."""
    opts = config.template
    if text_type is None:
        text_type = MATCH_ONLY_TEXT if opts.text_type == "auto" else opts.text_type
    body: dict[str, Any] = {
        "index_patterns": list(opts.index_patterns),
        "priority": opts.priority,
        "template": {
            "mappings": {"dynamic_templates": DYNAMIC_TEMPLATES, "properties": properties(text_type)},
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


def lacks_match_only_text(error_text: str) -> bool:
    """Whether Elasticsearch refused a template because it has no match_only_text type."""
    return MATCH_ONLY_TEXT in error_text and ("does not exist" in error_text or "No handler" in error_text)
