"""Turn a batch of events into Kafka records grouped by topic and key, in one loop.

Pure (no I/O): the sink resolves partitions from broker metadata afterwards,
once per distinct key rather than once per record, because the partitioner
(murmur2, as the Java client) is pure Python and costs ~10 us per call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from pipeline.event import EncodedEvents, Event, Events
from pipeline.template import Template
from sinks.encoding import ENCODE_ERRORS, fit_message, unencodable
from sinks.kafka.config import STREAM_KEY

Headers = list[tuple[str, bytes]]
# (index in the send, value, headers); the key is the group's.
Record = tuple[int, bytes, Headers]
KeyFn = Callable[[Event], "bytes | None"]

_OPTS = orjson.OPT_NON_STR_KEYS
# Bytes a record adds besides key, value and header payloads (varints, attributes, header names):
# a cheap bound that lets `encode` skip the exact estimate for all but near-limit records.
_OVERHEAD_BOUND = 128
_FIELD = re.compile(r"\{[^}]*\}")


@dataclass
class Encoded:
    """Records of one send by topic, then by key; and the events rejected before sending."""

    groups: dict[str, dict[bytes | None, list[Record]]] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    truncated: int = 0  # records whose message was cut to fit max_request_bytes


def stream_key(event: Event) -> bytes | None:
    """The stream id `host:source.path`; `host` alone for events without a path; None without either."""
    host = event.get("host")
    source = event.get("source")
    path = source.get("path") if isinstance(source, dict) else None
    if path:
        return f"{host or ''}:{path}".encode()
    if host:
        return str(host).encode()
    return None


class RecordEncoder:
    """Renders topic, key, value (orjson of the event) and headers (log_type, host, event_id)."""

    def __init__(self, topic: str, key: str | None, default_log_type: str, max_request_bytes: int) -> None:
        self.default_log_type = default_log_type
        self.max_request_bytes = max_request_bytes
        self._topic_template = Template(topic, missing="unknown", strict_dates=True)  # ValueError when malformed
        self._uses_log_type = "{log_type}" in topic
        # The common case, a template of log_type alone, becomes a dict lookup per event.
        self._by_log_type: dict[str, str] | None = (
            {}
            if self._uses_log_type and not _FIELD.search(topic.replace("{log_type}", "")) and "%" not in topic
            else None
        )
        self._topic_source = topic
        self._key_fn = self._key_function(key)
        self._headers: dict[str, dict[str, tuple[str, bytes]]] = {"log_type": {}, "host": {}}

    @staticmethod
    def _key_function(key: str | None) -> KeyFn | None:
        if key is None or key == "":
            return None
        if key == STREAM_KEY:
            return stream_key
        template = Template(key, missing="unknown", strict_dates=True)
        return lambda event: template.render(event).encode()

    def topic_for(self, event: Event) -> str:
        log_type = event.get("log_type") or self.default_log_type
        cache = self._by_log_type
        if cache is not None:
            topic = cache.get(log_type)
            if topic is None:
                topic = cache[log_type] = self._topic_source.replace("{log_type}", str(log_type))
            return topic
        if self._uses_log_type and not event.get("log_type"):
            return self._topic_template.render({**event, "log_type": log_type})
        return self._topic_template.render(event)

    def topics_for_log_types(self, log_types: tuple[str, ...]) -> list[str]:
        """The concrete topics the template yields for these log types (for `topics_to_create`)."""
        return sorted({self.topic_for({"log_type": lt}) for lt in log_types})

    def _header(self, name: str, value: Any) -> tuple[str, bytes]:
        """A (name, value bytes) header pair, cached per name: log types and hosts take few values."""
        text = value if type(value) is str else str(value)
        cache = self._headers[name]
        pair = cache.get(text)
        if pair is None:
            if len(cache) > 4096:  # unbounded variety (odd hosts): start over rather than grow
                cache.clear()
            pair = cache[text] = (name, text.encode())
        return pair

    def encode(self, events: Events) -> Encoded:
        """One loop: per event a topic (cached per log type), a key, the JSON value, and headers
        whose log_type/host pairs are shared objects; only event_id is encoded per event.

        Events a worker process encoded (`EncodedEvents`) keep their JSON as the value: the
        same bytes encoding their decoded events again would give, without that work."""
        values: list[bytes] | None = None
        if isinstance(events, EncodedEvents):
            values = events.lines()
            events = events.decoded(values)  # split once, for both
        out = Encoded()
        groups = out.groups
        key_fn = self._key_fn
        stream_keys = key_fn is stream_key
        dumps = orjson.dumps
        header = self._header
        by_log_type = self._by_log_type
        constant_topic = self._topic_source if self._topic_template.is_constant else None
        limit = self.max_request_bytes - _OVERHEAD_BOUND
        default_log_type = self.default_log_type
        for i, event in enumerate(events):
            get = event.get
            log_type = get("log_type") or default_log_type
            if constant_topic is not None:
                topic = constant_topic
            elif by_log_type is not None and log_type in by_log_type:
                topic = by_log_type[log_type]
            else:
                topic = self.topic_for(event)
            host = get("host")
            try:
                if stream_keys:  # stream_key(), inlined: it runs once per event
                    source = get("source")
                    path = source.get("path") if type(source) is dict else None
                    key = f"{host or ''}:{path}".encode() if path else str(host).encode() if host else None
                else:
                    key = key_fn(event) if key_fn is not None else None
                value = dumps(event, default=str, option=_OPTS) if values is None else values[i]
                headers: Headers = [header("log_type", log_type)]
                if host is not None:
                    headers.append(header("host", host))
                event_id = get("event_id")
                if event_id is not None:
                    headers.append(("event_id", str(event_id).encode()))
            except ENCODE_ERRORS as exc:  # the same every time: dead-letter it, never retry the send
                out.rejected.append((i, unencodable(exc)))
                continue
            if len(value) + (len(key) if key else 0) > limit:
                size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
                if size > self.max_request_bytes:
                    # Too large for one request: cut the message so the record fits (tagged _truncated).
                    fitted = fit_message(event, value, len(value) - (size - self.max_request_bytes))
                    if fitted is None:
                        out.rejected.append(
                            (
                                i,
                                f"record of {size} bytes exceeds max_request_bytes ({self.max_request_bytes}) "
                                f"even with its message cut; topic {topic}",
                            )
                        )
                        continue
                    value = fitted[1]
                    out.truncated += 1
            by_key = groups.get(topic)
            if by_key is None:
                by_key = groups[topic] = {}
            records = by_key.get(key)
            if records is None:
                by_key[key] = [(i, value, headers)]
            else:
                records.append((i, value, headers))
        return out
