"""Transforms in the running topology: dropped and routed events settle, outputs are wired, source fields.

The receipt-leak guard (tests/conftest.py) fails any of these that leaves a receipt unsettled or
settles one twice; RELEASES shows each source batch released exactly once, with its worst status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest

from pipeline.acks import Receipt, Status
from pipeline.config import SinkConfig, SourceConfig, load_config
from pipeline.daemon import Daemon
from pipeline.errors import ConfigError
from pipeline.event import Batch
from pipeline.registry import register
from pipeline.sink import Outcome

RELEASES: list[tuple[int, Status]] = []
DELIVERED: dict[str, list[dict[str, Any]]] = {}


class LevelsSourceConfig(SourceConfig):
    type: Literal["test_levels"]
    batches: int = 6


class LevelsSource:
    """Batch b holds 4 events; batch 0 is all DEBUG (a filter drops it whole), the others mixed."""

    can_acknowledge = True

    def __init__(self, name: str, config: LevelsSourceConfig) -> None:
        self.name = name
        self.config = config

    async def run(self, ctx: Any) -> None:
        for b in range(self.config.batches):
            levels = ["DEBUG"] * 4 if b == 0 else ["DEBUG", "INFO", "ERROR", "WARNING"]
            events = [{"message": f"{b}-{i}", "level": lv, "n": b * 4 + i, "slow": i == 2}
                      for i, lv in enumerate(levels)]
            await ctx.emit(Batch(events, Receipt(lambda status, b=b: RELEASES.append((b, status)))))

    async def aclose(self) -> None:
        return None


@register("source", "test_levels", LevelsSourceConfig)
def _source(name: str, config: LevelsSourceConfig, ctx: Any) -> LevelsSource:
    return LevelsSource(name, config)


class CollectSinkConfig(SinkConfig):
    type: Literal["test_collect"]
    reject: bool = False


class CollectSink:
    def __init__(self, name: str, config: CollectSinkConfig) -> None:
        self.name = name
        self.config = config
        DELIVERED[name] = []

    async def start(self) -> None:
        return None

    async def healthcheck(self) -> None:
        return None

    async def send(self, events: list[dict[str, Any]]) -> Outcome:
        if self.config.reject:
            return Outcome.reject_all(len(events), "refused")
        DELIVERED[self.name].extend(events)
        return Outcome.delivered()

    async def aclose(self) -> None:
        return None


@register("sink", "test_collect", CollectSinkConfig)
def _sink(name: str, config: CollectSinkConfig, ctx: Any) -> CollectSink:
    return CollectSink(name, config)


@pytest.fixture(autouse=True)
def _reset() -> None:
    RELEASES.clear()
    DELIVERED.clear()


async def run(write_config: Any, tmp_path: Path, body: str) -> Daemon:
    cfg = load_config(write_config(f"data_dir: {tmp_path}/data\napi: {{enabled: false}}\n" + body))
    daemon = Daemon(cfg, once=True)
    await daemon.run()
    return daemon


def released_once() -> list[int]:
    batches = sorted(b for b, _ in RELEASES)
    assert batches == list(range(len(batches))), RELEASES
    return batches


class TestDroppedEventsSettle:
    async def test_a_filter_dropping_whole_and_partial_batches(self, write_config: Any, tmp_path: Path) -> None:
        daemon = await run(write_config, tmp_path, """
sources: {src: {type: test_levels}}
transforms:
  warnings_up: {type: filter, inputs: [src], keep: {field: level, in: [WARNING, ERROR]}}
