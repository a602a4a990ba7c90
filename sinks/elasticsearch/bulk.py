"""Bulk requests: events -> NDJSON bodies under a size cap, and bulk responses -> per-event outcomes.

Pure (no I/O), so both halves are tested on their own.

Every action is `create` with `_id` = the event's `event_id` (when it has one):
a replayed event then meets its first copy and gets 409, which means it is
already there, i.e. delivered. Items failing with 429/502/503/504 or a rejected
execution are worth retrying (only those items); other item errors (mapping
conflicts, invalid documents, an ingest pipeline's failure) will fail the same
way every time and go to the dead-letter queue with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.event import Event
from pipeline.template import Template
from sinks.elasticsearch.client import OrjsonSerializer
from sinks.encoding import fit_message

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_TYPES = frozenset({"es_rejected_execution_exception", "circuit_breaking_exception"})
_DOC_LINE_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_RESPONSE_FILTER = "errors,took,items.*.status,items.*.error"
# How a filtered bulk response without item errors starts (Elasticsearch writes `errors` first).
_CLEAN_RESPONSE = b'{"errors":false,'
_ITEM_STATUS = b'"status":'
# The parts of an action after its index name: `,"_id":<id>` when the event has one, then the end.
_ID_KEY = b',"_id":'
_ACTION_END = b"}}\n"


@dataclass
class Chunk:
    """One bulk request body and, per action in it, the index of its event in the send."""

    body: bytes
    positions: list[int]
    truncated: int = 0  # documents in it whose message was cut to max_doc_bytes


class IndexNamer:
    """Renders the target index per event, caching by the values the template reads.

    A batch has few distinct (log_type, day) pairs, so the rendered (and lowercased,
    JSON-quoted) name is computed once per pair, not per event.
    """

    __slots__ = ("_cache", "_defaults", "_fields", "_one", "_stamp_len", "template")

    def __init__(self, template: Template, defaults: dict[str, str] | None = None) -> None:
        self.template = template
        # Values of fields the event lacks (log_type), for placeholders that have one.
        self._defaults = {k: v for k, v in (defaults or {}).items() if k in template.fields}
        source = template.source
        fields = template.fields
        # Caching needs the cache key to cover everything render() reads: top-level fields only.
        self._fields: tuple[str, ...] | None = fields if all("." not in f for f in fields) else None
        self._stamp_len = 13 if "%H" in source else 10 if "%" in source else 0
        # The common template reads one field ({log_type}): its key is built without a loop.
        self._one = fields[0] if self._fields is not None and len(fields) == 1 else None
        self._cache: dict[tuple[Any, ...], bytes] = {}

    def action_prefix(self, event: Event) -> bytes:
        """`{"create":{"_index":"<name>"` for this event."""
        fields = self._fields
        if fields is not None:
            stamp = None
            if self._stamp_len:
                ts = event.get("@timestamp")
                if type(ts) is not str or len(ts) < 13:
                    return self._render(event)  # no usable @timestamp: render() falls back to now
                stamp = ts[: self._stamp_len]
            one = self._one
            key = (event.get(one), stamp) if one is not None else (*[event.get(f) for f in fields], stamp)
            try:
                prefix = self._cache.get(key)
            except TypeError:  # an unhashable field value (a list): render without caching
                return self._render(event)
            if prefix is None:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                prefix = self._cache[key] = self._render(event)
            return prefix
        return self._render(event)

    def _render(self, event: Event) -> bytes:
        missing = {k: v for k, v in self._defaults.items() if not event.get(k)} if self._defaults else None
        name = self.template.render({**event, **missing} if missing else event).lower()
        return b'{"create":{"_index":' + orjson.dumps(name)


class BulkEncoder:
    """Events -> bulk bodies no larger than `max_bytes` (an action larger on its own goes alone).

    A document over `max_doc_bytes` has its message cut to fit and is tagged `_truncated`; one
    too large even without its message is rejected."""

    def __init__(
        self, namer: IndexNamer, max_bytes: int, id_field: str = "event_id", max_doc_bytes: int | None = None
    ) -> None:
        self.namer = namer
        self.max_bytes = max_bytes
        self.id_field = id_field
        self.max_doc_bytes = max_doc_bytes

    def encode(
        self,
        events: Sequence[Event],
        positions: Sequence[int] | None = None,
    ) -> tuple[list[Chunk], list[tuple[int, str]]]:
        """Returns the chunks, and the events that cannot be serialised at all (index, reason)."""
        chunks: list[Chunk] = []
        rejected: list[tuple[int, str]] = []
        parts: list[bytes] = []
        chunk_positions: list[int] = []
        truncated = 0
        size = 0
        limit = self.max_bytes
        max_doc = self.max_doc_bytes
        prefix_of = self.namer.action_prefix
        id_field = self.id_field
        dumps = orjson.dumps
        for n, event in enumerate(events):
            pos = positions[n] if positions is not None else n
            try:
                doc = dumps(event, default=str, option=_DOC_LINE_OPTS)  # ends with its newline
            except orjson.JSONEncodeError as exc:
                rejected.append((pos, f"serialization_error: {exc}"))
                continue
            if max_doc is not None and len(doc) > max_doc + 1:
                fitted = fit_message(event, doc[:-1], max_doc)
                if fitted is None:
                    rejected.append(
                        (
                            pos,
                            f"document_too_large: {len(doc) - 1} bytes over max_document_bytes ({max_doc}) "
                            "even with its message cut",
                        )
                    )
                    continue
                doc = fitted[1] + b"\n"
                truncated += 1
            prefix = prefix_of(event)
            event_id = event.get(id_field)
            if event_id is None or event_id == "":
                item = len(prefix) + len(_ACTION_END) + len(doc)
                action: tuple[bytes, ...] = (prefix, _ACTION_END, doc)
            else:
                if type(event_id) is not str:
                    event_id = str(event_id)
                try:
                    id_json = dumps(event_id)
                except orjson.JSONEncodeError as exc:
                    rejected.append((pos, f"serialization_error: _id: {exc}"))
                    continue
                item = len(prefix) + len(_ID_KEY) + len(id_json) + len(_ACTION_END) + len(doc)
                action = (prefix, _ID_KEY, id_json, _ACTION_END, doc)
            if parts and size + item > limit:
                chunks.append(Chunk(b"".join(parts), chunk_positions, truncated))
                parts, chunk_positions, size, truncated = [], [], 0, 0
            parts += action  # joined once per chunk: no bytes built per event
            chunk_positions.append(pos)
            size += item
        if parts:
            chunks.append(Chunk(b"".join(parts), chunk_positions, truncated))
        return chunks, rejected


@dataclass
class ItemOutcomes:
    """Per-item results of one or more bulk responses, accumulated."""

    created: int = 0
    duplicates: int = 0  # 409 on create: the document is already there (a replay)
    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    retry_causes: Counter[str] = field(default_factory=Counter)

    @property
    def retry_reason(self) -> str:
        """The most common cause among the retried items, for the retry metric's label."""
        if not self.retry_causes:
            return "item"
        return self.retry_causes.most_common(1)[0][0]


