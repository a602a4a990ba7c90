"""The contiguous-release watermark, against a brute-force model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.watermark import Watermark


class TestWatermark:
    def test_out_of_order_releases_only_contiguously(self) -> None:
        w = Watermark(0)
        assert w.release(10, 20) == 0
        assert w.release(20, 30) == 0
        assert w.release(0, 10) == 30
        assert w.gaps == 0

    def test_replayed_range_does_not_move_back(self) -> None:
        w = Watermark(50)
        assert w.release(0, 10) == 50

    def test_reset_on_truncation(self) -> None:
        w = Watermark(0)
        w.release(5, 9)
        w.reset(0)
        assert w.gaps == 0 and w.position == 0

    @given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=40), st.randoms())
    def test_matches_brute_force_prefix(self, sizes: list[int], rnd: object) -> None:
        bounds = []
        pos = 0
        for size in sizes:
            bounds.append((pos, pos + size))
            pos += size
        order = list(range(len(bounds)))
        rnd.shuffle(order)  # type: ignore[attr-defined]
        w = Watermark(0)
        released: set[int] = set()
        for i in order:
            got = w.release(*bounds[i])
            released.add(i)
            prefix = 0
            while prefix in released:
                prefix += 1
            expected = bounds[prefix - 1][1] if prefix else 0
            assert got == expected
        assert w.position == pos