sinks: {out: {type: test_collect, inputs: [warnings_up]}}
""")
        assert released_once() == [0, 1, 2, 3, 4, 5]  # batch 0 was dropped whole, the others in part
        assert {status for _, status in RELEASES} == {Status.DELIVERED}
        assert sorted(e["n"] for e in DELIVERED["out"]) == [n for b in range(1, 6) for n in (b * 4 + 2, b * 4 + 3)]
        stats = daemon.metrics.stats["warnings_up"]
        assert (stats.events_in, stats.events_out, stats.events_dropped) == (24, 10, 14)
        status = {c.name: c for c in daemon.topology.status().components}
        assert status["warnings_up"].to_json()["events_dropped"] == 14

    async def test_sample_throttle_and_dedupe_in_a_chain(self, write_config: Any, tmp_path: Path) -> None:
        daemon = await run(write_config, tmp_path, """
sources: {src: {type: test_levels}}
transforms:
  sampled: {type: sample, inputs: [src], rate: 0.5, always_keep: {field: level, equals: ERROR}}
  throttled: {type: throttle, inputs: [sampled], threshold: 3, window: 1h, key: "{level}"}
  unique: {type: dedupe, inputs: [throttled], fields: [level]}
sinks: {out: {type: test_collect, inputs: [unique]}}
""")
        assert released_once() == [0, 1, 2, 3, 4, 5]
        assert sorted(e["level"] for e in DELIVERED["out"]) == ["DEBUG", "ERROR", "INFO", "WARNING"]
        dropped = {n: daemon.metrics.stats[n].events_dropped for n in ("sampled", "throttled", "unique")}
        assert dropped["sampled"] == 24 - daemon.metrics.stats["sampled"].events_out > 0
        assert sum(dropped.values()) == 24 - 4


class TestRoutes:
    async def test_outputs_copies_and_unread_outputs(self, write_config: Any, tmp_path: Path) -> None:
        daemon = await run(write_config, tmp_path, """
sources: {src: {type: test_levels}}
transforms:
  router:
    type: route
    inputs: [src]
    routes:
      errors: {field: level, equals: ERROR}
      slow: {field: slow, equals: true}
      debug: {field: level, equals: DEBUG}
  tagged: {type: mutate, inputs: [router.errors], operations: [{add_tags: [error]}, {set: {level: E}}]}
sinks:
  errors: {type: test_collect, inputs: [tagged]}
  slow: {type: test_collect, inputs: [router.slow]}
  rest: {type: test_collect, inputs: [router._unmatched]}
""")
        # router.debug is read by nobody: its events are dropped, and every batch still settles once.
        assert released_once() == [0, 1, 2, 3, 4, 5]
        assert sorted(e["n"] for e in DELIVERED["errors"]) == [b * 4 + 2 for b in range(1, 6)]
        assert all(e["tags"] == ["error"] and e["level"] == "E" for e in DELIVERED["errors"])
        # The slow ERROR events took two routes: the mutate branch changed its own copy only.
        slow = sorted((e["n"], e["level"], "tags" in e) for e in DELIVERED["slow"])
        assert slow == [(2, "DEBUG", False)] + [(b * 4 + 2, "ERROR", False) for b in range(1, 6)]
        assert sorted(e["level"] for e in DELIVERED["rest"]) == ["INFO"] * 5 + ["WARNING"] * 5
        stats = daemon.metrics.stats["router"]
        # Batch 0's DEBUG events but the slow one (it took a route that is read), one DEBUG in each other batch.
        assert stats.events_dropped == 3 + 5
        assert stats.events_out == 5 + 6 + 10

    async def test_a_rejected_branch_makes_the_batch_rejected(self, write_config: Any, tmp_path: Path) -> None:
        daemon = await run(write_config, tmp_path, """
sources: {src: {type: test_levels, batches: 3}}
transforms:
  router: {type: route, inputs: [src], routes: {errors: {field: level, equals: ERROR}}}
sinks:
  bad: {type: test_collect, inputs: [router.errors], reject: true}
  rest: {type: test_collect, inputs: [router._unmatched]}
