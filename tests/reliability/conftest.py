"""Reliability tests: every test here is marked, and may use the real-service fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures, re-exported for this folder)
    alertmanager_url,
    es_url,
    kafka_bootstrap,
    kafka_topic,
    unique_name,
    victorialogs_url,
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.reliability)
