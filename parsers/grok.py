"""Compile grok expressions to one regex with named groups, typed and nested captures.

Syntax (Logstash grok):

* ``%{NAME}`` inserts pattern NAME; not captured when ``named_captures_only``
  (the default), else captured under the key ``NAME``.
* ``%{NAME:field}`` captures into ``field``; ``%{NAME:field:int}`` /
  ``%{NAME:field:float}`` also converts the text (``integer`` is ``int``).
* Field names may be nested: ``[http][status]`` and ``http.status`` both give
  ``{"http": {"status": ...}}``.
* Raw named groups ``(?<field>...)`` / ``(?P<field>...)`` capture too (any field
  name, nested names included).
* Several expressions may be given; they are tried in order, the first match wins.
* Oniguruma syntax pasted from Logstash (``\\h``, POSIX classes, inline
  options mid-pattern, ...) is translated (``parsers.onig``).
* ``ecs_compatibility``: ``disabled`` (legacy capture names, the default) or
  ``v1`` (ECS names), as Logstash's option of that name chooses the built-ins.

A grok expression is searched anywhere in the text (anchor it with ``^``/``$``
if needed), as Logstash does. Captures that did not participate or are empty
are left out. When two groups capture the same field, the first non-empty one
in pattern order wins.

Everything is resolved and compiled once per (expression, user definitions,
named_captures_only) and cached. Build errors raise ``GrokError``; matching
never raises.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import regex

from parsers.errors import GrokError
from parsers.onig import translate
from parsers.patterns import builtin_patterns, check_ecs_compatibility, load_patterns_dir, validate_definitions
from parsers.types import Fields

__all__ = ["Grok", "compile_grok", "field_path"]

_TOKEN = regex.compile(
    r"""
      (?P<esc>\\.)
    | %\{(?P<name>[A-Za-z0-9_]+)(?::(?P<field>[^:{}]+))?(?::(?P<type>[A-Za-z]+))?\}
    | \(\?P?<(?P<raw>[^>=!][^>]*)>
    | (?P<bad>%\{[^}]*\}?)
    """,
    regex.VERBOSE | regex.DOTALL,
)
_BRACKETS = regex.compile(r"\[([^\[\]]+)\]")

Cast = Callable[[str], Any]


def _to_int(s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return int(float(s))
    except (ValueError, OverflowError):
        return s  # keep the text rather than lose it


def _to_float(s: str) -> Any:
    try:
        return float(s)
    except ValueError:
        return s


_CASTS: dict[str, Cast] = {"int": _to_int, "integer": _to_int, "float": _to_float}


def field_path(name: str) -> tuple[str, ...]:
    """Split a field reference: ``[a][b]`` and ``a.b`` -> ``("a", "b")``; ``a`` -> ``("a",)``."""
    if name.startswith("["):
        parts = _BRACKETS.findall(name)
        if not parts or "".join(f"[{p}]" for p in parts) != name:
            raise GrokError(f"invalid field reference {name!r}")
        return tuple(parts)
    if "." in name:
        parts = name.split(".")
        if any(not p for p in parts):
            raise GrokError(f"invalid field reference {name!r}")
        return tuple(parts)
    if not name:
        raise GrokError("empty field name")
    return (name,)


# One capture: (group index, flat key, nested path or None, cast or None).
_Field = tuple[int, str, tuple[str, ...] | None, Cast | None]


class _Compiled:
    """One grok expression compiled to one regex, plus how to read its groups."""

    __slots__ = ("expression", "fast", "fields", "pattern")

    def __init__(self, expression: str, pattern: regex.Pattern[str], fields: tuple[_Field, ...]) -> None:
        self.expression = expression
        self.pattern = pattern
        self.fields = fields
        self.fast = _stdlib_twin(pattern.pattern)


def _stdlib_twin(source: str) -> re.Pattern[str] | None:
    r"""The same regex compiled by the stdlib ``re``, when it accepts it unchanged.

    ``re`` (3.11+: atomic groups, possessive quantifiers) runs our patterns about
    3x faster than ``regex``. Anything ``re`` does not support (variable-width
    lookbehind, ``\p{..}``, POSIX classes, ...) or warns about keeps ``regex``.
    ``regex`` stays the reference engine: it validates every expression and is
    used whenever a per-search ``timeout`` is requested.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(source)
    except (re.error, Warning, RecursionError, OverflowError):
        return None


