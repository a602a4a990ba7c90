"""ECS output: the flat fields of the built-in formats renamed to Elastic Common Schema names.

With ``schema: ecs`` on the parse transform, an event parsed by a built-in format gets
the field names Elastic's Filebeat modules (nginx, apache) give the same lines, so a
team moving from Filebeat keeps its Kibana dashboards and saved searches. The default
(flat) names stay the default; this is a rename after parsing, not another parser.

=============================  ===========================================================
flat (default)                 ECS
=============================  ===========================================================
``client_ip``                  ``source.ip`` and ``source.address``
``client_port``                ``source.port``
``client_ip_list``             ``<module>.access.remote_ip_list``
``vhost`` / ``vhost_port``     ``destination.domain`` (``destination.ip`` when an address)
                               / ``destination.port``
``user``                       ``user.name``
``method``                     ``http.request.method``
``path`` / ``query``           ``url.path`` / ``url.query``, and ``url.original``
                               (``path?query``, the request target as sent)
``http_version``               ``http.version``
``status``                     ``http.response.status_code``
``bytes``                      ``http.response.body.bytes``
``referrer``                   ``http.request.referrer``
``user_agent``                 ``user_agent.original``; parsed: ``user_agent.name``,
                               ``.version``, ``.os.name``, ``.os.version``, ``.os.full``,
                               ``.device.name``
``request_time``               ``event.duration`` (nanoseconds)
``upstream_*``                 ``nginx.access.upstream.{addr,status,cache_status,
                               connect_time,header_time,response_time}``
``x_forwarded_for``, ``ident``, ``<module>.access.x_forwarded_for``, ``.ident``, ``.request``
raw ``request``
``level``                      ``log.level``
``pid`` / ``tid``              ``process.pid`` / ``process.thread.id``
``connection_id``              ``nginx.error.connection_id``
``server``, ``upstream``,      ``nginx.error.server``, ``.upstream``, ...; ``host_header``
other nginx error keys         -> ``url.domain``
``module`` / ``error_code``    ``apache.error.module`` / ``error.code``
``os_error``                   ``apache.error.os_error``
``logger`` / ``thread``        ``log.logger`` / ``process.thread.name`` (application)
``request_id`` / ``trace_id``  ``http.request.id`` / ``trace.id``; ``span_id`` -> ``span.id``;
                               ``user_id`` -> ``user.id``; ``service`` -> ``service.name``
``source_file``                ``log.origin.file.name``
``host`` (shipping host)       ``host.name``
``source`` (where read)        ``log.file.path`` and ``log.offset`` (files), ``kafka.topic``,
                               ``.partition``, ``.offset`` (the kafka source)
=============================  ===========================================================

Set as well: ``ecs.version``; ``event.kind`` (``event``), ``event.category``
(``[web]`` for access and error logs), ``event.type`` (``[access]`` / ``[error]``),
``event.outcome`` (``success`` below status 400, ``failure`` from it), ``event.module``
and ``event.dataset`` (``nginx.access``, ``apache.error``, ...), ``service.type``, and
``event.created``: when the shipper read the line (the ``@timestamp`` the source gave
the event before parsing replaced it with the line's own time; the parser's clock when
there was none). ``@timestamp``, ``message``, ``tags``, ``log_type``, ``event_id`` and
``kubernetes`` keep their names (the sinks route and deduplicate on them). Error logs
tell nginx from Apache by their shape; access logs cannot (both write the combined
format), so ``<module>`` of access logs is a setting (``web_server``, nginx by default).

A flat key whose ECS parent is already taken by a value that is not an object (a JSON
application log with ``"user": "bob"``) is left under its flat name: nothing is lost.
For GeoIP on ECS events, set the geoip transform's ``field: source.ip`` and
``target: source.geo`` (its country/city/location keys are ECS ``geo`` names).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from parsers.dates import utc_now
from parsers.ipaddr import is_public_ip
from parsers.types import Event

__all__ = ["ECS_VERSION", "SCHEMAS", "EcsMapper", "WebServer"]

ECS_VERSION = "8.11.0"
SCHEMAS = ("default", "ecs")
WebServer = Literal["nginx", "apache"]

Path = tuple[str, ...]

# flat key -> ECS path, per log type; "{m}" is the module (nginx / apache).
_COMMON: dict[str, str] = {"level": "log.level"}
_ACCESS: dict[str, str] = {
    "client_port": "source.port",
    "client_ip_list": "{m}.access.remote_ip_list",
    "vhost_port": "destination.port",
    "ident": "{m}.access.ident",
    "user": "user.name",
    "method": "http.request.method",
    "path": "url.path",
    "query": "url.query",
    "http_version": "http.version",
    "request": "{m}.access.request",
    "status": "http.response.status_code",
    "bytes": "http.response.body.bytes",
    "referrer": "http.request.referrer",
    "user_agent": "user_agent.original",
    "user_agent_name": "user_agent.name",
    "user_agent_version": "user_agent.version",
    "user_agent_os_name": "user_agent.os.name",
    "user_agent_os_version": "user_agent.os.version",
    "user_agent_device": "user_agent.device.name",
    "x_forwarded_for": "{m}.access.x_forwarded_for",
    "upstream_addr": "{m}.access.upstream.addr",
    "upstream_status": "{m}.access.upstream.status",
    "upstream_cache_status": "{m}.access.upstream.cache_status",
    "upstream_connect_time": "{m}.access.upstream.connect_time",
    "upstream_header_time": "{m}.access.upstream.header_time",
    "upstream_response_time": "{m}.access.upstream.response_time",
}
_ERROR: dict[str, str] = {
    "client_port": "source.port",
    "pid": "process.pid",
    "tid": "process.thread.id",
    "connection_id": "{m}.error.connection_id",
    "server": "{m}.error.server",
    "request": "{m}.error.request",
    "method": "http.request.method",
    "path": "url.path",
    "query": "url.query",
    "http_version": "http.version",
    "upstream": "{m}.error.upstream",
    "host_header": "url.domain",
    "referrer": "http.request.referrer",
    "module": "{m}.error.module",
    "error_code": "error.code",
    "os_error": "{m}.error.os_error",
    "subrequest": "{m}.error.subrequest",
    "bytes_from_client": "{m}.error.bytes_from_client",
    "bytes_to_client": "{m}.error.bytes_to_client",
    "bytes_from_upstream": "{m}.error.bytes_from_upstream",
    "bytes_to_upstream": "{m}.error.bytes_to_upstream",
}
_APPLICATION: dict[str, str] = {
    "logger": "log.logger",
    "thread": "process.thread.name",
    "pid": "process.pid",
    "request_id": "http.request.id",
    "trace_id": "trace.id",
    "span_id": "span.id",
    "user_id": "user.id",
    "service": "service.name",
    "source_file": "log.origin.file.name",
}


Entry = tuple[str, Path, str]  # (parent as a dotted string: a dict key with a cached hash, parent path, leaf)


def _split(table: dict[str, str], module: str) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for key, dotted in {**_COMMON, **table}.items():
        parts = tuple(dotted.replace("{m}", module).split("."))
        out[key] = (".".join(parts[:-1]), parts[:-1], parts[-1])
    return out


class _Writer:
    """Sets nested values in one event, walking (or creating) each parent object once."""

    __slots__ = ("event", "nodes")

    def __init__(self, event: Event) -> None:
        self.event = event
        self.nodes: dict[str, dict[str, Any] | None] = {}

    def parent(self, path: Path, name: str = "") -> dict[str, Any] | None:
        """The object at ``path`` (``name``: the same, dotted), created as needed; None if taken."""
        nodes = self.nodes
        name = name or ".".join(path)
        if name in nodes:
            return nodes[name]
        node: dict[str, Any] | None = self.event
        for key in path:
            assert node is not None
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif type(child) is not dict:
                node = None  # taken by a value that is not an object
                break
            node = child
        nodes[name] = node
        return node

    def put(self, path: Path, leaf: str, value: Any) -> bool:
        """``event[path...][leaf] = value``; False (nothing set) when the place is taken."""
        node = self.parent(path)
        if node is None or type(node.get(leaf)) is dict:
            return False
        node[leaf] = value
        return True

    def move(self, table: dict[str, Entry]) -> None:
        event = self.event
        # Take the flat keys out first: "user_agent" is a flat key and the parent of
        # "user_agent.name"; the order they come in must not matter.
        found = [(key, event.pop(key)) for key in [k for k in event if k in table]]
        nodes = self.nodes
        parent = self.parent
        for key, value in found:
            name, path, leaf = table[key]
            node = nodes[name] if name in nodes else parent(path, name)
            if node is None or type(node.get(leaf)) is dict:
                event[key] = value  # the place is taken: keep the flat name, lose nothing
            else:
                node[leaf] = value


_EVENT = ("event",)
_SOURCE = ("source",)
_DESTINATION = ("destination",)
_URL = ("url",)
_LOG = ("log",)


class EcsMapper:
    """Rename a parsed event's flat fields to ECS, in place (see the module docstring)."""

    __slots__ = ("_access", "_app", "_clock", "_errors", "web_server")

    def __init__(self, web_server: WebServer = "nginx", clock: Callable[[], float] = time.time) -> None:
        if web_server not in ("nginx", "apache"):
            raise ValueError(f"web_server must be nginx or apache, got {web_server!r}")
        self.web_server = web_server
        self._clock = clock
        self._access = _split(_ACCESS, web_server)
        self._errors = {m: _split(_ERROR, m) for m in ("nginx", "apache")}
        self._app = _split(_APPLICATION, "app")

    def __call__(self, event: Event, raw: str, created: Any) -> Event:
        """``raw``: the line as read (tells nginx from Apache error logs); ``created``: the
        event's ``@timestamp`` before parsing (None: the clock's now)."""
        w = _Writer(event)
        self._shipping(w, created)
        log_type = event.get("log_type")
        if log_type == "access":
            self._access_fields(w, self.web_server)
        elif log_type == "error":
            module = "apache" if raw[:1] == "[" else "nginx"
            self._web(w, module, "error", self._errors[module])
        else:
            w.move(self._app)
        w.put(("ecs",), "version", ECS_VERSION)
        return event

    def _shipping(self, w: _Writer, created: Any) -> None:
        event = w.event
        host = event.get("host")
        if type(host) is str:
            event["host"] = {"name": host}
        where = event.get("source")
        if type(where) is dict:
            # Only the keys the sources set move; an ECS ``source`` (a client) stays.
            if "topic" in where:
                for key in ("topic", "partition", "offset"):
                    if key in where:
                        w.put(("kafka",), key, where.pop(key))
            if "path" in where:
                w.put(("log", "file"), "path", where.pop("path"))
                if "offset" in where:
                    w.put(_LOG, "offset", where.pop("offset"))
            if not where:
                del event["source"]
                w.nodes.pop("source", None)
        if type(created) is not str:
            created = utc_now(self._clock)
        ev = w.parent(_EVENT)
        if ev is not None:
            ev["created"] = created
            ev["kind"] = "event"

    def _access_fields(self, w: _Writer, module: str) -> None:
        event = w.event
        query = event.get("query")
        path = event.get("path")
        status = event.get("status")
        request_time = event.pop("request_time", None)
        self._web(w, module, "access", self._access)
        if path is not None:
            w.put(_URL, "original", f"{path}?{query}" if query else path)
        if type(request_time) is float:
            w.put(_EVENT, "duration", round(request_time * 1e9))
        agent = event.get("user_agent")
        if type(agent) is dict:
            os = agent.get("os")
            if type(os) is dict and "name" in os:
                os["full"] = f"{os['name']} {os['version']}" if "version" in os else os["name"]
        if type(status) is int:
            w.put(_EVENT, "outcome", "success" if status < 400 else "failure")

    def _web(self, w: _Writer, module: str, kind: str, table: dict[str, Entry]) -> None:
        event = w.event
        client = event.pop("client_ip", None)
        vhost = event.pop("vhost", None)
        w.move(table)
        if client is not None:
            w.put(_SOURCE, "address", client)
            if is_public_ip(client) is not None:
                w.put(_SOURCE, "ip", client)
        if vhost is not None:
            w.put(_DESTINATION, "ip" if is_public_ip(vhost) is not None else "domain", vhost)
        ev = w.parent(_EVENT)
        if ev is not None:
            ev["category"] = ["web"]
            ev["type"] = [kind]
            ev["module"] = module
            ev["dataset"] = f"{module}.{kind}"
        w.put(("service",), "type", module)
