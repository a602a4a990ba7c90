"""The Sink protocol and `Outcome`: what a sink tells the runtime about one send.

A sink only delivers and classifies. For every send it answers one of three
ways, and `pipeline.driver.SinkDriver` does the rest the same way for all sinks:

- return `Outcome()` (delivered): every event arrived;
- return an `Outcome` naming events to retry and events rejected for good
  (`rejected`: each goes to the dead-letter queue with its reason, which counts
  as settled);
- raise any exception: nothing is known to be delivered, the whole send is
  retried with backoff (see `pipeline.errors` for how the exception is logged).

Events come as a list of dicts. A sink that writes JSON lines anyway may set
`accepts_encoded = True`: it then also receives `pipeline.encoded.EncodedEvents`
(events a worker process already encoded) as they are, and can write their
bytes without decoding them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pipeline.event import Event


@dataclass
class Outcome:
    """Result of one send: indices to retry and (index, reason) rejected; the rest delivered."""

    retry: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    retry_reason: str = "item"

    @classmethod
    def delivered(cls) -> Outcome:
        return cls()

    @classmethod
    def reject_all(cls, count: int, reason: str) -> Outcome:
        """Every event of the send rejected for good, for one reason."""
        return cls(rejected=[(i, reason) for i in range(count)])


class Sink(Protocol):
    name: str

    async def start(self) -> None:
        """Connect and prepare (create topics, templates, tables); raise to be retried."""

    async def healthcheck(self) -> None:
        """Raise a descriptive error when the destination is unreachable."""

    async def send(self, events: list[Event]) -> Outcome:
        """Deliver events and classify what did not arrive; raise to retry the whole send."""
        ...

    async def aclose(self) -> None:
        """Flush and release connections (on every path, also when `start` never succeeded)."""
