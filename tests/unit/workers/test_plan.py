"""pipeline/workers/plan.py: which sources worker processes take over, and where their batches go."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.workers.plan import plan


def config(write_config: Callable[[str], Path], body: str, workers: str = "2") -> Path:
    return write_config(f"workers: {workers}\n" + body)


BASE = """
sources:
  access: {type: file, include: ["/x/*.log"], log_type: access}
  app: {type: file, include: ["/y/*.log"], multiline: {preset: python_traceback}}
  pods: {type: container, include: ["/z/*.log"]}
"""


class TestPlan:
    def test_a_chain_of_per_event_transforms_into_sinks_is_offloaded(self, write_config) -> None:
        path = config(write_config, BASE + """
transforms:
  parsed: {type: parse, inputs: [access, app, pods]}
  typed: {type: mutate, inputs: [parsed], operations: [{convert: {status: int}}]}
sinks:
  out: {type: file, inputs: [typed], path: /o.jsonl}
  hole: {type: blackhole, inputs: [typed]}
""")
        result = plan(load_config(path))
        assert result.workers == 2
        assert set(result.sources) == {"access"}  # multiline and container framing stay in the main process
        off = result.sources["access"]
        assert off.chain.transforms == ("parsed", "typed")
        assert (off.sinks, off.first) == (["out", "hole"], "parsed")
        assert result.extra_producers("out") == 1 and result.extra_producers("parsed") == 0

    @pytest.mark.parametrize(
        "transforms",
        [
            pytest.param("  d: {type: dedupe, inputs: [access], fields: [message]}\n", id="stateful"),
            pytest.param("  r: {type: route, inputs: [access], routes: {e: {field: x, exists: true}}}\n", id="route"),
        ],
    )
    def test_a_stateful_or_routing_transform_keeps_the_source_in_the_main_process(
        self, write_config, transforms: str
    ) -> None:
        name = transforms.split(":")[0].strip()
        inputs = f"[{name}]" if name == "d" else "[r.e, r._unmatched]"
        path = config(write_config, BASE + "transforms:\n" + transforms + f"""
sinks:
  out: {{type: blackhole, inputs: {inputs}}}
  rest: {{type: blackhole, inputs: [app, pods]}}
""")
        assert plan(load_config(path)).sources == {}

    def test_a_branch_between_a_transform_and_a_sink_is_not_offloaded(self, write_config) -> None:
        path = config(write_config, BASE + """
transforms:
  parsed: {type: parse, inputs: [access]}
sinks:
  raw: {type: blackhole, inputs: [access]}
  out: {type: blackhole, inputs: [parsed, app, pods]}
""")
        assert plan(load_config(path)).sources == {}

    def test_a_source_straight_into_sinks_is_offloaded_with_no_chain(self, write_config) -> None:
        path = config(write_config, BASE + """
sinks:
  out: {type: blackhole, inputs: [access, app, pods]}
""")
        off = plan(load_config(path)).sources["access"]
        assert (off.chain.transforms, off.first, off.sinks) == ((), None, ["out"])
        assert plan(load_config(path)).extra_producers("out") == 0  # already counted as its input

    def test_one_worker_batches_in_process_only_into_sinks_that_take_encoded_events(self, write_config) -> None:
        path = config(write_config, BASE + """
transforms:
  parsed: {type: parse, inputs: [access]}
sinks:
  out: {type: file, inputs: [parsed], path: /o.jsonl}
  hole: {type: blackhole, inputs: [parsed, app, pods]}
""", "1")
        cfg = load_config(path)
        assert plan(cfg).sources == {}  # nothing said to take encoded events
        assert plan(cfg, lambda sink: sink == "out").sources == {}  # the blackhole would decode them again
        both = plan(cfg, lambda sink: True)
        assert both.workers == 1 and set(both.sources) == {"access"}
        assert both.sources["access"].sinks == ["out", "hole"]
        # A source straight into sinks has no transform to batch: it stays per event.
        sinks = "sinks:\n  out: {type: file, inputs: [access, app, pods], path: /o}\n"
        direct = config(write_config, BASE + sinks, "1")
        assert plan(load_config(direct), lambda sink: True).sources == {}
        # With worker processes, what the sinks take does not matter: the other cores do the work.
        assert set(plan(load_config(config(write_config, path.read_text().split("\n", 1)[1]))).sources) == {"access"}


def test_the_setting_takes_auto_or_a_positive_count(write_config) -> None:
    from pipeline.errors import ConfigError

    body = "sources:\n  a: {type: stdin}\nsinks:\n  o: {type: blackhole, inputs: [a]}\n"
    assert load_config(config(write_config, body, "auto")).root.workers == "auto"
    assert load_config(config(write_config, body, "4")).root.workers == 4
    with pytest.raises(ConfigError) as err:
        load_config(config(write_config, body, "0"))
    assert any("workers" in p for p in err.value.problems)
