"""Type conversions of the `mutate` transform's `convert` operation: int, float, bool, string.

Each raises ValueError (or TypeError) when a value cannot be converted; the
transform then keeps the value and tags the event `_convertfailure`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pipeline.template import to_text

_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def to_int(value: Any) -> int:
    cls = value.__class__
    if cls is int:
        return value  # type: ignore[no-any-return]
    if cls is bool:
        return int(value)
    if cls is str:
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            value = float(text)  # "1.9" -> 1.9, below; anything else raises ValueError
            cls = float
    if cls is float:
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return int(value)
    raise TypeError(f"cannot convert {cls.__name__} to int")


def to_float(value: Any) -> float:
    cls = value.__class__
    if cls is float or cls is int or cls is bool:
        number = float(value)
    elif cls is str:
        number = float(value.strip())
    else:
        raise TypeError(f"cannot convert {cls.__name__} to float")
    if not math.isfinite(number):
        raise ValueError("not a finite number")  # JSON has no NaN or infinity
    return number


def to_bool(value: Any) -> bool:
    cls = value.__class__
    if cls is bool:
        return value  # type: ignore[no-any-return]
    if cls is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    elif (cls is int or cls is float) and value in (0, 1):
        return bool(value)
    raise ValueError(f"not a boolean: {value!r}")


def to_string(value: Any) -> str:
    return to_text(value)


CONVERTERS: dict[str, Callable[[Any], Any]] = {"int": to_int, "float": to_float, "bool": to_bool, "string": to_string}
