"""`${VAR}` and `${VAR:-default}` substitution in parsed YAML values.

Runs over the parsed tree (not the raw text) so a value with YAML-special
characters cannot change the document's structure, and so each error can name
the key it occurred at. `$${` is a literal `${`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
# Logstash writes defaults as ${VAR:default}; here that is a likely mistake, not literal text.
_LOGSTASH_DEFAULT = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):(?!-)([^}]*)\}")


def interpolate(tree: Any, env: Mapping[str, str], path: str = "", errors: list[str] | None = None) -> Any:
    """Return a copy of `tree` with variables substituted; problems go to `errors`."""
    if errors is None:
        errors = []
    if isinstance(tree, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k), errors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [interpolate(v, env, f"{path}[{i}]", errors) for i, v in enumerate(tree)]
    if isinstance(tree, str) and "$" in tree:
        return _substitute(tree, env, path, errors)
    return tree


def _substitute(text: str, env: Mapping[str, str], path: str, errors: list[str]) -> Any:
    for m in _LOGSTASH_DEFAULT.finditer(text):
        errors.append(
            f"{path}: {m.group(0)} is not a default here; did you mean ${{{m.group(1)}:-{m.group(2)}}}? "
            "(write $${ for a literal ${)"
        )

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            errors.append(f"{path}: environment variable {name} is not set (use ${{{name}:-default}})")
            return ""
        return value

    result = _VAR.sub(repl, text)
    # A whole-value substitution that looks like a YAML scalar keeps its type,
    # so `batch_max_events: ${N:-500}` is an int, as if written literally.
    if result != text and _VAR.fullmatch(text) and _is_plain_scalar(result):
        try:
            loaded = yaml.safe_load(result)
        except yaml.YAMLError:
            return result
        if isinstance(loaded, int | float | bool):
            return loaded
    return result


def _is_plain_scalar(value: str) -> bool:
    return bool(value) and "\n" not in value
