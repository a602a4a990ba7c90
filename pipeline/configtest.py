"""`pipeline test`: unit tests of a config's transforms, from YAML beside the config (like `vector test`).

A test file holds tests; each puts lines or events in at a source or a
transform (`insert_at`) and checks what comes out of a transform, a route's
output or what reaches a sink (`extract_from`): expected fields, in order, and
conditions every event must meet. Only transforms run, synchronously, each
test on freshly built ones (so sample counters, throttle buckets and dedupe
caches start empty); sources and sinks are not started.

    env: {ENVIRONMENT: production}          # overrides the environment while the config loads
    tests:
      - name: an application error is tagged
        inputs:
          - insert_at: app                   # a source: its log_type and fields are added
            lines: ["2024-10-10 13:55:36,123 ERROR app.db - connection refused"]
        outputs:
          - extract_from: enriched
            events:
              - {level: ERROR, tags: [error], host: null}   # null: absent (or null)
            conditions:
              - {field: environment, equals: production}

An expected event matches when each of its fields equals the actual one
(mappings recursively, so only the fields written are checked; numbers by
value, but `500` never equals `"500"` and `true` never equals `1`); the
number of events must match too. Exit codes: 0 every test passed, 1 some
failed (with a diff), 2 the config or the test file is invalid.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml
from pydantic import Field, ValidationError, model_validator

from parsers.dates import rfc3339_ms
from pipeline import registry
from pipeline.conditions import Condition, compile_condition
from pipeline.config import Model, PipelineConfig, format_loc, load_config
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.errors import ConfigError
from pipeline.event import Event, deep_copy
from pipeline.graph import split_input, topological_transforms
from pipeline.metrics import Metrics
from pipeline.source_fields import compile_stamp
from pipeline.transforms.base import RoutingTransform

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


class CaseInput(Model):
    insert_at: str = Field(description="A source (its log_type and fields are added) or a transform (its input).")
    lines: list[str] | None = Field(
        default=None,
        description="Records as the source emits them: each becomes `message` (a multiline record is one string).",
    )
    events: list[dict[str, Any]] | None = Field(default=None, description="Events, as they are.")

    @model_validator(mode="after")
    def _one_of(self) -> CaseInput:
        if (self.lines is None) == (self.events is None):
            raise ValueError("an input has exactly one of `lines` or `events`")
        return self


class CaseOutput(Model):
    extract_from: str = Field(description="A transform, a route output (`router.errors`) or a sink.")
    events: list[dict[str, Any]] | None = Field(
        default=None, description="Expected events, in order (only the fields written are checked; null: absent)."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Conditions every event must meet.")

    @model_validator(mode="after")
    def _checks_something(self) -> CaseOutput:
        if self.events is None and not self.conditions:
            raise ValueError("an output checks `events`, `conditions` or both")
        return self


class Case(Model):
    name: str
    inputs: list[CaseInput] = Field(min_length=1)
    outputs: list[CaseOutput] = Field(min_length=1)


class Suite(Model):
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables set while loading the config.")
    tests: list[Case] = Field(min_length=1)


@dataclass
class Result:
    name: str
    failures: list[str] = field(default_factory=list)


def default_test_file(config_path: str) -> Path:
    """`seed.yaml` -> `seed.test.yaml` beside it."""
    path = Path(config_path)
    return path.with_name(f"{path.stem}.test{path.suffix or '.yaml'}")


def load_test_file(path: Path) -> Suite:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read test file: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from None
    try:
        return Suite.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            [f"{path}: {format_loc(tuple(e['loc'])) or 'top level'}: {e['msg']}" for e in exc.errors()]
        ) from None


class Runner:
    """Runs the tests of one test file against one loaded config."""

    def __init__(self, config: PipelineConfig, tests: Suite, test_path: Path) -> None:
        self.config = config
        self.tests = tests
        self.order = topological_transforms(config.transforms)
        self.producers = set(config.sources) | set(config.transforms)
        self._check_names(test_path)

    def _check_names(self, test_path: Path) -> None:
        problems = []
        cfg = self.config
        for i, test in enumerate(self.tests.tests):
            for j, inp in enumerate(test.inputs):
                if inp.insert_at not in self.producers:
                    problems.append(
                        f"{test_path}: tests[{i}].inputs[{j}].insert_at: no source or transform {inp.insert_at!r}"
                    )
            for j, out in enumerate(test.outputs):
                base, output = split_input(out.extract_from, self.producers | set(cfg.sinks))
                named = cfg.transforms[base].output_names() if base in cfg.transforms else ()
                key = f"{test_path}: tests[{i}].outputs[{j}].extract_from"
                if base not in cfg.transforms and base not in cfg.sinks:
                    problems.append(f"{key}: no transform or sink {out.extract_from!r}")
                elif output is None and named:
                    problems.append(f"{key}: {base!r} has named outputs: extract one ({', '.join(named)})")
                elif output is not None and output not in named:
                    problems.append(f"{key}: {base!r} has no output {output!r}")
        if problems:
            raise ConfigError(problems)

    def run(self) -> Iterator[Result]:
        for test in self.tests.tests:
            yield self.run_one(test)

    def _build(self) -> dict[str, Any]:
        cfg = self.config
        ctx = BuildContext(
            config=cfg,
            data_dir=cfg.data_dir,
            host=cfg.host,
            dlq=DeadLetterQueue(cfg.data_dir / "dead_letter"),  # transforms never write to it
            metrics=Metrics(),
            once=True,
        )
        built: dict[str, Any] = {}
        problems: list[str] = []
        for name in self.order:
            model = cfg.transforms[name]
            spec = registry.lookup("transform", model.type)
            assert spec is not None
            try:
                built[name] = spec.factory(name, model, ctx)
            except ConfigError as exc:
                problems.extend(f"{cfg.path}: transforms.{name}.{p}" for p in exc.problems)
        if problems:
            raise ConfigError(problems)
        return built

    def run_one(self, test: Case) -> Result:
        cfg = self.config
        result = Result(test.name)
        transforms = self._build()
        injected: dict[str, list[Event]] = {}
        for inp in test.inputs:
            injected.setdefault(inp.insert_at, []).extend(self._events(inp))
        # What each producer emitted, per output: snapshots, so a later transform's changes do not show.
        produced: dict[tuple[str, str | None], list[Event]] = {}
        for name in cfg.sources:
            produced[(name, None)] = injected.get(name, [])
        for name in self.order:
            model = cfg.transforms[name]
            events = [*self._read(model.inputs, produced), *deep_copy(injected.get(name, []))]
            component = transforms[name]
            try:
                if isinstance(component, RoutingTransform):
                    outs = component.route(events)
                    for output, out in zip(model.output_names(), outs, strict=True):
                        produced[(name, output)] = deep_copy(out)
                else:
                    produced[(name, None)] = deep_copy(component.process(events))
            except Exception as exc:
                result.failures.append(f"transform {name!r} raised {type(exc).__name__}: {exc}")
                return result
        for spec in test.outputs:
            base, output = split_input(spec.extract_from, self.producers | set(cfg.sinks))
            if base in cfg.sinks:
                actual = self._read(cfg.sinks[base].inputs, produced)
            else:
                actual = produced.get((base, output), [])
            result.failures.extend(check_output(spec, actual))
        return result

    def _events(self, inp: CaseInput) -> list[Event]:
        cfg = self.config
        if inp.events is not None:
            events = deep_copy(inp.events)
        else:
            now = rfc3339_ms()
            events = [{"@timestamp": now, "message": line, "host": cfg.host} for line in inp.lines or []]
        source = cfg.sources.get(inp.insert_at)
        if source is not None:
            if source.log_type:
                for event in events:
                    event.setdefault("log_type", source.log_type)
            stamp = compile_stamp(source)
            if stamp is not None:
                stamp(events)
        return events  # type: ignore[no-any-return]

    def _read(self, inputs: list[str], produced: dict[tuple[str, str | None], list[Event]]) -> list[Event]:
        events: list[Event] = []
        for ref in inputs:
            events.extend(deep_copy(produced.get(split_input(ref, self.producers), [])))
        return events


# -- comparing ----------------------------------------------------------------


def check_output(out: CaseOutput, actual: list[Event]) -> list[str]:
    where = f"at {out.extract_from}"
    failures: list[str] = []
    if out.events is not None:
        if len(out.events) != len(actual):
            failures.append(
                f"{where}: expected {len(out.events)} event(s), got {len(actual)}"
                + "".join(f"\n      got: {_json(e)}" for e in actual)
            )
        else:
            for i, (want, got) in enumerate(zip(out.events, actual, strict=True), 1):
                diffs = list(diff_fields(want, got))
                if diffs:
                    lines = "".join(f"\n      {d}" for d in diffs)
                    failures.append(f"{where}, event {i} of {len(actual)}:{lines}\n      got: {_json(got)}")
    for cond in out.conditions:
        matches = compile_condition(cond)
        for i, event in enumerate(actual, 1):
            if not matches(event):
                shown = _json(cond.model_dump(by_alias=True, exclude_defaults=True))
                failures.append(
                    f"{where}, event {i} of {len(actual)}: does not meet {shown}\n      got: {_json(event)}"
                )
    return failures


_ABSENT = object()


def diff_fields(want: dict[str, Any], got: Any, prefix: str = "") -> Iterator[str]:
    """Lines `path: expected X, got Y` for every expected field the actual event does not match."""
    for key, expected in want.items():
        path = f"{prefix}{key}"
        actual = got.get(key, _ABSENT) if isinstance(got, dict) else _ABSENT
        if isinstance(expected, dict) and isinstance(actual, dict):
            yield from diff_fields(expected, actual, f"{path}.")
        elif not same(expected, actual):
            yield f"{path}: expected {_show(expected)}, got {_show(actual)}"


def same(expected: Any, actual: Any) -> bool:
    if expected is None:
        return actual is None or actual is _ABSENT
    if actual is _ABSENT:
        return False
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return expected == actual
    if type(expected) is not type(actual):
        return False
    if isinstance(expected, dict):
        return not list(diff_fields(expected, actual))
    if isinstance(expected, list):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual, strict=True))
    return bool(expected == actual)


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "nothing (absent)"
    return f"{_json(value)} ({type(value).__name__})" if not isinstance(value, dict | list) else _json(value)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS).decode()


# -- the command ---------------------------------------------------------------


def main(config_path: str, test_paths: list[str], out: TextIO = sys.stdout) -> int:
    """Run the tests; ConfigError (exit 2) propagates to the CLI."""
    paths = [Path(p) for p in test_paths] or [default_test_file(config_path)]
    if not test_paths and not paths[0].exists():
        raise ConfigError([f"{config_path}: no test file given and none beside the config ({paths[0]})"])
    runners = []
    for path in paths:  # load every file first: an invalid one fails the run before any test runs
        tests = load_test_file(path)
        config = load_config(config_path, env={**os.environ, **tests.env})
        runners.append(Runner(config, tests, path))
    passed = failed = 0
    for path, runner in zip(paths, runners, strict=True):
        print(f"{path}:", file=out)
        for result in runner.run():
            if result.failures:
                failed += 1
                print(f"  FAIL  {result.name}", file=out)
                for failure in result.failures:
                    print(f"    {failure}", file=out)
            else:
                passed += 1
                print(f"  ok    {result.name}", file=out)
    print(f"{passed} passed, {failed} failed", file=out)
    return EXIT_FAILED if failed else EXIT_OK
