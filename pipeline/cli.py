"""Command line: run / validate / test / version / schema, plus operator tools.

Exit codes: 0 success, 1 runtime failure, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from pipeline import __version__
from pipeline.errors import ConfigError, StartError
from pipeline.memtune import tune_memory

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

log = logging.getLogger(__name__)


def _global_flags(parser: argparse.ArgumentParser, with_defaults: bool) -> None:
    """--log-level / --log-format: accepted before the subcommand and after it."""
    parser.add_argument(
        "--log-level",
        default="info" if with_defaults else argparse.SUPPRESS,
        choices=["debug", "info", "warning", "error"],
        help="process log level (default: info)",
    )
    parser.add_argument(
        "--log-format",
        default="json" if with_defaults else argparse.SUPPRESS,
        choices=["json", "text"],
        help="process log format on stderr (default: json)",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipeline", description="Log shipping and processing daemon.")
    _global_flags(p, with_defaults=True)
    # Each subcommand takes them too, without defaults, so given after it they override.
    flags = argparse.ArgumentParser(add_help=False)
    _global_flags(flags, with_defaults=False)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[flags], help="run the pipeline")
    run.add_argument("--config", "-c", required=True, help="config file (YAML)")
    run.add_argument(
        "--once",
        action="store_true",
        help="read every source to its end, wait until every batch is settled, print a summary, exit",
    )

    val = sub.add_parser("validate", parents=[flags], help="check a config file and report every problem")
    val.add_argument("--config", "-c", required=True)

    test = sub.add_parser(
        "test", parents=[flags], help="run a config's unit tests: events in at a source, expected fields out"
    )
    test.add_argument("--config", "-c", required=True)
    test.add_argument("tests", nargs="*", help="test files (default: CONFIG.test.yaml beside the config)")

    sub.add_parser("version", parents=[flags], help="print the version")
    sub.add_parser("schema", parents=[flags], help="print the JSON Schema of every component config")

    grok = sub.add_parser("grok", parents=[flags], help="match stdin lines against a grok pattern; one JSON line each")
    grok.add_argument("pattern", nargs="+", help="grok pattern(s), tried in order")
    grok.add_argument("--patterns-dir", help="folder of extra pattern files")
    grok.add_argument(
        "--ecs-compatibility",
        choices=("disabled", "v1"),
        default="disabled",
        help="built-in pattern set: legacy field names (disabled, the default) or ECS v1 names",
    )

    parse = sub.add_parser("parse", parents=[flags], help="parse raw stdin lines as the `parse` transform would")
    parse.add_argument("--log-type", default="auto", help="application | access | error | auto")
    parse.add_argument("--schema", default="default", choices=["default", "ecs"], help="field names (default: flat)")
    parse.add_argument("--web-server", default="nginx", choices=["nginx", "apache"], help="ECS module of access logs")
    parse.add_argument(
        "--user-agent",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="parse user agents (default: with ecs)",
    )

    query = sub.add_parser(
        "query", parents=[flags], help="run SQL against the config's ClickHouse sink and print a table"
    )
    query.add_argument("--config", "-c", required=True)
    query.add_argument("--sink", help="which clickhouse sink (default: the only one)")
    query.add_argument("sql")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from pipeline.logs import setup_logging

    setup_logging(args.log_level, args.log_format)
    try:
        if args.command == "version":
            print(f"pipeline {__version__}")
            return EXIT_OK
        if args.command == "validate":
            return _validate(args.config)
        if args.command == "test":
            from pipeline import configtest

            return configtest.main(args.config, args.tests)
        if args.command == "run":
            return _run(args.config, args.once)
        if args.command == "schema":
            from pipeline.schema import schema_json

            print(schema_json())
            return EXIT_OK
        if args.command in ("grok", "parse"):
            from pipeline import tools

            if args.command == "grok":
                return tools.grok(args.pattern, args.patterns_dir, args.ecs_compatibility)
            return tools.parse(args.log_type, args.schema, args.web_server, args.user_agent)
        if args.command == "query":
            from pipeline import registry

            return registry.command("query")(args.config, args.sql, args.sink)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"configuration invalid: {len(exc.problems)} problem(s)", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return EXIT_FAILURE


def _validate(path: str) -> int:
    from pipeline.validate import validate

    report = validate(path)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not report.ok:
        raise ConfigError(report.problems)
    config = report.config
    assert config is not None
    print(
        f"{path}: ok ({len(config.sources)} sources, {len(config.transforms)} transforms, "
        f"{len(config.sinks)} sinks{f', {len(report.warnings)} warning(s)' if report.warnings else ''})"
    )
    return EXIT_OK


def _run(path: str, once: bool) -> int:
    from pipeline.workers import spawn

    spawn.start_early(path)  # their imports overlap this process's (spawn.py)
    from pipeline.config import load_config

    config = load_config(path)
    tune_memory()
    runner: Callable[[Coroutine[Any, Any, int]], int]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run

    async def go() -> int:
        from pipeline.daemon import Daemon
        from pipeline.summary import render_summary

        daemon = Daemon(config, once=once)
        code = await daemon.run()
        if once:
            print(render_summary(daemon.metrics, daemon.elapsed), flush=True)
        return code

    try:
        return runner(go())
    except Exception as exc:
        # Task groups wrap failures in ExceptionGroups: a config or start problem inside one
        # is still one clear line and exit 2, not a traceback.
        problems = _config_problems(exc, path)
        if problems:
            raise ConfigError(problems) from None
        log.exception("pipeline failed")
        return EXIT_FAILURE


def _config_problems(exc: BaseException, path: str) -> list[str]:
    """The problems of `exc` when every failure in it (through nested exception groups) is a
    ConfigError or StartError; [] when anything else failed (a crash keeps its traceback)."""
    leaves: list[BaseException] = []
    stack = [exc]
    while stack:
        current = stack.pop()
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        else:
            leaves.append(current)
    problems: list[str] = []
    for leaf in reversed(leaves):
        if isinstance(leaf, ConfigError):
            problems.extend(leaf.problems)
        elif isinstance(leaf, StartError):
            problems.append(leaf.problem(path))
        else:
            return []
    return problems