class _Expander:
    """Resolve ``%{...}`` references recursively into one regex string."""

    def __init__(self, defs: Mapping[str, str], named_only: bool, expression: str) -> None:
        self.defs = defs
        self.named_only = named_only
        self.expression = expression
        self.captures: list[tuple[str, str, Cast | None]] = []  # (group name, field, cast)
        self.used: list[str] = []

    def _group(self, field: str, typ: str | None) -> str:
        cast = None
        if typ is not None:
            cast = _CASTS.get(typ)
            if cast is None:
                raise GrokError(
                    f"unknown grok type {typ!r} for field {field!r} in {self.expression!r} (use int or float)"
                )
        field_path(field)  # validate early, with the expression in the traceback
        gname = f"g{len(self.captures) + 1}"
        self.captures.append((gname, field, cast))
        return gname

    def expand(self, text: str, stack: tuple[str, ...] = ()) -> str:
        out: list[str] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            out.append(text[pos : m.start()])
            pos = m.end()
            if m.group("esc") is not None:
                out.append(m.group(0))
                continue
            name = m.group("name")
            if name is not None:
                if name not in self.defs:
                    raise GrokError(f"unknown grok pattern %{{{name}}} in {self.expression!r}")
                if name in stack:
                    chain = " -> ".join((*stack, name))
                    raise GrokError(f"recursive grok pattern %{{{name}}} ({chain}) in {self.expression!r}")
                if name not in self.used:
                    self.used.append(name)
                field = m.group("field")
                typ = m.group("type")
                if field is None and not self.named_only:
                    field = name
                if field:
                    gname = self._group(field, typ)
                    inner = self.expand(self.defs[name], (*stack, name))
                    out.append(f"(?P<{gname}>{inner})")
                else:
                    out.append(f"(?:{self.expand(self.defs[name], (*stack, name))})")
                continue
            raw = m.group("raw")
            if raw is not None:
                out.append(f"(?P<{self._group(raw, None)}>")
                continue
            raise GrokError(f"malformed grok reference {m.group(0)!r} in {self.expression!r}")
        out.append(text[pos:])
        return "".join(out)


def _locate_bad_definition(defs: Mapping[str, str], used: Sequence[str], expression: str) -> str | None:
    """Find which referenced pattern holds the invalid regex, to name it in the error."""
    for name in used:
        try:
            exp = _Expander(defs, True, expression)
            regex.compile(translate(exp.expand(defs[name], (name,))))
        except (regex.error, GrokError) as exc:
            return f"invalid regex in grok pattern %{{{name}}} ({defs[name]!r}): {exc} in {expression!r}"
    return None


@functools.lru_cache(maxsize=512)
def _compile_cached(
    expression: str, user_defs: tuple[tuple[str, str], ...], named_only: bool, ecs_compatibility: str
) -> _Compiled:
    defs: Mapping[str, str] = builtin_patterns(ecs_compatibility)
    if user_defs:
        merged = dict(defs)
        merged.update(user_defs)
        defs = merged
    exp = _Expander(defs, named_only, expression)
    source = translate(exp.expand(expression))
    try:
        pattern = regex.compile(source)
    except regex.error as exc:
        msg = _locate_bad_definition(defs, exp.used, expression)
        raise GrokError(msg or f"invalid regex in grok expression {expression!r}: {exc}") from exc
    fields: list[tuple[int, _Field]] = []
    for gname, field, cast in exp.captures:
        idx = pattern.groupindex[gname] - 1  # index into match.groups()
        path = field_path(field)
        fields.append((idx, (idx, field, path if len(path) > 1 else None, cast)))
    fields.sort(key=lambda f: f[0])  # pattern order decides which duplicate wins
    return _Compiled(expression, pattern, tuple(f for _, f in fields))


