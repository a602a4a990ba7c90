"""Typed tables per log type: their DDL, and events -> typed columns.

Each log type with a known shape (application, access, error) gets a table
whose columns carry real ClickHouse types; everything else goes to a generic
`other` table. Fields a schema does not name are kept in the `extra` map
(nested values JSON-encoded), so nothing an event carried is lost.

Conversion happens here, in Python, column by column (one tight loop per
column over the batch, with a fast path for values that already have the
right type), so a value that cannot fit its column rejects only its own row,
with a reason, before anything is sent. The server is the second line of
defence (see the sink's bisection).
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import orjson

from pipeline.event import Event

Path = tuple[str, ...]
# A converter turns one column's raw values into values of the column type. It returns the
# converted list, the rows that cannot be converted (index -> reason), and the raw values it
# replaced by a default but that are worth keeping (index -> text; they go to `extra`).
Converted = tuple[list[Any], dict[int, str], dict[int, str]]
Converter = Callable[[str, list[Any]], Converted]

_EMPTY: dict[str, Any] = {}
_FLT_MAX = 3.4028234663852886e38
_DT64_MIN_MS = -2208988800000  # 1900-01-01, the range of DateTime64
_DT64_MAX_MS = 10413792000000  # 2300-01-01
_V4 = socket.AF_INET
_V6 = socket.AF_INET6
_inet_pton = socket.inet_pton


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _text(value: Any) -> str:
    """Any value as column text: strings as they are, structures as JSON, None as ''."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    if type(value) is int or type(value) is float:
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict | list | tuple | bool):
        try:
            return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
        except orjson.JSONEncodeError:  # an integer beyond 64 bits, an odd key: the standard library copes
            return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


# -- converters -----------------------------------------------------------------------


def convert_string(column: str, values: list[Any]) -> Converted:
    return [v if type(v) is str else "" if v is None else _text(v) for v in values], {}, {}


_SECOND_CACHE: dict[str, int] = {}


def _second_ms(prefix: str) -> int:
    """'YYYY-MM-DDTHH:MM:SS' -> epoch milliseconds, cached: log batches share few distinct seconds."""
    if len(_SECOND_CACHE) > 100_000:
        _SECOND_CACHE.clear()
    ms = int(datetime.fromisoformat(prefix).replace(tzinfo=UTC).timestamp()) * 1000
    if not _DT64_MIN_MS <= ms < _DT64_MAX_MS:
        raise ValueError("out of range")
    _SECOND_CACHE[prefix] = ms
    return ms


