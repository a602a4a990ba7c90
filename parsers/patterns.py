"""Load grok pattern definitions: our built-in library and user pattern files.

The built-in library lives in ``parsers/patterns/*.grok``, one file per family
(``base``, ``httpd``, ``syslog``, ``java``, ``nginx``, ...). Adding a family is
adding a file: every ``*.grok`` file in that directory is loaded, in name
order, with no change to the engine.

Two pattern sets, as in Logstash's ``ecs_compatibility`` option: ``disabled``
(the legacy field names: ``clientip``, ``response``, ...) is that directory;
``v1`` (Elastic Common Schema names: ``[source][address]``,
``[http][response][status_code]``, ...) is the same library with the files of
``parsers/patterns/ecs-v1/`` laid over it: a name defined there replaces the
legacy definition, and ECS-only names are added.

File format (built-in files and user ``patterns_dir`` files alike)::

    # comment
    NAME regex text up to the end of the line

A name is ``[A-Za-z0-9_]+``; the regex is everything after the first run of
whitespace. Blank lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Iterable, Mapping
from pathlib import Path

import regex

from parsers.errors import GrokError

BUILTIN_DIR = Path(__file__).with_name("patterns")
"""Directory of the built-in ``*.grok`` pattern files."""

ECS_V1_DIR = BUILTIN_DIR / "ecs-v1"
"""The ECS v1 overlay: names that differ from (or are missing in) the legacy set."""

ECS_COMPATIBILITY = ("disabled", "v1")
"""The pattern sets, by the value of Logstash's ``ecs_compatibility`` option."""

_NAME = regex.compile(r"[A-Za-z0-9_]+")
_LINE = regex.compile(r"([A-Za-z0-9_]+)\s+(.*\S)\s*")


def parse_pattern_text(text: str, source: str = "<string>") -> dict[str, str]:
    """Parse the ``NAME regex`` lines of one pattern file; later lines override earlier ones.

    Raises ``GrokError`` naming ``source`` and the line number for a malformed line.
    """
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            raise GrokError(f"{source}:{lineno}: expected 'NAME regex', got {raw!r}")
        out[m.group(1)] = m.group(2)
    return out


def load_pattern_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read one pattern file (UTF-8)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GrokError(f"cannot read grok pattern file {str(p)!r}: {exc}") from exc
    return parse_pattern_text(text, str(p))


def load_patterns_dir(directory: str | os.PathLike[str], glob: str = "*") -> dict[str, str]:
    """Load every regular, non-hidden file of ``directory`` matching ``glob``, in name order."""
    d = Path(directory)
    if not d.is_dir():
        raise GrokError(f"grok patterns_dir {str(d)!r} is not a directory")
    out: dict[str, str] = {}
    for f in sorted(d.glob(glob)):
        if f.is_file() and not f.name.startswith("."):
            out.update(load_pattern_file(f))
    return out


def load_library(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Every ``*.grok`` file of ``directory``, in name order; a name defined twice raises."""
    out: dict[str, str] = {}
    origin: dict[str, str] = {}
    for f in sorted(Path(directory).glob("*.grok")):
        for name, rx in load_pattern_file(f).items():
            if name in out:
                raise GrokError(f"grok pattern {name} defined in both {origin[name]} and {f.name}")
            out[name] = rx
            origin[name] = f.name
    return out


def check_ecs_compatibility(value: str) -> str:
    """Return ``value`` if it names a pattern set, else raise ``GrokError``."""
    if value not in ECS_COMPATIBILITY:
        raise GrokError(f"ecs_compatibility must be one of {', '.join(ECS_COMPATIBILITY)}, got {value!r}")
    return value


@functools.cache
def builtin_patterns(ecs_compatibility: str = "disabled") -> Mapping[str, str]:
    """The built-in library of one pattern set, read once (see the module docstring)."""
    lib = load_library(BUILTIN_DIR)
    if check_ecs_compatibility(ecs_compatibility) == "v1":
        lib.update(load_library(ECS_V1_DIR))
    return types.MappingProxyType(lib)


def builtin_pattern_names(ecs_compatibility: str = "disabled") -> list[str]:
    """Sorted names of the built-in patterns of one pattern set."""
    return sorted(builtin_patterns(ecs_compatibility))


def validate_definitions(defs: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Check user pattern names; return them as a plain dict."""
    items = defs.items() if isinstance(defs, Mapping) else defs
    out: dict[str, str] = {}
    for name, rx in items:
        if not isinstance(name, str) or _NAME.fullmatch(name) is None:
            raise GrokError(f"invalid grok pattern name {name!r}: use letters, digits and _")
        if not isinstance(rx, str):
            raise GrokError(f"grok pattern {name} must be a string, got {type(rx).__name__}")
        out[name] = rx
    return out
