"""Shared fixtures: the receipt-leak guard and small config helpers.

The guard is our stand-in for Vector's drop-based finalisers: any test that
leaves a receipt unsettled, or settles one twice, fails. A test that means to
leave receipts unsettled (a sink that never settles) says so with
`@pytest.mark.allow_unsettled`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.acks import TRACKER


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_unsettled: the test leaves receipts unsettled on purpose")


@pytest.fixture(autouse=True)
def receipt_leak_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    TRACKER.reset()
    yield
    if request.node.get_closest_marker("allow_unsettled"):
        return
    assert TRACKER.double_settles == 0, f"{TRACKER.double_settles} receipt(s) settled twice"
    assert TRACKER.outstanding == 0, f"{TRACKER.outstanding} receipt(s) left unsettled"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    """Write a YAML config (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write
