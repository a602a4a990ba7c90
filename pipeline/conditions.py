"""Conditions: the one language every component uses to decide about an event.

Alert rules and every transform that decides about an event take the same
structured matchers, documented once in docs/conditions.md:

    {field: level, equals: ERROR}            {field: status, gte: 500}
    {field: level, in: [ERROR, CRITICAL]}    {field: message, regex: "timeout|refused"}
    {field: trace_id, exists: true}          {all: [...]}  {any: [...]}  {not: {...}}

Conditions are data, compiled once into closures over precomputed values;
nothing from a config is evaluated as code. Field values compare by their text
for `equals` / `in` (so `status: 500` equals `"500"`; `equals: null` matches a
missing field), and by their numeric value for `gt` / `gte` / `lt` / `lte`
(numeric text counts; anything else never matches). Fields are dotted paths
(parsers/fieldpath.py).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator, model_validator

from parsers.fieldpath import compile_getter
from pipeline.config import Model
from pipeline.event import Event
from pipeline.template import to_text

Predicate = Callable[[Event], bool]

Scalar = str | int | float | bool | None


class Condition(Model):
    """One matcher on a field, or a combinator (`all`, `any`, `not`) of conditions."""

    field: str | None = Field(
        default=None, description="Field path (dotted for nested: `error.type`).", examples=["level"]
    )
    equals: Scalar = Field(
        default=None,
        description="The value equals this (numbers and strings compare by their "
        'text: 500 equals "500"; `null` matches a missing field).',
        examples=["application"],
    )
    in_: list[Scalar] | None = Field(
        default=None, alias="in", description="The value is one of these.", examples=[["ERROR", "CRITICAL"]]
    )
    regex: str | None = Field(
        default=None,
        description="The value (as text) contains a match of this regular "
        "expression (unanchored: use ^...$ to match the whole value).",
        examples=["timeout|refused"],
    )
    gt: float | None = Field(default=None, description="The value is a number (or numeric text) greater than this.")
    gte: float | None = Field(default=None, description="... greater than or equal to this.", examples=[500])
    lt: float | None = Field(default=None, description="... less than this.")
    lte: float | None = Field(default=None, description="... less than or equal to this.")
    exists: bool | None = Field(
        default=None, description="true: the field is present and not null; false: absent or null."
    )
    ignore_case: bool = Field(default=False, description="`equals`, `in` and `regex` ignore letter case.")
    all_: list[Condition] | None = Field(default=None, alias="all", min_length=1, description="Every condition holds.")
    any_: list[Condition] | None = Field(
        default=None, alias="any", min_length=1, description="At least one condition holds."
    )
    not_: Condition | None = Field(default=None, alias="not", description="The condition does not hold.")

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        combinators = [k for k, v in (("all", self.all_), ("any", self.any_), ("not", self.not_)) if v is not None]
        if combinators:
            if len(combinators) > 1 or self.field is not None or self.operators():
                raise ValueError("a combinator (all, any, not) stands alone: put other matchers inside it")
            return self
        if self.field is None:
            raise ValueError(
                "a condition needs `field` with an operator (equals, in, regex, gt, gte, lt, lte, "
                "exists) or one of all / any / not"
            )
        if not self.operators():
            raise ValueError(f"field {self.field!r} needs an operator: equals, in, regex, gt, gte, lt, lte or exists")
        return self

    def operators(self) -> list[str]:
        ops = [k for k in ("regex", "gt", "gte", "lt", "lte", "exists") if getattr(self, k) is not None]
        if "equals" in self.model_fields_set:
            ops.append("equals")
        if self.in_ is not None:
            ops.append("in")
        return ops


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
