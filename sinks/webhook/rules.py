"""Compile rule conditions into predicates, and rules into label/annotation renderers.

Conditions are data (matchers and combinators), compiled once into closures over
precomputed values; nothing from a config is evaluated as code. Field values
compare by their text for `equals`/`in` (so `status: 500` equals `"500"`), and
by their numeric value for `gt`/`gte`/`lt`/`lte` (numeric text counts; anything
else never matches).
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import orjson

from parsers.fieldpath import compile_getter
from pipeline.event import Event
from pipeline.template import Template, to_text
from sinks.webhook.config import Condition, RuleConfig

Predicate = Callable[[Event], bool]

_MISSING = object()  # the normalised form of a missing or null value


def normalise(value: Any, ignore_case: bool = False) -> Any:
    """The comparable form of a scalar for equals/in: its text (numbers without a useless .0)."""
    if value is None:
        return _MISSING
    if value.__class__ is float and value.is_integer():
        value = int(value)
    text = to_text(value)
    return text.casefold() if ignore_case else text


def as_number(value: Any) -> float | None:
    if value.__class__ is int or value.__class__ is float:
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None  # bool, None, containers: not numbers


def compile_condition(cond: Condition) -> Predicate:
    if cond.all_ is not None:
        return _all(tuple(compile_condition(c) for c in cond.all_))
    if cond.any_ is not None:
        return _any(tuple(compile_condition(c) for c in cond.any_))
    if cond.not_ is not None:
        inner = compile_condition(cond.not_)
        return lambda e: not inner(e)
    assert cond.field is not None  # the model validator guarantees field + operator
    get = compile_getter(cond.field)
    checks: list[Callable[[Any], bool]] = []
    fold = cond.ignore_case
    if "equals" in cond.model_fields_set:
        checks.append(_equals(normalise(cond.equals, fold), fold))
    if cond.in_ is not None:
        checks.append(_one_of(frozenset(normalise(v, fold) for v in cond.in_), fold))
    if cond.regex is not None:
        search = re.compile(cond.regex, re.IGNORECASE if fold else 0).search
        checks.append(lambda v: v is not None and search(v if v.__class__ is str else to_text(v)) is not None)
    for name, op in (("gt", operator.gt), ("gte", operator.ge), ("lt", operator.lt), ("lte", operator.le)):
        bound = getattr(cond, name)
        if bound is not None:
            checks.append(_compare(op, float(bound)))
    if cond.exists is not None:
        want = cond.exists
        checks.append(lambda v: (v is not None) is want)
    if len(checks) == 1:
        ops = cond.operators()
        if ops in (["equals"], ["in"]) and not fold:
            return _fused_text_match(
                get, ops[0], normalise(cond.equals), frozenset(normalise(v) for v in cond.in_ or ())
            )
        check = checks[0]
        return lambda e: check(get(e))
    checks_t = tuple(checks)

    def every(e: Event) -> bool:
        value = get(e)
        for check in checks_t:  # noqa: SIM110 (explicit loops: all() over a generator costs more per event)
            if not check(value):
                return False
        return True

    return every


def _all(preds: tuple[Predicate, ...]) -> Predicate:
    def every(e: Event) -> bool:
        for p in preds:  # noqa: SIM110
            if not p(e):
                return False
        return True

    return every


def _any(preds: tuple[Predicate, ...]) -> Predicate:
    def some(e: Event) -> bool:
        for p in preds:  # noqa: SIM110
            if p(e):
                return True
        return False

    return some


def _fused_text_match(get: Callable[[Event], Any], op: str, expected: Any, one_of: frozenset[Any]) -> Predicate:
    """equals / in on one field, getter inlined: the commonest rule shape, evaluated per event."""
    if op == "equals":

        def equals(e: Event) -> bool:
            value = get(e)
            return value == expected if value.__class__ is str else normalise(value) == expected  # type: ignore[no-any-return, unused-ignore]

        return equals

    def is_in(e: Event) -> bool:
        value = get(e)
        return value in one_of if value.__class__ is str else normalise(value) in one_of

    return is_in


def _equals(expected: Any, fold: bool) -> Callable[[Any], bool]:
    if fold:
        return lambda v: normalise(v, True) == expected
    # Fast path: a string field compared with a string needs no normalising.
    return lambda v: v == expected if v.__class__ is str else normalise(v) == expected


def _one_of(expected: frozenset[Any], fold: bool) -> Callable[[Any], bool]:
    if fold:
        return lambda v: normalise(v, True) in expected
    return lambda v: v in expected if v.__class__ is str else normalise(v) in expected


def _compare(op: Callable[[float, float], bool], bound: float) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        number = value if value.__class__ is int or value.__class__ is float else as_number(value)
        return number is not None and op(number, bound)

    return check


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of a label set (independent of order and of the process: not hash())."""
    data = orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _key_function(renders: tuple[Callable[[Event], str], ...]) -> Callable[[Event], tuple[str, ...]]:
    """The key of an event within a rule: its dynamic label values. Unrolled for small arities
    (a per-event cost; Python 3.11 gives a comprehension its own frame)."""
    if not renders:
        return lambda e: ()
    if len(renders) == 1:
        (r0,) = renders
        return lambda e: (r0(e),)
    if len(renders) == 2:
        r0, r1 = renders
        return lambda e: (r0(e), r1(e))
    if len(renders) == 3:
        r0, r1, r2 = renders
        return lambda e: (r0(e), r1(e), r2(e))
    return lambda e: tuple([r(e) for r in renders])


class CompiledRule:
    """One rule, ready for the hot loop: predicate, label key, renderers."""

    __slots__ = (
        "_annotations",
        "_dynamic",
        "_static",
        "index",
        "key",
        "label_order",
        "matches",
        "name",
        "overflow_group",
        "predicate",
        "signature",
    )

    def __init__(self, config: RuleConfig) -> None:
        self.name = config.name
        self.predicate = compile_condition(config.when)
        # Order: alertname, severity, then the rule's labels (which may override both).
        sources = {"alertname": config.name, "severity": config.severity, **config.labels}
        templates = {k: Template(v) for k, v in sources.items()}
        self.label_order = tuple(sources)
        self._static = {k: t.constant for k, t in templates.items() if t.constant is not None}
        self._dynamic = tuple((k, t.renderer) for k, t in templates.items() if t.constant is None)
        self.key = _key_function(tuple(r for _, r in self._dynamic))
        self._annotations = tuple((k, Template(v).renderer) for k, v in config.annotations.items())
        # Changing a rule's labels changes what its keys mean: restored groups are re-indexed
        # only under the same signature.
        self.signature = fingerprint({"name": config.name, **sources})
        self.index: dict[tuple[str, ...], Any] = {}  # key -> Group (aggregate.py)
        self.overflow_group: Any = None
        self.matches = 0

    def labels_for_key(self, key: tuple[str, ...]) -> dict[str, str]:
        """The full label set of a key; empty values are dropped, as Alertmanager does."""
        labels = dict(self._static)
        for (name, _), value in zip(self._dynamic, key, strict=True):
            labels[name] = value
        ordered = {k: labels[k] for k in self.label_order if labels.get(k)}
        return ordered

    def static_labels(self) -> dict[str, str]:
        return {k: v for k, v in self._static.items() if v}

    def annotations(self, event: Event) -> dict[str, str]:
        return {k: render(event) for k, render in self._annotations}
