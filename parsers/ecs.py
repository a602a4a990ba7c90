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

from parsers.dates import rfc3339_ms
from parsers.errors import OptionError
from parsers.ipaddr import is_public_ip
from parsers.types import Event

__all__ = ["ECS_VERSION", "SCHEMAS", "EcsMapper", "WebServer"]

ECS_VERSION = "8.11.0"
SCHEMAS = ("default", "ecs")
WebServer = Literal["nginx", "apache"]


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


# Values the mapper computes (not flat keys of the event): where they go. Their names start
# with "." so they never stand for an event key.
_DERIVED: dict[str, str] = {
    ".url_original": "url.original",
    ".os_full": "user_agent.os.full",
    ".file_path": "log.file.path",
    ".file_offset": "log.offset",
}


class _Plan:
    """One table compiled: its objects numbered (0 is the event itself), and for each value
    name the object and key it goes to. Per event only the values present are visited, and
    each object on their way is looked up or created once."""

    __slots__ = ("flat", "nodes", "slots")

    def __init__(self, table: dict[str, str], module: str) -> None:
        full = {**_COMMON, **table, **_DERIVED}
        self.flat = frozenset(k for k in full if k[0] != ".")
        self.nodes: list[tuple[int, str]] = [(-1, "")]  # (parent node, key in the parent)
        index: dict[tuple[str, ...], int] = {(): 0}
        self.slots: dict[str, tuple[int, str]] = {}
        for name, dotted in full.items():
            *parents, leaf = dotted.replace("{m}", module).split(".")
            node = 0
            for depth in range(1, len(parents) + 1):
                path = tuple(parents[:depth])
                if path not in index:
                    index[path] = len(self.nodes)
                    self.nodes.append((node, parents[depth - 1]))
                node = index[path]
            self.slots[name] = (node, leaf)

    def apply(self, event: Event, values: dict[str, Any]) -> None:
        # Take the flat keys out first: "user_agent" is a flat key and the parent of
        # "user_agent.name"; the order they come in must not matter.
        flat = self.flat
        for key in [k for k in event if k in flat]:
            values[key] = event.pop(key)
        objs: list[Any] = [None] * len(self.nodes)  # None: not looked up yet; False: taken
        objs[0] = event
        slots = self.slots
        for name, value in values.items():
            node, leaf = slots[name]
            obj = objs[node]
            if obj is None:
                obj = self._object(objs, node)
            if obj is False or type(obj.get(leaf)) is dict:
                if name[0] != ".":  # a derived value only restates fields that are kept
                    event[name] = value  # the place is taken: keep the flat name, lose nothing
            else:
                obj[leaf] = value

    def _object(self, objs: list[Any], node: int) -> Any:
        parent, key = self.nodes[node]
        holder = objs[parent]
        if holder is None:
            holder = self._object(objs, parent)
        if holder is False:
            obj: Any = False
        else:
            obj = holder.get(key)
            if obj is None:
                obj = holder[key] = {}
            elif type(obj) is not dict:
                obj = False  # taken by a value that is not an object
        objs[node] = obj
        return obj


class EcsMapper:
    """Rename a parsed event's flat fields to ECS, in place (see the module docstring)."""

    __slots__ = ("_access", "_app", "_clock", "_errors", "web_server")

    def __init__(self, web_server: WebServer = "nginx", clock: Callable[[], float] = time.time) -> None:
        if web_server not in ("nginx", "apache"):
            raise OptionError("web_server", f"web_server must be nginx or apache, got {web_server!r}")
        self.web_server = web_server
        self._clock = clock
        self._access = _Plan(_ACCESS, web_server)
        self._errors = {m: _Plan(_ERROR, m) for m in ("nginx", "apache")}
        self._app = _Plan(_APPLICATION, "app")

    def __call__(self, event: Event, raw: str, created: Any) -> Event:
        """``raw``: the line as read (tells nginx from Apache error logs); ``created``: the
        event's ``@timestamp`` before parsing (None: the clock's now)."""
        # Whole objects are built at once and merged (one step each); single values that
        # share an object with flat fields (url.original beside url.path) go through the plan.
        meta: dict[str, Any] = {
            "created": created if type(created) is str else rfc3339_ms(self._clock()),
            "kind": "event",
        }
        values: dict[str, Any] = {}
        self._shipping(event, values)
        log_type = event.get("log_type")
        if log_type == "access":
            module = self.web_server
            self._web(event, meta, module, "access")
            self._access_derived(event, meta, values)
            plan = self._access
        elif log_type == "error":
            module = "apache" if raw[:1] == "[" else "nginx"
            self._web(event, meta, module, "error")
            plan = self._errors[module]
        else:
            plan = self._app
        _merge(event, "event", meta)
        _merge(event, "ecs", {"version": ECS_VERSION})
        plan.apply(event, values)
        return event

    @staticmethod
    def _shipping(event: Event, values: dict[str, Any]) -> None:
        host = event.get("host")
        if type(host) is str:
            event["host"] = {"name": host}
        where = event.get("source")
        if type(where) is dict:
            # Only the keys the sources set move; an ECS ``source`` (a client) stays.
            if "topic" in where:
                kafka = {k: where.pop(k) for k in ("topic", "partition", "offset") if k in where}
                _merge(event, "kafka", kafka)
            if "path" in where:
                values[".file_path"] = where.pop("path")
                if "offset" in where:
                    values[".file_offset"] = where.pop("offset")
            if not where:
                del event["source"]

    @staticmethod
    def _web(event: Event, meta: dict[str, Any], module: str, kind: str) -> None:
        client = event.pop("client_ip", None)
        if client is not None:
            source = {"address": client, "ip": client} if is_public_ip(client) is not None else {"address": client}
            if not _merge(event, "source", source):
                event["client_ip"] = client  # the place is taken: keep the flat name
        vhost = event.pop("vhost", None)
        if vhost is not None:
            key = "ip" if is_public_ip(vhost) is not None else "domain"
            if not _merge(event, "destination", {key: vhost}):
                event["vhost"] = vhost
        meta["category"] = ["web"]
        meta["type"] = [kind]
        meta["module"] = module
        meta["dataset"] = f"{module}.{kind}"
        _merge(event, "service", {"type": module})

    @staticmethod
    def _access_derived(event: Event, meta: dict[str, Any], values: dict[str, Any]) -> None:
        path = event.get("path")
        if path is not None:
            query = event.get("query")
            values[".url_original"] = f"{path}?{query}" if query else path
        request_time = event.pop("request_time", None)
        if type(request_time) is float:
            meta["duration"] = round(request_time * 1e9)
        status = event.get("status")
        if type(status) is int:
            meta["outcome"] = "success" if status < 400 else "failure"
        os = event.get("user_agent_os_name")
        if os is not None:
            version = event.get("user_agent_os_version")
            values[".os_full"] = f"{os} {version}" if version else os


def _merge(event: Event, key: str, obj: dict[str, Any]) -> bool:
    """Put the object ``obj`` at ``event[key]``, or its keys into the object already there
    (keys already set are kept). False when ``event[key]`` holds something else."""
    cur = event.get(key)
    if cur is None:
        event[key] = obj
        return True
    if type(cur) is not dict:
        return False
    for k, v in obj.items():
        cur.setdefault(k, v)
    return True
