"""Command line: run / validate / version / schema, plus operator tools.

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
from pipeline.config import load_config
from pipeline.errors import ConfigError
from pipeline.gctune import tune_gc

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pipeline", description="Log shipping and processing daemon.")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="process log level (default: info)",
    )
    p.add_argument(
        "--log-format", default="json", choices=["json", "text"], help="process log format on stderr (default: json)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline")
    run.add_argument("--config", "-c", required=True, help="config file (YAML)")
    run.add_argument(
        "--once",
        action="store_true",
        help="read every source to its end, wait until every batch is settled, print a summary, exit",
    )

    val = sub.add_parser("validate", help="check a config file and report every problem")
    val.add_argument("--config", "-c", required=True)

    sub.add_parser("version", help="print the version")
    sub.add_parser("schema", help="print the JSON Schema of every component config")

    grok = sub.add_parser("grok", help="match stdin lines against a grok pattern; one JSON line each")
    grok.add_argument("pattern", nargs="+", help="grok pattern(s), tried in order")
    grok.add_argument("--patterns-dir", help="folder of extra pattern files")

    parse = sub.add_parser("parse", help="parse raw stdin lines as the `parse` transform would")
    parse.add_argument("--log-type", default="auto", help="application | access | error | auto")
    parse.add_argument("--schema", default="default", choices=["default", "ecs"], help="field names (default: flat)")
    parse.add_argument("--web-server", default="nginx", choices=["nginx", "apache"], help="ECS module of access logs")
    parse.add_argument(
        "--user-agent",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="parse user agents (default: with ecs)",
    )

    query = sub.add_parser("query", help="run SQL against the config's ClickHouse sink and print a table")
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
            config = load_config(args.config)
            _build_check(config)
            print(
                f"{args.config}: ok ({len(config.sources)} sources, {len(config.transforms)} transforms, "
                f"{len(config.sinks)} sinks)"
            )
            return EXIT_OK
        if args.command == "run":
            return _run(args.config, args.once)
        if args.command == "schema":
            from pipeline.schema import schema_json

            print(schema_json())
            return EXIT_OK
        if args.command in ("grok", "parse"):
            from pipeline import tools

            if args.command == "grok":
                return tools.grok(args.pattern, args.patterns_dir)
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


def _build_check(config: object) -> None:
    """Build every component without starting it: catches what only a build sees (unreadable GeoIP DB)."""
    from pipeline.topology import Topology

    async def build() -> None:
        Topology(config, once=True)  # type: ignore[arg-type]

    asyncio.run(build())


def _run(path: str, once: bool) -> int:
    config = load_config(path)
    tune_gc()
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
    except ConfigError:
        raise
    except Exception:
        log.exception("pipeline failed")
        return EXIT_FAILURE