def _timestamp_ms(value: Any) -> int:
    if isinstance(value, str):
        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        ms = round(dt.timestamp() * 1000)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ms = round(value * 1000)  # epoch seconds
    elif isinstance(value, datetime):
        ms = round((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp() * 1000)
    else:
        raise ValueError("no timestamp")
    if not _DT64_MIN_MS <= ms < _DT64_MAX_MS:
        raise ValueError("out of range")
    return ms


def convert_timestamp(column: str, values: list[Any]) -> Converted:
    """RFC 3339 `@timestamp` -> epoch milliseconds (what DateTime64(3) stores)."""
    out: list[Any] = [0] * len(values)
    bad: dict[int, str] = {}
    cache = _SECOND_CACHE
    for i, v in enumerate(values):
        try:
            # Fast path: the pipeline's own form, 2024-01-02T03:04:05.678Z.
            if type(v) is str and len(v) == 24 and v[19] == "." and v[23] == "Z":
                base = cache.get(v[:19])
                if base is None:
                    base = _second_ms(v[:19])
                ms = int(v[20:23])
                if ms < 0:
                    raise ValueError("negative milliseconds")
                out[i] = base + ms
            else:
                out[i] = _timestamp_ms(v)
        except (ValueError, TypeError, OverflowError):
            bad[i] = f"{column}: cannot convert {_short(v)} to DateTime64(3, 'UTC')"
    return out, bad, {}


def _integer(value: Any) -> int:
    if value is None or value == "" or value == "-":
        return 0  # absent: access logs write "-" for no bytes
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not an integer")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            number = float(text)  # "200.0"; raises for "abc"
            if not number.is_integer():
                raise ValueError("not an integer") from None
            return int(number)
    if isinstance(value, int):
        return value
    raise TypeError("not a number")


def integer_converter(ch_type: str, lo: int, hi: int) -> Converter:
    def convert(column: str, values: list[Any]) -> Converted:
        out = list(values)
        bad: dict[int, str] = {}
        for i, v in enumerate(values):
            if type(v) is int and lo <= v <= hi:
                continue
            try:
                n = _integer(v)
                if not lo <= n <= hi:
                    raise ValueError("out of range")
                out[i] = n
            except (ValueError, TypeError, OverflowError):
                bad[i] = f"{column}: cannot convert {_short(v)} to {ch_type}"
        return out, bad, {}

    return convert


def _float(value: Any) -> float:
    if value is None or value == "" or value == "-":
        return 0.0
    if isinstance(value, str):
        return float(value.strip())
    if isinstance(value, int | float):
        return float(value)
    raise TypeError("not a number")


def float_converter(ch_type: str, limit: float) -> Converter:
    def convert(column: str, values: list[Any]) -> Converted:
        out = list(values)
        bad: dict[int, str] = {}
        for i, v in enumerate(values):
            try:
                x = v if type(v) is float else _float(v)
                if -limit <= x <= limit or not math.isfinite(x):
                    out[i] = x
                    continue
            except (ValueError, TypeError, OverflowError):
                pass
            bad[i] = f"{column}: cannot convert {_short(v)} to {ch_type}"
        return out, bad, {}

    return convert


_V6_ZERO = bytes(16)
_V4_MAPPED = bytes(10) + b"\xff\xff"


def convert_ip(column: str, values: list[Any]) -> Converted:
    """IPv4/IPv6 text -> the 16 bytes of an IPv6 column (IPv4 mapped); absent or invalid -> '::'.

    The bytes go on the wire as FixedString(16), which the server converts to IPv6 for
    free (clickhouse-connect's own IPv6 encoder re-parses every address in Python).
    An invalid address is not a reason to lose the row: the column gets '::' and the
    raw text is kept in `extra` under the field's name.
    """
    out: list[Any] = [_V6_ZERO] * len(values)
    spill: dict[int, str] = {}
    for i, v in enumerate(values):
        if not v or v == "-":
            continue
        if type(v) is str:
            try:
                out[i] = _V4_MAPPED + _inet_pton(_V4, v)
                continue
            except OSError:
                try:
                    out[i] = _inet_pton(_V6, v.split("%", 1)[0])  # drop a zone id
                    continue
                except OSError:
                    pass
        spill[i] = _text(v)
    return out, {}, spill


def convert_tags(column: str, values: list[Any]) -> Converted:
    out: list[Any] = []
    append = out.append
    for v in values:
        if type(v) is list:
            for tag in v:
                if type(tag) is not str:
                    append([_text(t) for t in v])
                    break
            else:
                append(v)
        elif v is None:
            append([])
        elif isinstance(v, tuple | set):
            append([_text(t) for t in v])
        else:
            append([_text(v)])
    return out, {}, {}


# -- schemas ----------------------------------------------------------------------------

# The type a column's values are sent as, when cheaper to encode than the column's own type;
# ClickHouse converts on insert (Native input allows type conversion since 23.x).
_WIRE_TYPES = {
    "LowCardinality(String)": "String",
    "Array(LowCardinality(String))": "Array(String)",
    "IPv6": "FixedString(16)",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    path: Path
    convert: Converter

    @property
    def wire_type(self) -> str:
        return _WIRE_TYPES.get(self.type, self.type)


def _col(name: str, ch_type: str, path: str | None = None) -> Column:
    converters: dict[str, Converter] = {
        "DateTime64(3, 'UTC')": convert_timestamp,
        "String": convert_string,
        "LowCardinality(String)": convert_string,
        "UInt8": integer_converter("UInt8", 0, 2**8 - 1),
        "UInt16": integer_converter("UInt16", 0, 2**16 - 1),
        "UInt32": integer_converter("UInt32", 0, 2**32 - 1),
        "UInt64": integer_converter("UInt64", 0, 2**64 - 1),
        "Int64": integer_converter("Int64", -(2**63), 2**63 - 1),
        "Float32": float_converter("Float32", _FLT_MAX),
        "Float64": float_converter("Float64", math.inf),
        "IPv6": convert_ip,
        "Array(LowCardinality(String))": convert_tags,
    }
    return Column(name, ch_type, tuple((path or name).split(".")), converters[ch_type])


TS = "DateTime64(3, 'UTC')"
LC = "LowCardinality(String)"
EXTRA_COLUMN = "extra"
EXTRA_TYPE = "Map(String, String)"

COMMON: tuple[Column, ...] = (
    _col("timestamp", TS, "@timestamp"),
    _col("event_id", "String"),
    _col("host", LC),
    _col("message", "String"),
    _col("source_path", LC, "source.path"),
    _col("k8s_namespace", LC, "kubernetes.namespace"),
    _col("k8s_pod", "String", "kubernetes.pod"),
    _col("k8s_container", LC, "kubernetes.container"),
    _col("k8s_node", LC, "kubernetes.node"),
    _col("tags", "Array(LowCardinality(String))"),
)
_EVENT_ID = [c.name for c in COMMON].index("event_id")
GEO: tuple[Column, ...] = (
    _col("country", LC, "geoip.country_iso_code"),
    _col("city", "String", "geoip.city_name"),
    _col("latitude", "Float32", "geoip.location.lat"),
    _col("longitude", "Float32", "geoip.location.lon"),
)


@dataclass(frozen=True)
class TableSchema:
    """One table shape: its columns (event paths and types) and its sort key."""

    key: str  # the value of {log_type} in the table template
    columns: tuple[Column, ...]
    order_by: tuple[str, ...]
    # Top-level event keys the columns consume; for nested paths, parent -> sub-key -> the leaf
    # keys consumed under it (None when the sub-key itself is the leaf).
    named: frozenset[str] = field(init=False)
    nested: dict[str, dict[str, frozenset[str] | None]] = field(init=False)
    # Caches of `_extra`'s decisions per event shape, and per object shape under a nested key.
    plans: dict[tuple[str, ...], _Plan] = field(init=False, repr=False, compare=False)
    sub_plans: dict[tuple[str, ...], _SubPlan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plans", {})
        object.__setattr__(self, "sub_plans", {})
        named = {"log_type"} if self.key != "other" else set()
        nested: dict[str, dict[str, set[str] | None]] = {}
        for column in self.columns:
            path = column.path
            if len(path) == 1:
                named.add(path[0])
                continue
            subs = nested.setdefault(path[0], {})
            if len(path) == 2:
                subs[path[1]] = None
            else:
                leaves = subs.setdefault(path[1], set())
                assert leaves is not None and len(path) == 3, f"unsupported column path {path}"
                leaves.add(path[2])
        object.__setattr__(self, "named", frozenset(named))
        object.__setattr__(
            self,
            "nested",
            {
                k: {sk: (frozenset(v) if v is not None else None) for sk, v in subs.items()}
                for k, subs in nested.items()
            },
        )

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns] + [EXTRA_COLUMN]

    @property
    def types(self) -> list[str]:
        return [c.type for c in self.columns] + [EXTRA_TYPE]

    @property
    def wire_types(self) -> list[str]:
        return [c.wire_type for c in self.columns] + [EXTRA_TYPE]

    def ddl(self, database: str, table: str, *, dedup: bool, retention_days: int) -> str:
        cols = ",\n  ".join(f"`{n}` {t}" for n, t in zip(self.names, self.types, strict=True))
        order = self.order_by + (("event_id",) if dedup else ())
        engine = "ReplacingMergeTree" if dedup else "MergeTree"
        ttl = f"\nTTL toDateTime(timestamp) + INTERVAL {retention_days} DAY" if retention_days else ""
        # non_replicated_deduplication_window: makes insert_deduplication_token work on a plain
        # MergeTree, so a retried insert (same rows, same token) is not stored twice.
        settings = "non_replicated_deduplication_window = 1000"
        if retention_days:
            settings += ", ttl_only_drop_parts = 1"  # whole day partitions expire: drop, don't rewrite
        return (
            f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` (\n  {cols}\n)\n"
            f"ENGINE = {engine}\nPARTITION BY toYYYYMMDD(timestamp)\nORDER BY ({', '.join(order)})"
            f"{ttl}\nSETTINGS {settings}"
        )

    def add_missing_columns(self, database: str, table: str, existing: set[str]) -> list[str]:
        """`ALTER TABLE ... ADD COLUMN` for columns a table made by an older version lacks (metadata only)."""
        return [
            f"ALTER TABLE `{database}`.`{table}` ADD COLUMN IF NOT EXISTS `{n}` {t}"
            for n, t in zip(self.names, self.types, strict=True)
            if n not in existing
        ]


# Field names follow parsers/formats (access.py, error.py, application.py) and parsers/geoip.py.
SCHEMAS: dict[str, TableSchema] = {
    "application": TableSchema(
        "application",
        (
            *COMMON,
            _col("level", LC),
            _col("logger", LC),
            _col("thread", "String"),
            # The application parser puts exceptions under `error` (parsers/formats/application.py).
            _col("error_type", LC, "error.type"),
            _col("error_message", "String", "error.message"),
            _col("stack_trace", "String", "error.stack_trace"),
            _col("request_id", "String"),
            _col("trace_id", "String"),
            _col("span_id", "String"),
            _col("service", LC),
        ),
        order_by=("level", "timestamp"),
    ),
    "access": TableSchema(
        "access",
        (
            *COMMON,
            _col("client_ip", "IPv6"),
            _col("user", "String"),
            _col("method", LC),
            _col("path", "String"),
            _col("query", "String"),
            _col("http_version", LC),
            _col("status", "UInt16"),
            _col("bytes", "UInt64"),
            _col("referrer", "String"),
            _col("user_agent", "String"),
            _col("x_forwarded_for", "String"),
            _col("request_time", "Float32"),
            _col("upstream_connect_time", "Float32"),
            _col("upstream_header_time", "Float32"),
            _col("upstream_response_time", "Float32"),
            _col("upstream_addr", "String"),
            _col("upstream_status", LC),
            _col("upstream_cache_status", LC),
            *GEO,
        ),
        order_by=("status", "timestamp"),
    ),
    "error": TableSchema(
        "error",
        (
            *COMMON,
            _col("level", LC),
            _col("pid", "UInt32"),
            _col("tid", "UInt64"),
            _col("connection_id", "UInt64"),
            _col("client_ip", "IPv6"),
            _col("client_port", "UInt16"),
            _col("server", LC),
            _col("request", "String"),
            _col("method", LC),
            _col("path", "String"),
            _col("query", "String"),
            _col("http_version", LC),
            _col("upstream", "String"),
            _col("host_header", LC),
            _col("referrer", "String"),
            _col("module", LC),
            _col("error_code", LC),
            _col("os_error", "String"),
            *GEO,
        ),
        order_by=("level", "timestamp"),
    ),
    "other": TableSchema(
        "other",
        (
            *COMMON,
            _col("log_type", LC),
            _col("level", LC),
        ),
        order_by=("log_type", "timestamp"),
    ),
}


def schema_key(log_type: Any) -> str:
    return log_type if type(log_type) is str and log_type in SCHEMAS and log_type != "other" else "other"


# -- events -> columns --------------------------------------------------------------------


def _pluck(events: Sequence[Event], path: Path, cache: dict[Path, list[Any]]) -> list[Any]:
    """The values at `path` of every event (None where absent); parents are plucked once per batch."""
    values = cache.get(path)
    if values is not None:
        return values
    if len(path) == 1:
        values = get_each(events, path[0])
    else:
        parents = _pluck(events, path[:-1], cache)
        # No event of the batch has the parent object (no geoip, no kubernetes): all None, in a C loop.
        absent = parents.count(None) == len(parents)
        values = [None] * len(parents) if absent else get_each(parents, path[-1])
    cache[path] = values
    return values


def get_each(objects: Sequence[Any], key: str) -> list[Any]:
    """`object.get(key)` of each object, None for one that is not a dict."""
    try:
        return list(map(dict.get, objects, repeat(key)))  # no bytecode per object
    except TypeError:  # some are not dicts (None, a string where an object was expected)
        return [o.get(key) if type(o) is dict else None for o in objects]


# What `_extra` does with an event of a given shape (its keys, in order): per key that no column
# consumes, the key and, for an object some columns read from, its sub-keys' plans.
_Plan = tuple[tuple[str, "dict[str, frozenset[str] | None] | None"], ...]
_SubPlan = tuple[tuple[str, str, "frozenset[str] | None"], ...]
_PLANS_MAX = 4096  # distinct shapes remembered per table; past it the cache starts over


def _plan(schema: TableSchema, shape: tuple[str, ...]) -> _Plan:
    named = schema.named
    return tuple((k, schema.nested.get(k)) for k in shape if k not in named)


def _sub_plan(key: str, subs: dict[str, frozenset[str] | None], shape: tuple[str, ...]) -> _SubPlan:
    """Per sub-key: its dotted name, and the leaves that make it consumed when it is an object whose
    keys all have columns (geoip.location); sub-keys that are consumed leaves are left out."""
    plan: list[tuple[str, str, frozenset[str] | None]] = []
    for sk in shape:
        if sk in subs:
            leaves = subs[sk]
            if leaves is None:
                continue  # a column holds it
            plan.append((sk, f"{key}.{sk}", leaves))
        else:
            plan.append((sk, f"{key}.{sk}", None))
    return tuple(plan)


def _extra(schema: TableSchema, events: Sequence[Event]) -> list[dict[str, str]]:
    """Per event, the fields no column holds, as text (nested ones under dotted keys).

    Which keys those are depends only on the event's shape (its keys, in order), and a source's
    events share a few shapes: the decision is made once per shape (`_plan`), not per key and
    event. Keys keep the event's order."""
    plans = schema.plans
    sub_plans = schema.sub_plans
    out: list[dict[str, str]] = []
    append = out.append
    for e in events:
        shape = tuple(e)
        plan = plans.get(shape)
        if plan is None:
            if len(plans) >= _PLANS_MAX:
                plans.clear()
            plan = plans[shape] = _plan(schema, shape)
        if not plan:
            append(_EMPTY)
            continue
        extra: dict[str, str] = {}
        for k, subs in plan:
            v = e[k]
            if subs is not None and type(v) is dict:
                sub_shape = (k, *v)
                sub_plan = sub_plans.get(sub_shape)
                if sub_plan is None:
                    if len(sub_plans) >= _PLANS_MAX:
                        sub_plans.clear()
                    sub_plan = sub_plans[sub_shape] = _sub_plan(k, subs, sub_shape[1:])
                for sk, dotted, leaves in sub_plan:
                    sv = v[sk]
                    # An object whose keys all have columns (geoip.location) is consumed.
                    if leaves is not None and type(sv) is dict and leaves.issuperset(sv):
                        continue
                    extra[dotted] = sv if type(sv) is str else str(sv) if type(sv) is int else _text(sv)
                continue
            extra[k] = v if type(v) is str else str(v) if type(v) is int else _text(v)
        append(extra if extra else _EMPTY)
    return out


def _derive_ids(ids: list[Any], events: Sequence[Event]) -> None:
    """A content hash for events without an event_id (stdin, foreign producers): the same event
    replayed gets the same id, so ReplacingMergeTree collapses it; only events equal in every field share one."""
    for i, value in enumerate(ids):
        if value == "":
            body = orjson.dumps(events[i], default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
            ids[i] = "h-" + hashlib.blake2b(body, digest_size=12).hexdigest()


@dataclass
class Rows:
    """A batch converted for one table: column-oriented data, and which events it holds."""

    columns: list[list[Any]]
    indices: list[int]  # positions of these rows in the events given to `to_columns`
    rejected: list[tuple[int, str]]

    def take(self, positions: Sequence[int]) -> Rows:
        """The rows at `positions` (positions into this Rows, not into the events)."""
        return Rows([[col[p] for p in positions] for col in self.columns], [self.indices[p] for p in positions], [])

    def __len__(self) -> int:
        return len(self.indices)


def _convert(column: Column, values: list[Any]) -> Converted:
    """The column's converter over `values`; a field no event of the batch has (upstream timings, geoip,
    kubernetes on plain access logs) takes the converter's value for one absent field, repeated,
    found by a C loop instead of a converter step per row. (A column that rejects an absent value,
    the timestamp, goes the row-by-row way and says so for each row.)"""
    if values and values.count(None) == len(values):
        one, bad, spill = column.convert(column.name, [None])
        if not bad and not spill:
            return one * len(values), {}, {}
    return column.convert(column.name, values)


def to_columns(schema: TableSchema, events: Sequence[Event], indices: Sequence[int] | None = None) -> Rows:
    """Convert events to the schema's column types; rows with an unconvertible value are rejected."""
    columns: list[list[Any]] = []
    bad: dict[int, str] = {}
    spills: list[tuple[str, dict[int, str]]] = []
    plucked: dict[Path, list[Any]] = {}
    for column in schema.columns:
        values, col_bad, spill = _convert(column, _pluck(events, column.path, plucked))
        columns.append(values)
        for i, reason in col_bad.items():
            bad.setdefault(i, reason)
        if spill:
            spills.append((".".join(column.path), spill))
    ids = columns[_EVENT_ID]
    if "" in ids:
        _derive_ids(ids, events)
    extra = _extra(schema, events)
    for key, spill in spills:
        for i, raw in spill.items():
            extra[i] = {**extra[i], key: raw}  # copy: never mutate a shared empty map
    columns.append(extra)
    idx = list(indices) if indices is not None else list(range(len(events)))
    rows = Rows(columns, idx, [])
    if bad:
        keep = [p for p in range(len(events)) if p not in bad]
        rows = rows.take(keep)
        rows.rejected = [(idx[p], reason) for p, reason in sorted(bad.items())]
    return rows
