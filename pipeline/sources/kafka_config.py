"""Config model of the `kafka` source (processor role)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from pipeline.config import SourceConfig
from pipeline.kafka_common import KafkaConnectionOptions
from pipeline.units import ByteSize, Duration


class KafkaSourceConfig(SourceConfig, KafkaConnectionOptions):
    type: Literal["kafka"]
    log_type: str | None = Field(
        default=None,
        description="log_type set on events that arrive without one (the agent always sets it). Unset: the "
        "record's `log_type` header (the kafka sink writes it), else `application`, the default of every sink.",
        examples=["application"],
    )
    topics: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Topics to consume (or `topic_pattern`).",
        examples=[["application-logs", "access-logs"]],
    )
    topic_pattern: str | None = Field(
        default=None,
        description="Regex of the topics to consume (Python `re` syntax); new matching topics are picked up.",
        examples=[".*-logs"],
    )
    group_id: str = Field(
        min_length=1,
        description="Consumer group: processors with one group_id share the partitions.",
        examples=["pipeline-processor"],
    )
    start_from: Literal["earliest", "latest"] = Field(
        default="earliest", description="Where a group with no committed offset starts (auto_offset_reset)."
    )
    max_batch_records: int = Field(default=1000, gt=0, description="Records per batch at most (getmany max_records).")
    fetch_timeout: Duration = Field(default=0.5, gt=0, description="How long one poll waits for records.")
    commit_interval: Duration = Field(
        default=1.0,
        gt=0,
        description="Commit released offsets soon after batches settle, at most once per this interval "
        "(also at revocation and shutdown). After a crash, what was in flight plus at most this much "
        "settled data is consumed again.",
        examples=["1s"],
    )
    session_timeout: Duration = Field(
        default=10.0,
        gt=0,
        description="Group session timeout: a member silent this long (crashed) loses its partitions.",
        examples=["10s"],
    )
    heartbeat_interval: Duration = Field(
        default=3.0, gt=0, description="Heartbeat period (under a third of session_timeout)."
    )
    max_poll_interval: Duration = Field(
        default=300.0,
        gt=0,
        description="A member that does not poll this "
        "long leaves the group (this source keeps polling while backpressured).",
    )
    revoke_timeout: Duration = Field(
        default=5.0,
        ge=0,
        description="On a rebalance, how long to wait for the "
        "revoked partitions' in-flight batches before committing; what is not "
        "settled by then is consumed again by the new owner.",
    )
    fetch_max_bytes: ByteSize = Field(
        default=50 * 1024 * 1024, gt=0, description="Bytes one fetch returns at most.", examples=["50MiB"]
    )

    @model_validator(mode="after")
    def _one_subscription(self) -> KafkaSourceConfig:
        if (self.topics is None) == (self.topic_pattern is None):
            raise ValueError("set exactly one of topics or topic_pattern")
        if self.topic_pattern is not None:
            try:
                re.compile(self.topic_pattern)
            except re.error as exc:
                raise ValueError(f"topic_pattern: invalid regex: {exc}") from None
        if self.heartbeat_interval >= self.session_timeout:
            raise ValueError("heartbeat_interval must be shorter than session_timeout")
        return self