""")
        assert released_once() == [0, 1, 2]
        assert dict(RELEASES) == {0: Status.DELIVERED, 1: Status.REJECTED, 2: Status.REJECTED}
        assert len(daemon.topology.dlq.read_all()) == 2


class TestGraphValidation:
    def problems(self, write_config: Any, body: str) -> list[str]:
        path = write_config("sources: {src: {type: stdin}}\n" + body)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        return [p.split(": ", 1)[1] for p in info.value.problems]

    def test_output_references(self, write_config: Any) -> None:
        problems = self.problems(write_config, """
transforms:
  router: {type: route, inputs: [src], routes: {errors: {field: level, equals: ERROR}}}
  plain: {type: filter, inputs: [router.errors], keep: {field: a, exists: true}}
sinks:
  a: {type: blackhole, inputs: [router]}
  b: {type: blackhole, inputs: [router.nope]}
  c: {type: blackhole, inputs: [plain.x, src.y]}
  d: {type: blackhole, inputs: [plain, plain]}
""")
        assert "sinks.a.inputs[0]: 'router' has named outputs: read one of them (router.errors, router._unmatched)" \
            in problems
        assert "sinks.b.inputs[0]: unknown output 'nope' of 'router' (outputs: errors, _unmatched)" in problems
        assert "sinks.c.inputs[0]: 'plain' has no named outputs (write 'plain')" in problems
        assert "sinks.c.inputs[1]: 'src' has no named outputs (write 'src')" in problems
        assert "sinks.d.inputs[1]: 'plain' is listed twice (its events would arrive twice)" in problems

    def test_a_route_that_failed_validation_is_reported_once(self, write_config: Any) -> None:
        problems = self.problems(write_config, """
transforms:
  router: {type: route, inputs: [src], routes: {_bad: {field: level, equals: ERROR}}}
sinks:
  a: {type: blackhole, inputs: [router._bad]}
""")
        assert len(problems) == 1 and problems[0].startswith("transforms.router.routes: ")


class TestSourceFields:
    async def test_under_the_fields_key_by_default(self, write_config: Any, tmp_path: Path) -> None:
        await run(write_config, tmp_path, """
sources: {src: {type: test_levels, batches: 2, fields: {service: nginx, meta: {team: web, ids: [1]}}}}
sinks: {out: {type: test_collect, inputs: [src]}}
""")
        first, second = DELIVERED["out"][:2]
        assert first["fields"] == {"service": "nginx", "meta": {"team": "web", "ids": [1]}}
        first["fields"]["meta"]["ids"].append(2)
        assert second["fields"]["meta"]["ids"] == [1]  # each event has its own copy
        assert released_once() == [0, 1]

    async def test_under_root_and_under_a_nested_key(self, write_config: Any, tmp_path: Path) -> None:
        await run(write_config, tmp_path, """
sources:
  a: {type: test_levels, batches: 1, fields: {level: X, env: prod}, fields_under_root: true}
  b: {type: test_levels, batches: 1, fields: {env: prod}, fields_key: labels.static}
sinks: {out: {type: test_collect, inputs: [a, b]}}
""")
        root = [e for e in DELIVERED["out"] if "labels" not in e]
        nested = [e for e in DELIVERED["out"] if "labels" in e]
        assert len(root) == len(nested) == 4
        assert all(e["level"] == "X" and e["env"] == "prod" for e in root)
        assert all(e["labels"] == {"static": {"env": "prod"}} for e in nested)

    @pytest.mark.parametrize(("source", "message"), [
        pytest.param("{type: stdin, fields: {message: x}, fields_under_root: true}", "cannot replace message",
                     id="owned-key"),
        pytest.param("{type: stdin, fields: {a: 1}, fields_under_root: true, fields_key: x}", "exclude each other",
                     id="both-places"),
    ])
    def test_invalid_placements(self, write_config: Any, source: str, message: str) -> None:
        path = write_config(f"sources: {{src: {source}}}\nsinks: {{o: {{type: blackhole, inputs: [src]}}}}\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path)
