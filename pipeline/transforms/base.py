"""The Transform protocols: what the topology calls on a transform, once per batch.

A transform works on a whole batch in one loop and never raises on bad input
(it tags the event instead). It may return fewer events than it received
(filter, sample, throttle, dedupe): the topology counts the difference as
dropped, and the batch's receipt still covers the dropped events, so their
source positions are released once the rest settles (or at once, when nothing
is left). A transform with several named outputs (`route`) returns one list per
output instead; an event may be in several.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pipeline.event import Event


class Transform(Protocol):
    name: str

    def process(self, events: list[Event]) -> list[Event]:
        """Transform a batch in one loop; never raise on bad input (tag instead)."""
        ...


@runtime_checkable
class RoutingTransform(Protocol):
    name: str

    def route(self, events: list[Event]) -> list[list[Event]]:
        """One list per named output (the order of the config's `output_names()`), holding the input events.

        An event may be in several lists as the same object: the topology copies it for each output
        whose consumers could mutate it, and counts events in no output that is read as dropped.
        """
        ...