def _set_nested(out: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    d = out
    for key in path[:-1]:
        nxt = d.get(key)
        if nxt is None:
            nxt = d[key] = {}
        elif not isinstance(nxt, dict):
            return  # a scalar already holds this name: first capture wins
        d = nxt
    d.setdefault(path[-1], value)


def _extract(m: Any, fields: tuple[_Field, ...]) -> Fields:
    vals = m.groups()
    out: Fields = {}
    for idx, key, path, cast in fields:
        v = vals[idx]
        if not v:
            continue
        if cast is not None:
            v = cast(v)
        if path is None:
            if key not in out:
                out[key] = v
        else:
            _set_nested(out, path, v)
    return out


class Grok:
    """A compiled list of grok expressions; ``match`` tries them in order."""

    __slots__ = ("_compiled", "expressions", "timeout")

    def __init__(self, expressions: tuple[str, ...], compiled: tuple[_Compiled, ...], timeout: float | None):
        self.expressions = expressions
        self._compiled = compiled
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Grok({list(self.expressions)!r})"

    @property
    def regexes(self) -> list[str]:
        """The fully expanded regex of each expression (for debugging)."""
        return [c.pattern.pattern for c in self._compiled]

    @property
    def field_names(self) -> list[str]:
        """Every field name that some expression can capture, in first-seen order."""
        seen: dict[str, None] = {}
        for c in self._compiled:
            for _, key, _, _ in c.fields:
                seen.setdefault(key, None)
        return list(seen)

    def match_or_timeout(self, text: str) -> Fields | None:
        """Like ``match`` but raises ``TimeoutError`` if one search exceeds ``timeout``."""
        if not isinstance(text, str):
            return None
        timeout = self.timeout
        for c in self._compiled:
            if timeout is not None:
                m = c.pattern.search(text, timeout=timeout)
            elif c.fast is not None:
                m = c.fast.search(text)
            else:
                m = c.pattern.search(text)
            if m is not None:
                return _extract(m, c.fields)
        return None

    def match(self, text: str) -> Fields | None:
        """Captured fields of the first expression that matches ``text``, else ``None``.

        Never raises: a search that exceeds ``timeout`` counts as no match.
        """
        try:
            return self.match_or_timeout(text)
        except TimeoutError:
            return None


def compile_grok(
    patterns: str | list[str],
    *,
    pattern_definitions: dict[str, str] | None = None,
    patterns_dir: str | None = None,
    named_captures_only: bool = True,
    timeout: float | None = None,
    ecs_compatibility: str = "disabled",
) -> Grok:
    """Compile one grok expression or a list (tried in order, first match wins).

    ``patterns_dir``: every file in the directory holds ``NAME regex`` lines.
    ``pattern_definitions``: inline ``{NAME: regex}``; both override built-ins,
    inline definitions override the directory. ``timeout`` (seconds) bounds each
    search; ``None`` (the default) means no limit and the fastest matching.
    ``ecs_compatibility``: which built-in set, ``disabled`` (legacy names) or ``v1`` (ECS).
    Raises ``GrokError`` for an unknown pattern, an invalid regex or a bad file.
    """
    exprs = [patterns] if isinstance(patterns, str) else list(patterns)
    if not exprs:
        raise GrokError("no grok expression given")
    for e in exprs:
        if not isinstance(e, str):
            raise GrokError(f"grok expression must be a string, got {type(e).__name__}")
    user: dict[str, str] = {}
    if patterns_dir:
        user.update(load_patterns_dir(patterns_dir))
    if pattern_definitions:
        user.update(validate_definitions(pattern_definitions))
    check_ecs_compatibility(ecs_compatibility)
    key = tuple(sorted(user.items()))
    compiled = tuple(_compile_cached(e, key, named_captures_only, ecs_compatibility) for e in exprs)
    return Grok(tuple(exprs), compiled, timeout)
