"""Templates for alert labels, annotations and webhook bodies: `{field}` placeholders over a dict.

Syntax (compiled once, at config time; rendering is a join over precomputed parts):

- `{service}`, `{error.type}`: a field; a dotted path walks nested mappings. A key
  that itself contains dots (`{"error.type": ...}` flat) is found first.
- `{message:200}`: at most 200 characters; a longer value is cut and ends with `…`.
- `{service|unknown}`: the text after `|` replaces a missing, null or empty value
  (without it, such a value renders as the empty string).
- `{message:200|-}`: both.
- `{{` and `}}`: literal braces.

Values render as text: strings as they are, booleans as `true`/`false`, numbers with
`str()`, lists and mappings as compact JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

Getter = Callable[[dict[str, Any]], Any]

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_FIELD = re.compile(r"^\s*([A-Za-z0-9_@][A-Za-z0-9_@.\-]*)\s*(?::\s*(\d+)\s*)?(?:\|(.*))?$", re.DOTALL)
ELLIPSIS = "…"


def compile_path(path: str) -> Getter:
    """A getter for `path` (dotted = nested) that returns None when anything is missing."""
    if "." not in path:
        return lambda obj: obj.get(path)
    parts = tuple(path.split("."))
    if len(parts) == 2:  # the common case (`error.type`), unrolled: this runs per event
        first, second = parts

        def get2(obj: dict[str, Any]) -> Any:
            value = obj.get(path)  # a flat key with dots wins, as in sinks/template.py
            if value is not None:
                return value
            value = obj.get(first)
            return value.get(second) if value.__class__ is dict else None

        return get2

    def get(obj: dict[str, Any]) -> Any:
        value: Any = obj.get(path)
        if value is not None:
            return value
        value = obj
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
            if value is None:
                return None
        return value

    return get


def to_text(value: Any) -> str:
    """How a field value reads inside a label, an annotation or a body string."""
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return str(value)


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


class _Field:
    __slots__ = ("default", "limit", "path", "render")

    def __init__(self, path: str, limit: int | None, default: str) -> None:
        self.path = path
        self.limit = limit
        self.default = default
        self.render = _field_renderer(compile_path(path), limit, default)


def _field_renderer(get: Getter, limit: int | None, default: str) -> Callable[[dict[str, Any]], str]:
    # Closures rather than methods: labels are rendered per event, and each call layer costs.
    if limit is None:

        def render(obj: dict[str, Any]) -> str:
            value = get(obj)
            if value.__class__ is str:
                return value or default  # type: ignore[no-any-return, unused-ignore]
            return default if value is None else (to_text(value) or default)

        return render

    def render_cut(obj: dict[str, Any]) -> str:
        value = get(obj)
        text = (
            (value or default)
            if value.__class__ is str
            else (default if value is None else (to_text(value) or default))
        )
        return text if len(text) <= limit else truncate(text, limit)

    return render_cut


class Template:
    """A compiled `{field}` template: `Template(src).render(obj) -> str`.

    `renderer` is the fastest callable for the template's shape (a constant, one
    field, or a join): the hot loops take it once and call it per event."""

    __slots__ = ("_parts", "constant", "fields", "renderer", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        parts: list[str | _Field] = []
        literal: list[str] = []  # text since the last placeholder (escaped braces included)
        pos = 0
        for m in _TOKEN.finditer(source):
            literal.append(source[pos : m.start()])
            pos = m.end()
            token = m.group(0)
            if token == "{{":
                literal.append("{")
            elif token == "}}":
                literal.append("}")
            elif m.group(1) is None:
                raise ValueError(
                    f"unbalanced {token!r} at position {m.start()} in {source!r} "
                    "(write {{ or }} for a literal brace)"
                )
            else:
                spec = _FIELD.match(m.group(1))
                if spec is None:
                    raise ValueError(
                        f"invalid placeholder {token!r} in {source!r}: expected "
                        "{field}, {field:N}, {field|default} or {field:N|default}"
                    )
                limit = int(spec.group(2)) if spec.group(2) is not None else None
                if limit is not None and limit < 1:
                    raise ValueError(f"invalid placeholder {token!r} in {source!r}: the length must be >= 1")
                if "".join(literal):
                    parts.append("".join(literal))
                literal = []
                parts.append(_Field(spec.group(1), limit, spec.group(3) or ""))
        literal.append(source[pos:])
        if "".join(literal):
            parts.append("".join(literal))
        self._parts = tuple(parts)
        self.fields = tuple(p.path for p in parts if isinstance(p, _Field))
        self.constant: str | None = None
        if not self.fields:
            constant = self.constant = "".join(p for p in parts if isinstance(p, str))
            self.renderer: Callable[[dict[str, Any]], str] = lambda obj: constant
        elif len(parts) == 1 and isinstance(parts[0], _Field):
            self.renderer = parts[0].render
        else:
            renders = [(lambda obj, text=p: text) if isinstance(p, str) else p.render for p in parts]
            self.renderer = lambda obj: "".join([r(obj) for r in renders])

    @property
    def is_constant(self) -> bool:
        return self.constant is not None

    def render(self, obj: dict[str, Any]) -> str:
        return self.renderer(obj)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def check_template(source: str) -> str:
    """Pydantic validator helper: raise ValueError on a malformed template, return it unchanged."""
    Template(source)
    return source


def compile_tree(tree: Any) -> Callable[[dict[str, Any]], Any]:
    """Compile a JSON-like tree whose strings (values and keys) are templates; returns a renderer."""
    if isinstance(tree, str):
        return Template(tree).renderer
    if isinstance(tree, dict):
        items = [(Template(str(k)).renderer, compile_tree(v)) for k, v in tree.items()]
        return lambda obj: {k(obj): v(obj) for k, v in items}
    if isinstance(tree, list):
        children = [compile_tree(v) for v in tree]
        return lambda obj: [c(obj) for c in children]
    return lambda obj: tree
