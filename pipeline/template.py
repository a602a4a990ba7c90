"""Templates: `{field}` placeholders and `%Y`-style date codes, rendered from an event.

The one template syntax of every component: file paths, Kafka topics and keys,
Elasticsearch indices, Loki labels, alert labels, annotations and webhook
bodies. Documented once, in docs/templates.md:

- `{service}`, `{error.type}`: a field; a dotted path walks nested mappings (a
  flat key that contains the dots is found first).
- `{service|unknown}`: the text after `|` replaces a missing, null or empty value.
  Without it, such a value renders as the template's `missing` text, which each
  option documents (empty in alert text, `unknown` in names such as topics).
- `{message:200}`: at most 200 characters; a longer value is cut and ends with `…`.
  `{message:200|-}` combines both.
- `{{` and `}}`: literal braces.
- `%Y %m %d %H`: year, month, day, hour of the event's own `@timestamp` (UTC; the
  current time when it has none), so a late event lands in its own day's index.
  `%%` is a literal `%`; any other `%` is plain text, except in names
  (`strict_dates=True`), where an unsupported code is a config error.

Values render as text: strings as they are, booleans `true`/`false`, numbers
with `str()`, lists and mappings as compact JSON. Rendering is one pass over
precompiled parts: a value that itself contains `{...}` is never rendered again,
and a template reaches only the event's fields (no attributes, environment or
files).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from parsers.dates import rfc3339_ms
from parsers.fieldpath import compile_getter

Renderer = Callable[[dict[str, Any]], str]
Cleaner = Callable[[str], str]

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]|%[A-Za-z%]")
_FIELD = re.compile(r"^\s*([A-Za-z0-9_@][A-Za-z0-9_@.\-]*)\s*(?::\s*(\d+)\s*)?(?:\|(.*))?$", re.DOTALL)
# Positions in "YYYY-MM-DDTHH:MM:SS" of each supported date code.
DATE_CODES = {"%Y": (0, 4), "%m": (5, 7), "%d": (8, 10), "%H": (11, 13)}
ELLIPSIS = "…"


def to_text(value: Any) -> str:
    """How a field value reads inside a rendered template."""
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


def _field_renderer(path: str, limit: int | None, default: str, clean: Cleaner | None = None) -> Renderer:
    # Closures rather than methods: labels and names are rendered per event, and each call layer costs.
    get = compile_getter(path)
    if clean is not None:
        # Only the event's values are cleaned; the default is the config's own text.
        def render_clean(obj: dict[str, Any]) -> str:
            value = get(obj)
            text = "" if value is None else to_text(value)
            if not text:
                return default
            text = clean(text)
            return text if limit is None or len(text) <= limit else truncate(text, limit)

        return render_clean
    if limit is None:

        def render(obj: dict[str, Any]) -> str:
            value = get(obj)
            if value.__class__ is str:
                return value or default  # type: ignore[no-any-return,unused-ignore]
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


def _date_renderer(start: int, end: int) -> Renderer:
    def render(obj: dict[str, Any]) -> str:
        ts = obj.get("@timestamp")
        if ts.__class__ is not str or len(ts) < 13:
            ts = rfc3339_ms()
        return ts[start:end]  # type: ignore[no-any-return,unused-ignore]

    return render


class Template:
    """A compiled template: `Template(src).render(event) -> str`.

    `renderer` is the fastest callable for the template's shape (a constant, one
    part, or a join): hot loops take it once and call it per event.
    """

    __slots__ = ("constant", "fields", "renderer", "source")

    def __init__(
        self, source: str, missing: str = "", strict_dates: bool = False, clean: Cleaner | None = None
    ) -> None:
        """`clean`, when given, rewrites each field value before it is put in (a file path's segments)."""
        self.source = source
        parts: list[str | Renderer] = []
        fields: list[str] = []
        literal: list[str] = []  # text since the last placeholder (escapes resolved)
        pos = 0
        for m in _TOKEN.finditer(source):
            literal.append(source[pos : m.start()])
            pos = m.end()
            token = m.group(0)
            if token in ("{{", "}}", "%%"):
                literal.append(token[0])
                continue
            if token[0] == "%":
                span = DATE_CODES.get(token)
                if span is None:
                    if strict_dates:
                        raise ValueError(
                            f"unsupported date code {token!r} in {source!r} (use %Y %m %d %H, or %% for a literal %)"
                        )
                    literal.append(token)
                    continue
                renderer = _date_renderer(*span)
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
                default = spec.group(3) if spec.group(3) is not None else missing
                fields.append(spec.group(1))
                renderer = _field_renderer(spec.group(1), limit, default, clean)
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            parts.append(renderer)
        literal.append(source[pos:])
        if "".join(literal):
            parts.append("".join(literal))
        self.fields = tuple(fields)
        self.constant: str | None = None
        if all(isinstance(p, str) for p in parts):
            constant = self.constant = "".join(p for p in parts if isinstance(p, str))
            self.renderer: Renderer = lambda obj: constant
        elif len(parts) == 1 and not isinstance(parts[0], str):
            self.renderer = parts[0]
        else:
            renders = [(lambda obj, text=p: text) if isinstance(p, str) else p for p in parts]
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


def check_name_template(source: str) -> str:
    """Like `check_template`, for names (paths, topics, indices): unsupported date codes are errors too."""
    Template(source, strict_dates=True)
    return source


def compile_tree(tree: Any, missing: str = "") -> Callable[[dict[str, Any]], Any]:
    """Compile a JSON-like tree whose strings (values and keys) are templates; returns a renderer."""
    if isinstance(tree, str):
        return Template(tree, missing).renderer
    if isinstance(tree, dict):
        items = [(Template(str(k), missing).renderer, compile_tree(v, missing)) for k, v in tree.items()]
        return lambda obj: {k(obj): v(obj) for k, v in items}
    if isinstance(tree, list):
        children = [compile_tree(v, missing) for v in tree]
        return lambda obj: [c(obj) for c in children]
    return lambda obj: tree
