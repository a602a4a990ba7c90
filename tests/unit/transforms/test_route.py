"""The `route` transform's decisions (the topology's handling of its outputs is in test_topology.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.transforms.route import RouteTransformConfig

from .conftest import Build


class TestRoute:
    def test_outputs_in_config_order_with_unmatched_last(self) -> None:
        cfg = RouteTransformConfig.model_validate({"type": "route", "inputs": ["x"], "routes": {
            "errors": {"field": "level", "equals": "ERROR"}, "slow": {"field": "t", "gt": 1}}})
        assert cfg.output_names() == ("errors", "slow", "_unmatched")

    def test_an_event_takes_every_matching_route(self, build: Build) -> None:
        t = build("route", routes={"errors": {"field": "level", "equals": "ERROR"}, "slow": {"field": "t", "gt": 1}})
        slow_error, slow, plain = {"level": "ERROR", "t": 2}, {"level": "INFO", "t": 5}, {"level": "INFO", "t": 0}
        errors, slows, unmatched = t.route([slow_error, slow, plain])
        assert errors == [slow_error] and slows == [slow_error, slow] and unmatched == [plain]

    @pytest.mark.parametrize("name", ["_unmatched", "_x", "a.b", ""])
    def test_reserved_or_dotted_route_names_are_refused(self, name: str) -> None:
        with pytest.raises(ValidationError, match="route name"):
            RouteTransformConfig.model_validate(
                {"type": "route", "inputs": ["x"], "routes": {name: {"field": "a", "exists": True}}})
