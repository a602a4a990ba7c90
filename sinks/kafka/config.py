"""Config model of the `kafka` sink (agent role)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from pipeline.config import SinkConfig
from pipeline.event import DEFAULT_LOG_TYPE
from pipeline.kafka_common import KafkaConnectionOptions
from pipeline.units import ByteSize, Duration

DEFAULT_TOPIC = "{log_type}-logs"
STREAM_KEY = "{host}:{source.path}"  # the stream id, rendered by a fast path (records.stream_key)
BUILTIN_LOG_TYPES = ("application", "access", "error")

Compression = Literal["zstd", "lz4", "gzip", "snappy", "none"]
Acks = Annotated[Literal["all", "1", "0"], BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class KafkaSinkConfig(SinkConfig, KafkaConnectionOptions):
    type: Literal["kafka"]
    topic: str = Field(
        default=DEFAULT_TOPIC,
        description="Topic template: `{field}` / `{dotted.field}` from the event, `%Y %m %d %H` from its @timestamp.",
        examples=["{log_type}-logs", "logs-{kubernetes.namespace}"],
    )
    default_log_type: str = Field(
        default=DEFAULT_LOG_TYPE,
        min_length=1,
        description="Value used for `{log_type}` (in `topic`, and in the "
        "`log_type` header) when an event has no log_type, so unclassified lines land in an existing topic. "
        "The same default in every sink (and the kafka source reads the header back).",
        examples=["application", "unknown"],
    )
    key: str | None = Field(
        default=None,
        description="Record key template. null (default): no key; each send goes to the next partition of "
        "its topic in turn, so a busy file's records spread over every partition and a processor group shares "
        "the load. A send's records (batch.max_events) stay together, in order, in one partition; across sends "
        "there is no order (events carry their @timestamp). A template keys each record: records with one key go "
        "to one partition, in order, but one busy stream then loads one partition and one processor. "
        "`{host}:{source.path}` is the stream id (`host` alone for events without a path); other templates "
        "render missing fields as `unknown`. See docs/sinks.md.",
        examples=[None, "{host}:{source.path}", "{kubernetes.container_id}"],
    )
    compression: Compression = Field(
        default="zstd", description="Record batch compression codec.", examples=["zstd", "lz4"]
    )
    acks: Acks = Field(
        default="all",
        description="Broker acknowledgements a send waits for: all (every in-sync "
        "replica), 1 (the leader), 0 (none: at-most-once). Idempotence requires all.",
        examples=["all"],
    )
    enable_idempotence: bool = Field(
        default=True,
        description="Idempotent producer: the broker drops "
        "duplicates of a batch the producer retried itself (needs acks: all).",
    )
    max_batch_bytes: ByteSize = Field(
        default=512 * 1024,
        gt=0,
        description="Upper bound of one record batch (one partition, before "
        "compression). Keep it at or below the broker's message.max.bytes (1 MiB by default): a batch of several "
        "records never fails for size then, and only a record too large on its own goes to the DLQ.",
        examples=["512KiB"],
    )
    max_request_bytes: ByteSize = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest record (key + value + headers) sent: the broker's message.max.bytes (1 MiB "
        "by default) or less. A larger event has its `message` cut so the record fits, and is tagged "
        "`_truncated` (a line the file source cut at its max_line_bytes, 1 MiB by default, loses a few hundred "
        "bytes more); only an event too large without its message goes to the dead-letter queue.",
        examples=["1MiB"],
    )
    delivery_timeout: Duration = Field(
        default=120.0,
        gt=0,
        description="How long a send waits for the broker to acknowledge its records (the client retries "
        "on its own meanwhile). Past it the send fails and is retried with backoff by a fresh producer; the old "
        "one is discarded without sending what it still holds. A record the broker wrote without acknowledging "
        "is then written twice (at-least-once). At least `request_timeout`.",
        examples=["2m"],
    )
    create_topics: bool = Field(
        default=False,
        description="Create the topics in `topics_to_create` at start (existing ones are kept), and "
        "any other topic the template renders on first use. false: a topic in `topics_to_create` that does not "
        "exist is an error at start, and events for any other missing topic go to the DLQ.",
    )
    topic_partitions: int = Field(
        default=3,
        gt=0,
        description="Partitions of created topics: the most processors of one group that can share a topic.",
        examples=[12],
    )
    topic_replication_factor: int | None = Field(
        default=None,
        gt=0,
        description="Replicas of created topics. Unset: 3, or the number of brokers when fewer.",
        examples=[3],
    )
    topics_to_create: list[str] | None = Field(
        default=None,
        description="The concrete topics the template produces: created at start with "
        "`create_topics`, otherwise checked to exist at start. Default: the template rendered for the log types "
        "application, access and error (with the default template: application-logs, access-logs, error-logs).",
        examples=[["application-logs", "access-logs", "error-logs"]],
    )

    def max_event_bytes(self) -> int | None:
        """The largest record (JSON event, key and headers) sent unchanged; a larger event's message is cut."""
        return self.max_request_bytes

    @model_validator(mode="after")
    def _delivery_after_request(self) -> KafkaSinkConfig:
        if self.delivery_timeout < self.request_timeout:
            raise ValueError(
                f"delivery_timeout ({self.delivery_timeout:g}s) must be at least request_timeout "
                f"({self.request_timeout:g}s)"
            )
        return self

    @model_validator(mode="after")
    def _idempotence_needs_acks_all(self) -> KafkaSinkConfig:
        if self.enable_idempotence and self.acks != "all":
            raise ValueError(
                f"enable_idempotence requires acks: all (set enable_idempotence: false to use acks: {self.acks})"
            )
        return self
