"""Build one transform from its options, as the topology would (registry model + factory)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline import registry
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.metrics import Metrics

Build = Callable[..., Any]


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def build(tmp_path: Path, metrics: Metrics) -> Build:
    def make(type_name: str, name: str = "t", **options: Any) -> Any:
        spec = registry.lookup("transform", type_name)
        assert spec is not None
        model = spec.model.model_validate({"type": type_name, "inputs": ["in"], **options})
        ctx = BuildContext(config=None, data_dir=tmp_path, host="h", dlq=DeadLetterQueue(tmp_path / "dlq"),  # type: ignore[arg-type]
                           metrics=metrics)
        return spec.factory(name, model, ctx)

    return make
