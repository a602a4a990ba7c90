"""Dotted field paths over nested event dicts: `error.type` reads `event["error"]["type"]`.

One rule everywhere (templates, conditions, GeoIP's source field, column
mappings): a key that itself contains the dots (`{"error.type": ...}` flat)
is found first; otherwise the path walks nested dicts. A missing step, or a
step through something that is not a dict, reads as None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Getter = Callable[[dict[str, Any]], Any]


def compile_getter(path: str) -> Getter:
    """A fast getter for `path`, built once (it runs per event)."""
    if "." not in path:
        return lambda obj: obj.get(path)
    parts = tuple(path.split("."))
    if len(parts) == 2:  # the common case (`error.type`), unrolled
        first, second = parts

        def get2(obj: dict[str, Any]) -> Any:
            value = obj.get(path)
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
            if value.__class__ is not dict:
                return None
            value = value.get(part)
            if value is None:
                return None
        return value

    return get


def get_path(obj: dict[str, Any], path: str) -> Any:
    """The value at `path`, or None (for one-off reads; hot loops use `compile_getter`)."""
    return compile_getter(path)(obj)


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set `path`, creating intermediate dicts; a non-dict in the way is replaced by a dict."""
    if "." not in path:
        obj[path] = value
        return
    *parents, last = path.split(".")
    node = obj
    for part in parents:
        child = node.get(part)
        if child.__class__ is not dict:
            child = node[part] = {}
        node = child
    node[last] = value


def pop_path(obj: dict[str, Any], path: str) -> Any:
    """Remove and return the value at `path` (a flat dotted key first), or None when absent."""
    if path in obj:
        return obj.pop(path)
    if "." not in path:
        return None
    *parents, last = path.split(".")
    node: Any = obj
    for part in parents:
        node = node.get(part)
        if node.__class__ is not dict:
            return None
    return node.pop(last, None)
