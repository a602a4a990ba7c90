"""Receipts: explicit settlement, fan-out, release only when every branch settled."""

from __future__ import annotations

import pytest

from pipeline.acks import TRACKER, Receipt, Status
from pipeline.errors import DoubleSettleError


class TestReceipt:
    def test_release_is_called_once_on_settle(self) -> None:
        released: list[Status] = []
        r = Receipt(released.append)
        r.settle()
        assert released == [Status.DELIVERED]
        assert r.settled

    def test_fan_out_to_three_releases_only_after_the_third(self) -> None:
        released: list[Status] = []
        parent = Receipt(released.append)
        a, b, c = parent.derive(3)
        a.settle()
        b.settle()
        assert released == []
        c.settle()
        assert released == [Status.DELIVERED]

    def test_worst_status_wins(self) -> None:
        released: list[Status] = []
        parent = Receipt(released.append)
        a, b = parent.derive(2)
        a.settle(Status.REJECTED)
        b.settle(Status.DELIVERED)
        assert released == [Status.REJECTED]

    @pytest.mark.allow_unsettled
    def test_a_branch_that_never_settles_holds_the_receipt(self) -> None:
        released: list[Status] = []
        parent = Receipt(released.append)
        a, _never = parent.derive(2)
        a.settle()
        assert released == []
        assert TRACKER.outstanding == 2  # the parent and the unsettled branch

    @pytest.mark.allow_unsettled
    def test_double_settle_raises(self) -> None:
        r = Receipt()
        r.settle()
        with pytest.raises(DoubleSettleError):
            r.settle()

    def test_nested_derivation_releases_the_root(self) -> None:
        released: list[Status] = []
        root = Receipt(released.append)
        left, right = root.derive(2)
        l1, l2 = left.derive(2)
        for child in (l1, right, l2):
            child.settle()
        assert released == [Status.DELIVERED]

    def test_derive_zero_settles_immediately(self) -> None:
        released: list[Status] = []
        Receipt(released.append).derive(0)
        assert released == [Status.DELIVERED]
