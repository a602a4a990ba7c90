"""Operator tools behind `pipeline grok` and `pipeline parse`: stdin lines in, JSON lines out."""

from __future__ import annotations

import sys
from typing import Literal

import orjson

from parsers import EventParser, GrokError, compile_grok
from pipeline.errors import ConfigError


def grok(patterns: list[str], patterns_dir: str | None, ecs_compatibility: str = "disabled") -> int:
    """Print the captured fields of each stdin line as JSON, or `null` when nothing matches."""
    try:
        compiled = compile_grok(patterns, patterns_dir=patterns_dir, ecs_compatibility=ecs_compatibility)
    except GrokError as exc:
        raise ConfigError([f"grok: {exc}"]) from None
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n").decode("utf-8", "replace")
        out.write(orjson.dumps(compiled.match(line)) + b"\n")
    out.flush()
    return 0


def parse(
    log_type: str,
    schema: str = "default",
    web_server: Literal["nginx", "apache"] = "nginx",
    user_agent: bool | None = None,
) -> int:
    """Print each stdin line as the `parse` transform would emit it."""
    try:
        parser = EventParser(log_type, schema=schema, web_server=web_server, user_agent=user_agent)
    except ValueError as exc:
        raise ConfigError([f"--log-type: {exc}"]) from None
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        event = parser({"message": raw.rstrip(b"\r\n").decode("utf-8", "replace")})
        out.write(orjson.dumps(event, default=str) + b"\n")
    out.flush()
    return 0
