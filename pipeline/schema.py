"""JSON Schema and the Markdown config reference, both generated from the models.

The config models are the documentation (Benthos docs_gen): `pipeline schema`
prints the JSON Schema, and `python -m pipeline.schema > docs/configuration.md`
regenerates the reference; a test fails when the committed page is stale.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from pipeline import registry
from pipeline.config import RootConfig


def schema_json() -> str:
    out: dict[str, Any] = {"root": RootConfig.model_json_schema()}
    for spec in registry.all_specs():
        out.setdefault(registry.SECTION[spec.kind], {})[spec.type_name] = spec.model.model_json_schema()
    return json.dumps(out, indent=2, sort_keys=True)


def _type_name(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get("format") in ("duration", "size"):
        return str(extra["format"])
    for meta in info.metadata:
        fmt = getattr(meta, "json_schema_extra", None)
        if isinstance(fmt, dict) and fmt.get("format") in ("duration", "size"):
            return str(fmt["format"])
    return _format_annotation(info.annotation)


def _format_annotation(ann: Any) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        for meta in args[1:]:
            fmt = getattr(meta, "json_schema_extra", None)
            if isinstance(fmt, dict) and fmt.get("format") in ("duration", "size"):
                return str(fmt["format"])
        return _format_annotation(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_format_annotation(a) for a in args if a is not type(None)) + (
            " or null" if type(None) in args else ""
        )
    if origin is not None:
        inner = ", ".join(_format_annotation(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(ann, type):
        if issubclass(ann, BaseModel):
            return "object"
        return {
            "str": "string",
            "int": "integer",
            "float": "number",
            "bool": "boolean",
            "Path": "path",
            "SecretStr": "secret string",
        }.get(ann.__name__, ann.__name__)
    return str(ann)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default is not PydanticUndefined:
        value = info.default
    elif info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        return ""
    if isinstance(value, BaseModel):
        return "see below"
    if hasattr(value, "get_secret_value"):
        return "(secret)"
    return f"`{json.dumps(value, default=str)}`"


def _rows(model: type[BaseModel], prefix: str = "", seen: tuple[type[BaseModel], ...] = ()) -> list[str]:
    rows: list[str] = []
    seen = (*seen, model)
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        if name == "type" and not prefix:
            continue  # the component's own type is the section heading; a nested `type` is an option
        desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
        if info.examples:
            desc += f" Example: `{json.dumps(info.examples[0], default=str)}`."
        key = info.alias or name  # what users write (`in`, not the Python name `in_`)
        rows.append(f"| `{prefix}{key}` | {_type_name(info)} | {_default(info)} | {desc} |")
        models = _models_in(info.annotation)
        for sub in models:
            tag = _type_tag(sub) if len(models) > 1 else None  # a union by `type`: one block per member
            nested.append((f"{prefix}{key}[{tag}]." if tag else f"{prefix}{key}.", sub))
    for sub_prefix, sub in nested:
        if sub not in seen:  # recursive models (alert conditions) are listed once
            rows.extend(_rows(sub, sub_prefix, seen))
    return rows


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """The models a field holds: itself, or inside list[...], X | None and Annotated unions."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(ann):
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def _type_tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return None
    return "|".join(str(a) for a in typing.get_args(field.annotation))


def render_reference() -> str:
    head = [
        "# Configuration reference",
        "",
        "Generated from the config models by `python -m pipeline.schema > docs/configuration.md`; do not edit by hand.",
        "",
        "Durations accept `250ms`, `5s`, `1m`, `2h` or a number of seconds; sizes accept `512KiB`, `10MiB`, "
        "`1GB` or a number of bytes. Any string value may use `${VAR}` or `${VAR:-default}` from the "
        "environment. Unknown keys are errors.",
        "",
        "## Top level",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
    ]
    lines = head + [r for r in _rows(RootConfig) if not r.startswith(("| `sources`", "| `transforms`", "| `sinks`"))]
    for kind in registry.KINDS:
        lines += ["", f"## {registry.SECTION[kind].capitalize()}", ""]
        for spec in registry.all_specs():
            if spec.kind != kind:
                continue
            doc = (spec.model.__doc__ or "").strip()
            lines += [f"### `{spec.type_name}`", ""]
            if doc and not doc.startswith("Usage docs") and "BaseModel" not in doc:
                lines += [doc, ""]
            lines += ["| key | type | default | description |", "|---|---|---|---|", *_rows(spec.model), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_reference(), end="")
