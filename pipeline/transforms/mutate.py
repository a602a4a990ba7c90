"""`mutate` transform: field operations in order (set, add, remove, rename, copy, convert, case, split, JSON, tags).

What Logstash's mutate, Vector's remap assignments and Fluent Bit's modify do,
as data: an ordered list of operations, each optionally under a condition
(docs/conditions.md). String values of `set` / `add` and tag names are
templates (docs/templates.md) over the event; `${VAR}` from the environment is
substituted when the config loads. Paths are dotted (parsers/fieldpath.py).

Everything is compiled at build time into one closure per operation; the batch
loop calls them in order. Bad input never raises: a value that cannot be
converted, or a field that is not JSON, is left as it was and the event is
tagged (`_convertfailure`, `_jsonparsefailure`); an operation on a missing
field does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from parsers.fieldpath import compile_getter, pop_path, set_path
from parsers.formats.json import JsonDecoder, merge_json
from parsers.types import CONVERT_FAILURE, JSON_FAILURE, add_tag
from pipeline.conditions import Condition, compile_condition
from pipeline.config import Model, TransformConfig
from pipeline.context import BuildContext
from pipeline.event import Event, deep_copy
from pipeline.metrics import ComponentStats
from pipeline.registry import register
from pipeline.template import Template, check_template
from pipeline.transforms.convert import CONVERTERS

ConvertTo = Literal["int", "float", "bool", "string"]
Op = Callable[[Event], None]

ROOT = "."  # parse_json target: merge the decoded keys into the event itself
_OPERATIONS = (
    "set",
    "add",
    "remove",
    "rename",
    "copy",
    "convert",
    "lowercase",
    "uppercase",
    "split",
    "parse_json",
    "add_tags",
    "remove_tags",
)
_TAGS = frozenset({CONVERT_FAILURE, JSON_FAILURE})


class Operation(Model):
    """One field operation: exactly one of the keys below, optionally with `when`."""

    when: Condition | None = Field(
        default=None,
        description="Apply the operation only to events that match (docs/conditions.md).",
        examples=[{"field": "level", "equals": "ERROR"}],
    )
    set: dict[str, Any] | None = Field(
        default=None,
        description="field: value, replacing what is there. String values are templates (`{field}`, "
        "docs/templates.md; a missing field renders empty); other values are set as written.",
        examples=[{"environment": "${ENVIRONMENT:-production}", "route": "{method} {path}"}],
    )
    add: dict[str, Any] | None = Field(
        default=None,
        description="Like `set`, but only where the field is missing or null (an existing value is kept).",
        examples=[{"service": "${SERVICE_NAME:-unknown}"}],
    )
    remove: list[str] | None = Field(
        default=None, description="Fields to delete (missing ones are ignored).", examples=[["@version", "agent"]]
    )
    rename: dict[str, str] | None = Field(
        default=None,
        description="from: to. The value moves (replacing `to`); a missing or null `from` changes nothing.",
        examples=[{"status": "status_code"}],
    )
    copy_: dict[str, str] | None = Field(
        default=None,
        alias="copy",
        description="from: to. The value is copied, keeping its type (a template would make it text).",
        examples=[{"client_ip": "source.ip"}],
    )
    convert: dict[str, ConvertTo] | None = Field(
        default=None,
        description='field: int | float | bool | string. int truncates decimals (`"1.9"` -> 1); bool takes '
        "true/false, yes/no, on/off, t/f, y/n, 1/0; a list converts each element. A value that does not "
        "convert is left as it was and the event is tagged `_convertfailure`.",
        examples=[{"status_code": "int", "bytes_sent": "int", "request_time": "float"}],
    )
    lowercase: list[str] | None = Field(
        default=None, description="Text fields (or lists of text) to lower-case.", examples=[["method"]]
    )
    uppercase: list[str] | None = Field(default=None, description="Text fields to upper-case.", examples=[["level"]])
    split: dict[str, str] | None = Field(
        default=None,
        description="field: separator. A text field becomes the list of its parts (a list is left alone).",
        examples=[{"roles": ","}],
    )
    parse_json: list[str] | dict[str, str] | None = Field(
        default=None,
        description="Decode text fields holding a JSON object: a list decodes each in place; a mapping "
        "`field: target` writes the object to `target`, or merges its keys into the event with target `.` "
        "(keys the pipeline owns go under `json`). Invalid JSON is kept as text and tagged `_jsonparsefailure`.",
        examples=[{"payload": "request"}],
    )
    add_tags: list[str] | None = Field(
        default=None, description="Tags to add (templates; no duplicates).", examples=[["error"]]
    )
    remove_tags: list[str] | None = Field(default=None, description="Tags to remove.", examples=[["_grokparsefailure"]])

    @model_validator(mode="after")
    def _exactly_one(self) -> Operation:
        given = [name for name in _OPERATIONS if getattr(self, _attr(name)) is not None]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            raise ValueError(f"each operation has exactly one of {', '.join(_OPERATIONS)} ({found})")
        return self

    @field_validator("set", "add")
    @classmethod
    def _templates_compile(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for item in (value or {}).values():
            if isinstance(item, str):
                check_template(item)
        return value

    @field_validator("add_tags")
    @classmethod
    def _tag_templates_compile(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            check_template(item)
        return value

    @field_validator("split")
    @classmethod
    def _separators(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for field, sep in (value or {}).items():
            if not sep:
                raise ValueError(f"{field}: the separator must not be empty")
        return value

    def name(self) -> str:
        return next(name for name in _OPERATIONS if getattr(self, _attr(name)) is not None)


def _attr(name: str) -> str:
    return "copy_" if name == "copy" else name


class MutateTransformConfig(TransformConfig):
    """Field operations, applied in the order written (Logstash mutate, Vector remap, Fluent Bit modify)."""

    type: Literal["mutate"]
    operations: list[Operation] = Field(
        min_length=1,
        description="The operations, in order; each one sees the result of the ones before.",
        examples=[[{"set": {"environment": "production"}}, {"remove": ["host"]}]],
    )


class MutateTransform:
    def __init__(self, name: str, ops: list[Op], stats: ComponentStats) -> None:
        self.name = name
        self.ops = ops
        self.stats = stats

    def process(self, events: list[Event]) -> list[Event]:
        ops = self.ops
        if len(ops) == 1:
            op = ops[0]
            for event in events:
                op(event)
        else:
            for event in events:
                for op in ops:
                    op(event)
        self.stats.count_tags(events, _TAGS)
        return events


@register("transform", "mutate", MutateTransformConfig)
def build_mutate(name: str, config: MutateTransformConfig, ctx: BuildContext) -> MutateTransform:
    ops = [compile_operation(op) for op in config.operations]
    return MutateTransform(name, ops, ctx.metrics.component(name, "transform", "mutate"))


def compile_operation(op: Operation) -> Op:
    """One operation as a closure over an event (its condition folded in)."""
    kind = op.name()
    fn = _BUILDERS[kind](getattr(op, _attr(kind)))
    if op.when is None:
        return fn
    matches = compile_condition(op.when)

    def guarded(event: Event) -> None:
        if matches(event):
            fn(event)

    return guarded


# -- value producers --------------------------------------------------------


def _value(spec: Any) -> Callable[[Event], Any]:
    """What `set` / `add` write: a rendered template, a constant, or a fresh copy of a constant list/mapping."""
    if isinstance(spec, str):
        template = Template(spec)
        if template.constant is not None:
            constant = template.constant
            return lambda e: constant
        return template.renderer
    if isinstance(spec, dict | list):
        return lambda e: deep_copy(spec)
    return lambda e: spec


# -- operations -----------------------------------------------------------------


def _set(spec: dict[str, Any]) -> Op:
    items = [(path, _value(v)) for path, v in spec.items()]

    def set_fields(event: Event) -> None:
        for path, value in items:
            set_path(event, path, value(event))

    return set_fields


def _add(spec: dict[str, Any]) -> Op:
    items = [(path, compile_getter(path), _value(v)) for path, v in spec.items()]

    def add_fields(event: Event) -> None:
        for path, get, value in items:
            if get(event) is None:
                set_path(event, path, value(event))

    return add_fields


def _remove(paths: list[str]) -> Op:
    def remove(event: Event) -> None:
        for path in paths:
            pop_path(event, path)

    return remove


def _rename(spec: dict[str, str]) -> Op:
    items = [(src, compile_getter(src), dst) for src, dst in spec.items()]

    def rename(event: Event) -> None:
        for src, get, dst in items:
            if get(event) is not None:
                set_path(event, dst, pop_path(event, src))

    return rename


def _copy(spec: dict[str, str]) -> Op:
    items = [(compile_getter(src), dst) for src, dst in spec.items()]

    def copy(event: Event) -> None:
        for get, dst in items:
            value = get(event)
            if value is not None:
                set_path(event, dst, deep_copy(value) if isinstance(value, dict | list) else value)

    return copy


def _convert(spec: dict[str, ConvertTo]) -> Op:
    items = [(path, compile_getter(path), CONVERTERS[to]) for path, to in spec.items()]

    def convert(event: Event) -> None:
        for path, get, conv in items:
            value = get(event)
            if value is None:
                continue
            try:
                new = [conv(v) for v in value] if value.__class__ is list else conv(value)
            except (ValueError, TypeError, OverflowError):
                add_tag(event, CONVERT_FAILURE)
                continue
            if new is not value:
                set_path(event, path, new)

    return convert


def _case(upper: bool) -> Callable[[list[str]], Op]:
    def build(paths: list[str]) -> Op:
        items = [(path, compile_getter(path)) for path in paths]
        change = str.upper if upper else str.lower

        def case(event: Event) -> None:
            for path, get in items:
                value = get(event)
                if value.__class__ is str:
                    set_path(event, path, change(value))
                elif value.__class__ is list:
                    set_path(event, path, [change(v) if v.__class__ is str else v for v in value])

        return case

    return build


def _split(spec: dict[str, str]) -> Op:
    items = [(path, compile_getter(path), sep) for path, sep in spec.items()]

    def split(event: Event) -> None:
        for path, get, sep in items:
            value = get(event)
            if value.__class__ is str:
                set_path(event, path, value.split(sep))

    return split


def _parse_json(spec: list[str] | dict[str, str]) -> Op:
    pairs = {path: path for path in spec} if isinstance(spec, list) else dict(spec)
    items = [(compile_getter(src), dst) for src, dst in pairs.items()]
    decode = JsonDecoder().decode

    def parse_json(event: Event) -> None:
        for get, dst in items:
            value = get(event)
            if value is None or value.__class__ is dict:  # missing, or decoded already
                continue
            obj = decode(value) if value.__class__ is str else None
            if obj is None:
                add_tag(event, JSON_FAILURE)
            elif dst == ROOT:
                merge_json(event, obj)
            else:
                set_path(event, dst, obj)

    return parse_json


def _add_tags(tags: list[str]) -> Op:
    renders = [Template(t).renderer for t in tags]

    def add_tags(event: Event) -> None:
        for render in renders:
            tag = render(event)
            if tag:
                add_tag(event, tag)

    return add_tags


def _remove_tags(tags: list[str]) -> Op:
    unwanted = frozenset(tags)

    def remove_tags(event: Event) -> None:
        current = event.get("tags")
        if not current:
            return
        kept = [t for t in ([current] if isinstance(current, str) else current) if t not in unwanted]
        if kept:
            event["tags"] = kept
        else:
            del event["tags"]

    return remove_tags


_BUILDERS: dict[str, Callable[[Any], Op]] = {
    "set": _set,
    "add": _add,
    "remove": _remove,
    "rename": _rename,
    "copy": _copy,
    "convert": _convert,
    "lowercase": _case(upper=False),
    "uppercase": _case(upper=True),
    "split": _split,
    "parse_json": _parse_json,
    "add_tags": _add_tags,
    "remove_tags": _remove_tags,
}
