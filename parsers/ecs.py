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
from parsers.formats import is_public_ip
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


def _split(table: dict[str, str], module: str) -> dict[str, Path]:
    return {k: tuple(v.replace("{m}", module).split(".")) for k, v in {**_COMMON, **table}.items()}


def _put(event: Event, path: Path, value: Any) -> bool:
    """Set ``event[a][b]...`` = value; False (nothing set) when a parent is not an object."""
    node = event
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif type(child) is not dict:
            return False
        node = child
    if path[-1] in node and type(node[path[-1]]) is dict:
        return False
    node[path[-1]] = value
    return True


def _move(event: Event, table: dict[str, Path]) -> None:
    # Take the flat keys out first: "source" or "user" may be a flat key and an ECS parent.
    moved = [(key, event.pop(key)) for key in table if key in event]
    for key, value in moved:
        if not _put(event, table[key], value):
            event[key] = value


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
        self._shipping(event, created)
        log_type = event.get("log_type")
        if log_type == "access":
            self._access_fields(event, self.web_server)
        elif log_type == "error":
            module = "apache" if raw[:1] == "[" else "nginx"
            self._web(event, module, "error", self._errors[module])
        else:
            _move(event, self._app)
        _put(event, ("ecs", "version"), ECS_VERSION)
        return event

    def _shipping(self, event: Event, created: Any) -> None:
        host = event.get("host")
        if type(host) is str:
            event["host"] = {"name": host}
        where = event.get("source")
        if type(where) is dict:
            # Only the keys the sources set move; an ECS ``source`` (a client) stays.
            if "topic" in where:
                for key in ("topic", "partition", "offset"):
                    if key in where:
                        _put(event, ("kafka", key), where.pop(key))
            if "path" in where:
                _put(event, ("log", "file", "path"), where.pop("path"))
                if "offset" in where:
                    _put(event, ("log", "offset"), where.pop("offset"))
            if not where:
                del event["source"]
        if type(created) is not str:
            created = utc_now(self._clock)
        _put(event, ("event", "created"), created)
        _put(event, ("event", "kind"), "event")

    def _access_fields(self, event: Event, module: str) -> None:
        query = event.get("query")
        path = event.get("path")
        status = event.get("status")
        request_time = event.pop("request_time", None)
        self._web(event, module, "access", self._access)
        if path is not None:
            _put(event, ("url", "original"), f"{path}?{query}" if query else path)
        if type(request_time) is float:
            _put(event, ("event", "duration"), round(request_time * 1e9))
        name = event.get("user_agent")
        if type(name) is dict and "os" in name:
            os = name["os"]
            if "name" in os:
                os["full"] = f"{os['name']} {os['version']}" if "version" in os else os["name"]
        if type(status) is int:
            _put(event, ("event", "outcome"), "success" if status < 400 else "failure")

    def _web(self, event: Event, module: str, kind: str, table: dict[str, Path]) -> None:
        client = event.pop("client_ip", None)
        vhost = event.pop("vhost", None)
        _move(event, table)
        if client is not None:
            _put(event, ("source", "address"), client)
            if is_public_ip(client) is not None:
                _put(event, ("source", "ip"), client)
        if vhost is not None:
            _put(event, ("destination", "ip" if is_public_ip(vhost) is not None else "domain"), vhost)
        _put(event, ("event", "category"), ["web"])
        _put(event, ("event", "type"), [kind])
        _put(event, ("event", "module"), module)
        _put(event, ("event", "dataset"), f"{module}.{kind}")
        _put(event, ("service", "type"), module)
