"""Parse -> geoip, written from the matches (pipeline/workers/geostep.py): the bytes and the counts
of running the transforms themselves on framed events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.types import GEOIP_FAILURE
from pipeline import registry
from pipeline.config import PipelineConfig, parse_config
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.metrics import Metrics
from pipeline.sources.framing import PlainFramer, Stamp
from pipeline.sources.lines import LineSplitter
from pipeline.workers import worker
from pipeline.workers.tasks import ChainSpec, Task

GEOIP = Path(__file__).resolve().parents[2] / "data" / "geoip"
TS = "2026-01-01T00:00:00.000Z"
# Known to the test databases (with and without a city, with an ASN), private, public without a record,
# IPv6, and not an address at all.
ADDRESSES = [
    "81.2.69.142", "89.160.20.112", "216.160.83.56", "67.43.156.0", "10.0.0.1", "192.168.1.1", "8.8.8.8",
    "1.2.3.4", "::1", "2001:db8::1", "999.1.1.1", "2.125.160.216",
]  # fmt: skip
LINE = '{ip} - - [10/Oct/2024:13:55:{s:02d} +0000] "GET /p/{i} HTTP/1.1" 200 {i} "-" "curl/8"{rt}'


def config(tmp: Path, geoip: dict[str, Any]) -> PipelineConfig:
    return parse_config(
        {
            "data_dir": str(tmp / "data"),
            "api": {"enabled": False},
            "workers": 2,
            "sources": {"logs": {"type": "file", "include": [str(tmp / "*.log")], "log_type": "access"}},
            "transforms": {
                "parsed": {"type": "parse", "inputs": ["logs"]},
                "located": {"type": "geoip", "inputs": ["parsed"], "database": str(GEOIP / "GeoLite2-City-Test.mmdb"),
                            "asn_database": str(GEOIP / "GeoLite2-ASN-Test.mmdb"), **geoip},
            },
            "sinks": {"out": {"type": "file", "inputs": ["located"], "path": str(tmp / "out.jsonl")}},
        },
        "<test>",
        {},
    )  # fmt: skip


def general_path(cfg: PipelineConfig, block: bytes, stamp: Stamp) -> tuple[bytes, dict[str, dict[str, int]]]:
    """Frame, then each transform on the batch (fresh instances), then encode; and the tags each counted."""
    metrics = Metrics()
    ctx = BuildContext(config=cfg, data_dir=cfg.data_dir, host=cfg.host,
                       dlq=DeadLetterQueue(cfg.data_dir / "dead_letter"), metrics=metrics, once=True)  # fmt: skip
    events, _ = PlainFramer(stamp).feed(LineSplitter(len(block) + 1, 0).feed(block), 0.0, TS, False)
    for name in ("parsed", "located"):
        model = cfg.transforms[name]
        spec = registry.lookup("transform", model.type)
        assert spec is not None
        events = spec.factory(name, model, ctx).process(events)
    return worker.encode(events), {name: dict(metrics.stats[name].tags) for name in ("parsed", "located")}


def written_path(cfg: PipelineConfig, block: bytes, stamp: Stamp) -> tuple[bytes, dict[str, dict[str, int]], bool]:
    worker.init(cfg, [ChainSpec("logs", ("parsed", "located"))])
    chain = worker._CHAINS["logs"]
    result = worker.run(Task("logs", stamp.host, stamp.key, stamp.path, "access", TS, 0, block, None, False))
    assert result.n == block.count(b"\n")
    return result.data, {name: counts.tags for name, counts in result.counts.items()}, chain.written


lines_strategy = st.lists(
    st.one_of(
        st.builds(lambda ip, i, rt: LINE.format(ip=ip, s=i % 60, i=i, rt=rt), st.sampled_from(ADDRESSES),
                  st.integers(0, 10**6), st.sampled_from(["", " 0.120", " 1.5 0.2"])),
        st.sampled_from(["not an access line", '1.2.3.4, 81.2.69.142 - - [x] "GET / HTTP/1.1" 200 1 "-" "-"']),
    ),
    min_size=1,
    max_size=40,
)  # fmt: skip


@given(lines_strategy)
@settings(max_examples=150, deadline=None)
def test_the_bytes_and_counts_of_the_transforms(tmp_path_factory: Any, lines: list[str]) -> None:
    tmp = tmp_path_factory.mktemp("geo")
    cfg = config(tmp, {})
    block = "".join(line + "\n" for line in lines).encode()
    stamp = Stamp("web-1", "2049:77:abc", "/var/log/nginx/access.log", "access")
    data, counts, written = written_path(cfg, block, stamp)
    assert written  # this chain is written from the matches
    expected, tags = general_path(cfg, block, stamp)
    assert data == expected
    assert counts == tags


def test_a_failure_is_tagged_and_counted_each_time(tmp_path: Path) -> None:
    cfg = config(tmp_path, {})
    addresses = ["1.2.3.4", "1.2.3.4", "10.0.0.1"]
    block = "".join(LINE.format(ip=ip, s=1, i=i, rt="") + "\n" for i, ip in enumerate(addresses))
    data, counts, _ = written_path(cfg, block.encode(), Stamp("h", "k", "/p", "access"))
    rows = data.splitlines()
    assert all(row.endswith(b',"tags":["_geoip_lookup_failure"]}') for row in rows[:2])  # the second from the cache
    assert b"geoip" not in rows[2] and b"tags" not in rows[2]  # a private address: nothing added
    assert counts["located"] == {GEOIP_FAILURE: 2}


def test_a_target_the_line_already_has_takes_the_transforms_themselves(tmp_path: Path) -> None:
    # Writing into an existing key keeps that key's place: not a fragment appended at the end.
    cfg = config(tmp_path, {"target": "message"})
    block = LINE.format(ip="81.2.69.142", s=1, i=1, rt="").encode() + b"\n"
    stamp = Stamp("h", "k", "/p", "access")
    data, _, written = written_path(cfg, block, stamp)
    assert not written
    assert data == general_path(cfg, block, stamp)[0]
