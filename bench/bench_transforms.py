#!/usr/bin/env python3
"""Transform throughput: events/s of each transform's per-batch call on one core.

Builds each transform as the topology would (registry model + factory) with
the options of config/examples/seed-logstash.yaml where it has them, and
feeds it batches of already-parsed events (nginx access and application
events, as the parse transform leaves them; a mix of levels, methods, statuses
and request ids). Only `process` / `route` (and the source-fields stamp) are
timed; the event dicts are copied beforehand, since transforms change them in
place.

Usage: python bench/bench_transforms.py [--events 200000] [--batch 1000] [--cpu 0] [--repeat 3]
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import registry  # noqa: E402
from pipeline.config import SourceConfig  # noqa: E402
from pipeline.context import BuildContext  # noqa: E402
from pipeline.dlq import DeadLetterQueue  # noqa: E402
from pipeline.event import deep_copy  # noqa: E402
from pipeline.metrics import Metrics  # noqa: E402
from pipeline.source_fields import compile_stamp  # noqa: E402

METHODS = ["GET"] * 8 + ["POST", "PUT", "DELETE", "HEAD"]
STATUSES = ["200"] * 12 + ["201", "204", "301", "304", "400", "401", "403", "404", "500", "502", "503"]
LEVELS = ["DEBUG"] * 4 + ["INFO"] * 4 + ["WARNING", "ERROR"]

ENRICHED = [  # the example's common mutate
    {"add_tags": ["error"], "when": {"all": [{"field": "log_type", "equals": "application"},
                                             {"field": "level", "equals": "ERROR"}]}},
    {"set": {"environment": "production"}},
    {"add": {"service": "unknown"}},
    {"remove": ["@version", "host", "agent"]},
]
HTTP_METRICS = [
    {"name": "http_requests_total", "type": "counter", "labels": {"method": "{method}", "status": "{status_code}"}},
    {"name": "http_request_duration_seconds", "type": "histogram", "field": "request_time",
     "labels": {"method": "{method}"}},
]  # fmt: skip

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("mutate: convert (example)", "mutate",
     {"operations": [{"convert": {"status_code": "int", "bytes_sent": "int", "request_time": "float"}}]}),
    ("mutate: tag/set/add/remove (example)", "mutate", {"operations": ENRICHED}),
    ("mutate: rename+template+lowercase", "mutate",
     {"operations": [{"rename": {"request": "url.original"}}, {"set": {"route": "{method} {url.original}"}},
                     {"lowercase": ["method"]}]}),
    ("filter: keep level in [...]", "filter", {"keep": {"field": "level", "in": ["WARNING", "ERROR", "CRITICAL"]}}),
    ("route: 3 routes + unmatched", "route",
     {"routes": {"errors": {"field": "level", "equals": "ERROR"}, "slow": {"field": "request_time", "gt": 1.0},
                 "server_errors": {"field": "status_code", "gte": 500}}}),
    ("sample: 10%, counter, always_keep", "sample",
     {"rate": 0.1, "always_keep": {"field": "level", "in": ["WARNING", "ERROR"]}}),
    ("sample: 10% by request_id", "sample", {"rate": 0.1, "key_field": "request_id"}),
    ("throttle: 100/s per {service}", "throttle", {"threshold": 100, "window": 1, "key": "{service}"}),
    ("dedupe: event_id, 5000 cached", "dedupe", {"fields": ["event_id"]}),
    ("dedupe: @timestamp+host+message", "dedupe", {}),
    ("log_to_metric: http counter+histogram", "log_to_metric", {"metrics": HTTP_METRICS}),
]  # fmt: skip


def gen_events(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        event: dict[str, Any] = {
            "@timestamp": f"2024-01-02T03:{(i // 60) % 60:02d}:{i % 60:02d}.000Z",
            "host": "web-1",
            "source": {"path": "/var/log/nginx/access.log", "offset": i * 160},
            "event_id": f"8495370b4835b13f{i:012x}",
            "fields": {"log_type": "access", "service": rng.choice(["nginx", "api", "worker"])},
            "request_id": f"req-{i // 5}",
        }
        if i % 2:
            event.update(log_type="application", level=rng.choice(LEVELS), logger="app.db",
                         message=f"query {i} took {rng.randint(1, 900)}ms", service=event["fields"]["service"])
        else:
            event.update(log_type="access", client_ip="89.160.20.112", method=rng.choice(METHODS),
                         request=f"/api/v1/items/{rng.randint(1, 50)}", status_code=rng.choice(STATUSES),
                         bytes_sent=str(rng.randint(100, 90000)), request_time=f"{rng.random() * 1.5:.3f}",
                         message=f"access line {i}", service="nginx")
        out.append(event)
    return out


def build(type_name: str, options: dict[str, Any]) -> Any:
    spec = registry.lookup("transform", type_name)
    assert spec is not None
    model = spec.model.model_validate({"type": type_name, "inputs": ["in"], **options})
    tmp = Path("/tmp/bench-transforms")
    ctx = BuildContext(config=None, data_dir=tmp, host="h", dlq=DeadLetterQueue(tmp), metrics=Metrics())  # type: ignore[arg-type]
    return spec.factory("bench", model, ctx)


def timed(call: Callable[[list[dict[str, Any]]], Any], batches: list[list[dict[str, Any]]]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for batch in batches:
            call(batch)
        return time.process_time() - start
    finally:
        gc.enable()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the first allowed one)")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {args.cpu if args.cpu is not None else allowed[0]})
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{args.events} events in batches of {args.batch}, best of {args.repeat} (CPU time)")
    events = gen_events(args.events)
    print(f"{'transform':42} {'events/s':>12}")

    def batches() -> list[list[dict[str, Any]]]:
        fresh = deep_copy(events)
        return [fresh[i : i + args.batch] for i in range(0, len(fresh), args.batch)]

    stamp = compile_stamp(SourceConfig(type="file", fields={"log_type": "access", "service": "nginx"}))
    assert stamp is not None
    rows: list[tuple[str, Callable[[], Callable[[list[dict[str, Any]]], Any]]]] = [
        ("source fields (2, under `fields`)", lambda: stamp),
    ]
    for label, type_name, options in CASES:
        rows.append((label, lambda t=type_name, o=options: _call(build(t, o))))
    for label, make in rows:
        best = min(timed(make(), batches()) for _ in range(args.repeat))
        print(f"{label:42} {args.events / best:>12,.0f}", flush=True)
    return 0


def _call(transform: Any) -> Callable[[list[dict[str, Any]]], Any]:
    return transform.route if hasattr(transform, "route") else transform.process  # type: ignore[no-any-return]


if __name__ == "__main__":
    sys.exit(main())
