"""Compile alert rules into predicates (pipeline/conditions.py) and label/annotation renderers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from pipeline.conditions import compile_condition
from pipeline.event import Event
from pipeline.template import Template
from sinks.webhook.config import RuleConfig

Predicate = Callable[[Event], bool]


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
