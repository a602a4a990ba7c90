"""Receipts: explicit, reference-counted settlement of batches.

A source creates one receipt per batch with a release callback. Fan-out to N
downstream branches derives N children; the parent is released when the last
child settles. Python's GC gives no timely finaliser, so every receipt is
settled by an explicit call, and settling twice raises (a bug, caught by the
receipt-leak guard in tests).

Status order (worst wins, as in Vector): DELIVERED < REJECTED. A rejected event
went to the dead-letter queue; that still counts as settled. "Retry" never
settles: sinks retry inside and only metrics see it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from pipeline.errors import DoubleSettleError


class Status(enum.IntEnum):
    DELIVERED = 0
    REJECTED = 1


ReleaseCallback = Callable[[Status], None]


class _LeakTracker:
    """Counts receipts that are alive and unsettled; the test guard reads it."""

    __slots__ = ("double_settles", "outstanding")

    def __init__(self) -> None:
        self.outstanding = 0
        self.double_settles = 0

    def reset(self) -> None:
        self.outstanding = 0
        self.double_settles = 0


TRACKER = _LeakTracker()


class Receipt:
    """The acknowledgement handle of one batch (or one branch of it)."""

    __slots__ = ("_on_release", "_parent", "_pending", "_settled", "_status")

    def __init__(self, on_release: ReleaseCallback | None = None) -> None:
        self._on_release = on_release
        self._parent: Receipt | None = None
        self._pending = 0  # children not yet settled, once derived
        self._status = Status.DELIVERED
        self._settled = False
        TRACKER.outstanding += 1

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def status(self) -> Status:
        return self._status

    def derive(self, n: int) -> list[Receipt]:
        """Split into n children; this receipt releases when all n have settled."""
        if self._settled or self._pending:
            raise DoubleSettleError("derive() on a receipt already settled or derived")
        if n <= 0:
            self.settle()
            return []
        children = []
        for _ in range(n):
            child = Receipt()
            child._parent = self
            children.append(child)
        self._pending = n
        return children

    def settle(self, status: Status = Status.DELIVERED) -> None:
        """Settle this receipt; a second call is a bug and raises."""
        if self._settled or self._pending:
            TRACKER.double_settles += 1
            raise DoubleSettleError("receipt settled twice")
        self._finish(status)

    def _finish(self, status: Status) -> None:
        self._settled = True
        TRACKER.outstanding -= 1
        if status > self._status:
            self._status = status
        parent = self._parent
        if parent is not None:
            self._parent = None
            parent._child_settled(self._status)
        elif self._on_release is not None:
            callback, self._on_release = self._on_release, None
            callback(self._status)

    def _child_settled(self, status: Status) -> None:
        if status > self._status:
            self._status = status
        self._pending -= 1
        if self._pending == 0:
            self._finish(self._status)
