"""Per-target queue of undelivered notifications, coalesced per alert state.

Notifications are keyed by (fingerprint, startsAt, status): a newer `firing`
notification of an alert replaces an undelivered older one in place (only the
latest count matters; a target that is down gets one notification per alert when
it comes back, not one per update), while `resolved` and a later re-firing of the
same labels are separate entries, after it, in order.

Delivery takes a prefix (`peek`), sends it, then `ack`s it: an entry replaced
while its older version was in flight stays queued (its sequence number changed).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

Notification = dict[str, Any]
Key = tuple[str, str, str]
Entry = tuple[Key, int, Notification]


class Outbox:
    def __init__(self, limit: int = 10000) -> None:
        self.limit = limit
        self._items: OrderedDict[Key, tuple[int, Notification]] = OrderedDict()
        self._seq = 0
        self.dropped = 0  # oldest notifications dropped because the outbox was full
        self.changed = asyncio.Event()  # set on put; the delivery loop waits on it

    def __len__(self) -> int:
        return len(self._items)

    def put(self, note: Notification) -> None:
        key = (note["fingerprint"], note["startsAt"], note["status"])
        old = self._items.get(key)
        if old is not None and old[1]["kind"] == "firing" and note["kind"] != "firing":
            # The target has not seen this alert yet: it is still the first notification.
            note = {**note, "kind": "firing"}
        self._seq += 1
        self._items[key] = (self._seq, note)  # an existing key keeps its place
        while len(self._items) > self.limit:
            self._items.popitem(last=False)
            self.dropped += 1
        self.changed.set()

    def peek(self, n: int) -> list[Entry]:
        out: list[Entry] = []
        for key, (seq, note) in self._items.items():
            if len(out) >= n:
                break
            out.append((key, seq, note))
        return out

    def ack(self, entries: list[Entry]) -> None:
        """Remove delivered entries, unless a newer version replaced them meanwhile."""
        items = self._items
        for key, seq, _ in entries:
            current = items.get(key)
            if current is not None and current[0] == seq:
                del items[key]

    def snapshot(self) -> list[Notification]:
        return [note for _, note in self._items.values()]

    def restore(self, notes: list[Notification]) -> None:
        for note in notes:
            self.put(note)
