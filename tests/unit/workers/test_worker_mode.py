"""`workers: N`: file sources framed, parsed and encoded in worker processes, same output, same order.

`workers: 1` takes the same batch path in the main process (workers/inline.py) when every sink
at the chain's end writes encoded events; a blackhole sink beside the file sink keeps a run on the
per-event path, the reference every batch run is compared with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.config import parse_config
from pipeline.daemon import Daemon

LINE = '{ip} - - [10/Oct/2024:13:{m:02d}:{s:02d} +0000] "GET /p/{i} HTTP/1.1" {status} {i} "-" "curl/8" 0.{ms:03d}\n'


def write_logs(folder: Path, ips: list[str] | None = None) -> dict[str, int]:
    folder.mkdir()
    sizes = {"big.log": 20000, "small.log": 300, "odd.log": 50}
    for name, n in sizes.items():
        with open(folder / name, "w") as fh:
            for i in range(n):
                if name == "odd.log" and i % 7 == 0:
                    fh.write(f"not an access line {i}\n")  # parsed the slow way, in its place
                else:
                    ip = ips[i % len(ips)] if ips else f"10.0.{i % 250}.{i % 200 + 1}"
                    fh.write(LINE.format(ip=ip, m=i // 60 % 60, s=i % 60, i=i,
                                         status=(200, 404, 500)[i % 3], ms=i % 1000))
    return sizes


def comparable(event: dict[str, Any]) -> str:
    if "_grokparsefailure" in event.get("tags", ()):
        event = {k: v for k, v in event.items() if k != "@timestamp"}
    return json.dumps(event, sort_keys=True)


GEOIP_DB = Path(__file__).resolve().parents[2] / "data" / "geoip" / "GeoLite2-City-Test.mmdb"
MUTATE = {"type": "mutate", "inputs": ["parsed"], "operations": [{"add_tags": ["seen"]}]}
GEOIP = {"type": "geoip", "inputs": ["parsed"], "database": str(GEOIP_DB)}


async def run(
    tmp: Path, logs: Path, workers: int, second: dict[str, Any] = MUTATE, per_event: bool = False
) -> tuple[list[dict[str, Any]], Daemon]:
    label = f"{workers}{'-per-event' if per_event else ''}"
    out = tmp / f"out-{label}.jsonl"
    raw: dict[str, Any] = {
        "data_dir": str(tmp / f"data-{label}"),
        "api": {"enabled": False},
        "workers": workers,
        "sources": {"logs": {"type": "file", "include": [f"{logs}/*.log"], "start_at": "beginning",
                             "log_type": "access", "watch": False, "read_chunk_bytes": 64 * 1024}},
        "transforms": {"parsed": {"type": "parse", "inputs": ["logs"]}, "typed": second},
        "sinks": {"out": {"type": "file", "inputs": ["typed"], "path": str(out), "fsync": False}},
    }
    if per_event:  # a sink that wants event dicts: the batch path would not pay off, so it is not taken
        raw["sinks"]["hole"] = {"type": "blackhole", "inputs": ["typed"]}
    daemon = Daemon(parse_config(raw, "<test>", {}), once=True, show_progress=False)
    await daemon.run()
    return [orjson.loads(line) for line in out.read_bytes().splitlines()], daemon


@pytest.mark.parametrize("workers", [2, 1])
async def test_batches_give_the_same_events_in_the_same_order_per_file(tmp_path: Path, workers: int) -> None:
    sizes = write_logs(tmp_path / "logs")
    reference, _ = await run(tmp_path, tmp_path / "logs", 1, per_event=True)
    batched, daemon = await run(tmp_path, tmp_path / "logs", workers)
    assert bool(daemon.topology.plan.sources) and not _ran_per_event(daemon)
    total = sum(sizes.values())
    assert len(reference) == len(batched) == total
    # The same events (files interleave differently between runs; each file's own order is kept).
    # An unparsed line keeps its ingest time, which differs between the runs.
    assert sorted(map(comparable, reference)) == sorted(map(comparable, batched))
    for name in sizes:
        offsets = [e["source"]["offset"] for e in batched if e["source"]["path"].endswith(name)]
        assert offsets == sorted(offsets) and len(offsets) == sizes[name]
    assert all(e["tags"][-1] == "seen" for e in batched)
    # What the batch path's transforms counted shows on the main process's metrics.
    stats = daemon.metrics.stats
    assert stats["parsed"].events_in == stats["typed"].events_out == total
    assert stats["parsed"].tags.get("_grokparsefailure") == sum(1 for i in range(50) if i % 7 == 0)
    assert stats["out"].events_out == total


def _ran_per_event(daemon: Daemon) -> bool:
    """Whether the source's batches went through the transforms' queues (the per-event path)."""
    return daemon.topology.plan.sources == {}


async def test_one_worker_and_a_sink_that_wants_dicts_stays_per_event(tmp_path: Path) -> None:
    write_logs(tmp_path / "logs")
    events, daemon = await run(tmp_path, tmp_path / "logs", 1, per_event=True)
    assert _ran_per_event(daemon)
    assert daemon.metrics.stats["hole"].events_out == len(events) == 20350


async def test_checkpoints_reach_the_end_of_every_file(tmp_path: Path) -> None:
    write_logs(tmp_path / "logs")
    await run(tmp_path, tmp_path / "logs", 2)
    checkpoint = orjson.loads((tmp_path / "data-2" / "checkpoints" / "logs.json").read_bytes())
    offsets = {Path(f["path"]).name: f["offset"] for f in checkpoint["files"]}
    assert offsets == {name: (tmp_path / "logs" / name).stat().st_size for name in offsets}
    assert len(offsets) == 3


@pytest.mark.parametrize("workers", [2, 1])
async def test_parse_then_geoip_in_batches_gives_what_events_give(tmp_path: Path, workers: int) -> None:
    # Batches write most of these lines as JSON from their matches, geoip appended (geostep.py).
    sizes = write_logs(tmp_path / "logs", ips=["81.2.69.142", "89.160.20.112", "10.0.0.1", "1.2.3.4", "::1"])
    one, daemon_one = await run(tmp_path, tmp_path / "logs", 1, GEOIP, per_event=True)
    two, daemon_two = await run(tmp_path, tmp_path / "logs", workers, GEOIP)
    assert len(one) == len(two) == sum(sizes.values())
    assert sorted(map(comparable, one)) == sorted(map(comparable, two))
    assert sum("geoip" in e for e in two) > 8000  # London and Linkoping, two lines in five
    tags = daemon_two.metrics.stats["typed"].tags
    assert tags == daemon_one.metrics.stats["typed"].tags and tags["_geoip_lookup_failure"] > 4000
