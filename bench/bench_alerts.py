#!/usr/bin/env python3
"""Alert rule cost per event: events/s of each rule type's fold, on one core.

Generates parsed access and application events (as the `parse` transform emits them:
`@timestamp` RFC 3339, status, request_time, level, logger, error.type) at 200 events
per second of event time, and folds batches of 1000 through one rule at a time: the
`event` rule of today, and each windowed type with the seed documents' settings. Only
the fold is timed (what `send` does before the state write); the events exist beforehand.
Also reported: the state snapshot's size and time (what each state write serialises).

Usage: python bench/bench_alerts.py [--events N] [--batch 1000] [--cpu 0] [--repeat 3]
This is a benchmark, not a test; it prints a table and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from parsers.dates import rfc3339_ms  # noqa: E402
from sinks.webhook.aggregate import Aggregator, Timing  # noqa: E402
from sinks.webhook.config_rules import RuleConfig  # noqa: E402
from sinks.webhook.counting import FrequencyRule, MetricRule, RatioRule, SpikeRule  # noqa: E402
from sinks.webhook.presence import AbsenceRule, NewValueRule  # noqa: E402
from sinks.webhook.rules import CompiledRule  # noqa: E402
from sinks.webhook.windowed import WindowedRule  # noqa: E402

APP = {"field": "log_type", "equals": "application"}
ERROR = {"all": [APP, {"field": "level", "equals": "ERROR"}]}
RULES: dict[str, dict[str, Any]] = {
    "event": {"name": "AppError", "when": ERROR, "labels": {"logger": "{logger}", "error_type": "{error.type}"}},
    "frequency": {"name": "ErrorBurst", "type": "frequency", "when": ERROR, "labels": {"logger": "{logger}"},
                  "window": "10m", "threshold": 10},
    "ratio": {"name": "HighErrorRate", "type": "ratio", "base": {"field": "log_type", "equals": "access"},
              "when": {"field": "status", "gte": 500}, "window": "5m", "threshold": 0.01, "min_count": 100},
    "metric": {"name": "HighLatencyP95", "type": "metric", "when": {"field": "log_type", "equals": "access"},
               "field": "request_time", "aggregate": "p95", "threshold": 0.5, "window": "5m"},
    "absence": {"name": "ServiceSilent", "type": "absence", "when": APP, "labels": {"logger": "{logger}"},
                "window": "5m"},
    "spike": {"name": "ErrorsDoubled", "type": "spike", "when": ERROR, "window": "1h", "factor": 2},
    "new_value": {"name": "NewErrorType", "type": "new_value", "when": ERROR, "field": "error.type",
                  "labels": {"error_type": "{error.type}"}},
}
KINDS: dict[str, type[WindowedRule]] = {"frequency": FrequencyRule, "ratio": RatioRule, "metric": MetricRule,
                                        "absence": AbsenceRule, "spike": SpikeRule, "new_value": NewValueRule}
LOGGERS = [f"svc{i}.api" for i in range(20)]
ERRORS = [f"Error{i}" for i in range(50)]


def events(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    start = 1_715_677_200.0
    out: list[dict[str, Any]] = []
    for i in range(n):
        ts = rfc3339_ms(start + i / 200)
        if i % 2:
            out.append({"@timestamp": ts, "log_type": "access", "status": 502 if rnd.random() < 0.02 else 200,
                        "request_time": round(rnd.expovariate(10), 3), "method": "GET", "path": "/api/v1/orders"})
        else:
            error = rnd.random() < 0.1
            event = {"@timestamp": ts, "log_type": "application", "level": "ERROR" if error else "INFO",
                     "logger": rnd.choice(LOGGERS), "message": "request handled"}
            if error:
                event["error"] = {"type": rnd.choice(ERRORS)}
            out.append(event)
    return out


def build(kind: str) -> tuple[Any, Aggregator]:
    config = RuleConfig.model_validate(RULES[kind])
    if kind == "event":
        agg = Aggregator([CompiledRule(config)], Timing(), max_alerts_per_minute=10_000)
        return agg, agg
    agg = Aggregator([], Timing(), max_alerts_per_minute=10_000)
    return KINDS[kind](config, agg, 60.0), agg


def run(kind: str, data: list[dict[str, Any]], batch: int) -> tuple[float, int, float]:
    rule, agg = build(kind)
    wall = 1_800_000_000.0
    gc.collect()
    t0 = time.perf_counter()
    for i in range(0, len(data), batch):
        rule.fold(data[i : i + batch], wall)
    elapsed = time.perf_counter() - t0
    t1 = time.perf_counter()
    snapshot = orjson.dumps({**agg.snapshot(), "windowed": rule.snapshot() if kind != "event" else {}})
    return elapsed, len(snapshot), time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--cpu", type=int, default=0, help="pin to this CPU (-1: no pinning)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    data = events(args.events)
    print(f"# {platform.python_implementation()} {platform.python_version()}, {args.events} events "
          f"(half access, half application; {args.events / 200 / 60:.0f} min of event time), batch {args.batch}")
    print("| rule type | events/s | ns/event | state snapshot | snapshot time |")
    print("|---|---:|---:|---:|---:|")
    for kind in RULES:
        best = min((run(kind, data, args.batch) for _ in range(args.repeat)), key=lambda r: r[0])
        elapsed, size, dump = best
        print(f"| {kind} | {args.events / elapsed:,.0f} | {elapsed / args.events * 1e9:,.0f} | "
              f"{size / 1024:,.1f} KiB | {dump * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