class BulkResponseError(Exception):
    """The response does not match the request (item count); the whole request should be retried."""


def response_filter() -> str:
    """`filter_path` keeping what classification reads: small responses for big bulks."""
    return _RESPONSE_FILTER


class BulkResponseSerializer(OrjsonSerializer):
    """Reads a filtered bulk response without item errors as `{"errors": false, "item_count": n}`.

    Such a response is a list of `{"create":{"status":201}}`, one per action: parsing
    it built two dicts per event (4000 for a bulk of 2000) only for classify() to count
    them, a few microseconds per event in a processor. Counting `"status":` in the bytes
    gives the same number: each item has exactly one, and with no errors nothing else
    in the body does. Any other response (errors, another shape) is parsed as usual."""

    def loads(self, data: bytes) -> Any:
        if data.startswith(_CLEAN_RESPONSE) and data.find(b"error", len(_CLEAN_RESPONSE)) < 0:
            return {"errors": False, "item_count": data.count(_ITEM_STATUS)}
        return super().loads(data)


def classify(response: Mapping[str, Any], positions: Sequence[int], out: ItemOutcomes) -> None:
    """Classify one bulk response's items into `out` (by the events' positions in the send)."""
    items = response.get("items")
    if not response.get("errors"):
        count = len(items) if items is not None else response.get("item_count")
        if count is not None and count != len(positions):
            raise BulkResponseError(f"bulk response has {count} items for {len(positions)} actions")
        out.created += len(positions)
        return
    if not isinstance(items, list) or len(items) != len(positions):
        count = len(items) if isinstance(items, list) else 0
        raise BulkResponseError(f"bulk response has {count} items for {len(positions)} actions")
    for pos, item in zip(positions, items, strict=True):
        result = item.get("create")
        if result is None:
            result = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        status = result.get("status", 0)
        if 200 <= status < 300:
            out.created += 1
            continue
        if status == 409:
            out.duplicates += 1
            continue
        error = result.get("error")
        etype = error.get("type", "") if isinstance(error, dict) else ""
        if status in RETRY_STATUSES or etype in RETRY_TYPES:
            out.retry.append(pos)
            out.retry_causes[etype or f"http_{status}"] += 1
            continue
        out.rejected.append((pos, item_reason(status, error)))


def item_reason(status: int, error: Any) -> str:
    """`<error.type>: <error.reason>`, plus the root cause when Elasticsearch gives one."""
    if not isinstance(error, dict):
        return f"http_{status}: {error}" if error else f"http_{status}"
    text = f"{error.get('type', f'http_{status}')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason"):
        text += f" (caused by {cause.get('type', '?')}: {cause['reason']})"
    return text if len(text) <= 1000 else text[:997] + "..."
