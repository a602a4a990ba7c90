"""The curated public API of parsers/ and its purity (no imports from pipeline/ or sinks/)."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import parsers

ROOT = Path(__file__).resolve().parents[3]
OUR_MODULES = [
    "parsers/__init__.py", "parsers/types.py", "parsers/errors.py", "parsers/grok.py", "parsers/patterns.py",
    "parsers/dates.py", "parsers/geoip.py", "parsers/dispatch.py", "parsers/formats/__init__.py",
    "parsers/formats/access.py", "parsers/formats/error.py", "parsers/formats/application.py",
    "parsers/formats/json.py",
]  # fmt: skip


def test_all_names_exist() -> None:
    for name in parsers.__all__:
        assert hasattr(parsers, name), name


@pytest.mark.parametrize(
    "name",
    ["compile_grok", "Grok", "GrokError", "EventParser", "DateParser", "GeoIPEnricher", "GeoIPDatabaseError",
     "GROK_FAILURE", "DATE_FAILURE", "JSON_FAILURE", "GEOIP_FAILURE", "TRUNCATED", "INVALID_UTF8", "add_tag"],
)  # fmt: skip
def test_required_exports(name: str) -> None:
    assert name in parsers.__all__


def test_signatures() -> None:
    assert str(inspect.signature(parsers.compile_grok)) == (
        "(patterns: 'str | list[str]', *, pattern_definitions: 'dict[str, str] | None' = None, "
        "patterns_dir: 'str | None' = None, named_captures_only: 'bool' = True, "
        "timeout: 'float | None' = None, ecs_compatibility: 'str' = 'disabled') -> 'Grok'"
    )
    geo = inspect.signature(parsers.GeoIPEnricher)
    assert list(geo.parameters) == [
        "city_database", "asn_database", "field", "target", "cache_size", "reload_check_interval", "clock",
    ]  # fmt: skip
    assert geo.parameters["field"].default == "client_ip"
    assert geo.parameters["cache_size"].default == 10000
    dates = inspect.signature(parsers.DateParser)
    assert list(dates.parameters)[:2] == ["formats", "default_timezone"]
    assert issubclass(parsers.GrokError, ValueError)


@pytest.mark.parametrize("path", OUR_MODULES)
def test_no_upward_imports(path: str) -> None:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in {"pipeline", "sinks"}, (path, name)


def test_importing_parsers_loads_no_pipeline_or_sinks() -> None:
    code = (
        "import sys, parsers, parsers.dispatch, parsers.geoip; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pipeline', 'sinks')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_docstring_example() -> None:
    p = parsers.EventParser(log_type="access")
    ev = p({"message": '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5'})
    assert (ev["status"], ev["@timestamp"]) == (200, "2000-10-10T20:55:36.000Z")


def test_heavy_parts_load_lazily() -> None:
    code = (
        "import sys, parsers; heavy = [m for m in ('geoip2', 'parsers.dispatch', 'parsers.formats.application') "
        "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert parsers.EventParser.__module__ == "parsers.dispatch"
