"""What a worker process runs: lines of one file in, JSON lines of the transformed events out.

The process builds, once (the pool's initializer), every offloaded chain: the
source's static fields and its per-event transforms, from the same validated
config the main process built them from. Each task is a block of complete
lines of one file (the main process split them, so offsets and truncation are
its own); the worker frames them as the file source would, runs the chain, and
encodes each event once. The main process gets back the bytes, the number of
events and what the chain's transforms counted (it adds those to their
metrics), and writes, settles and checkpoints in order.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import dataclass

import orjson

from parsers.dispatch import EventParser
from parsers.formats.access import AccessLogFormat
from pipeline import registry
from pipeline.config import PipelineConfig
from pipeline.context import BuildContext
from pipeline.dlq import DeadLetterQueue
from pipeline.event import Event
from pipeline.logs import setup_logging
from pipeline.memtune import tune_memory
from pipeline.metrics import ComponentStats, Metrics
from pipeline.source_fields import Stamp as FieldStamp
from pipeline.source_fields import compile_stamp
from pipeline.sources.framing import PlainFramer, Stamp
from pipeline.sources.lines import LineSplitter
from pipeline.transforms.base import Transform
from pipeline.transforms.geoip import GeoIPTransform
from pipeline.transforms.parse import ParseTransform
from pipeline.workers import wire
from pipeline.workers.fastpath import SlowLine, access_block, access_block_json
from pipeline.workers.geostep import GeoStep
from pipeline.workers.tasks import ChainSpec, Counts, Result, Task

log = logging.getLogger(__name__)

_ENCODE_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class _Chain:
    fields: FieldStamp | None
    transforms: list[tuple[str, Transform, ComponentStats]]
    # The first transform parses access lines and nothing else: the block fast path can do it.
    access: tuple[AccessLogFormat, EventParser] | None = None
    # The geoip step right after that parse, when it can be written as fragments (geostep.py).
    geo: GeoStep | None = None

    @property
    def written(self) -> bool:
        """Lines are written as JSON from their matches: the parse is the whole chain, or `geo` follows it."""
        return self.access is not None and (len(self.transforms) == 1 or self.geo is not None)


_CHAINS: dict[str, _Chain] = {}


def init(config: PipelineConfig, chains: list[ChainSpec]) -> None:
    """A worker process's initializer: build each chain's transforms once in this process."""
    tune_memory()
    _CHAINS.update(build_chains(config, chains))


def build_chains(config: PipelineConfig, chains: list[ChainSpec]) -> dict[str, _Chain]:
    """Each chain's static fields and transforms, built from the validated config (by source name)."""
    built: dict[str, _Chain] = {}
    metrics = Metrics()
    ctx = BuildContext(
        config=config,
        data_dir=config.data_dir,
        host=config.host,
        dlq=DeadLetterQueue(config.data_dir / "dead_letter"),
        metrics=metrics,
        once=True,
    )
    for spec in chains:
        transforms = []
        for name in spec.transforms:
            model = config.transforms[name]
            spec_of = registry.lookup("transform", model.type)
            assert spec_of is not None
            transforms.append(
                (name, spec_of.factory(name, model, ctx), metrics.component(name, "transform", model.type))
            )
        source = config.sources[spec.source]
        chain = built[spec.source] = _Chain(compile_stamp(source), transforms)
        first = transforms[0][1] if transforms else None
        if chain.fields is None and isinstance(first, ParseTransform):
            fmt = first.parser.access_only(source.log_type)
            if fmt is not None:
                chain.access = (fmt, first.parser)
                if len(transforms) == 2 and GeoStep.applies(transforms[1][1]):
                    name, geoip, stats = transforms[1]
                    assert isinstance(geoip, GeoIPTransform)
                    chain.geo = GeoStep(name, geoip, stats)
    return built


def serve() -> None:
    """A worker process's life: the chains from the first frame, then a task per frame, until end of input.

    The pool (pool.py) writes frames to this process's stdin and reads the answers
    from its stdout; anything else printed here goes to stderr, the daemon's log.
    Signals to the whole process group (Ctrl-C, systemd's stop) are the main
    process's to act on: it drains, then closes the input, and this loop ends.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tasks = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)  # a stray print lands in the log, not in the answers
    setup = wire.read_blocking(tasks)
    if setup is None:
        return
    config, chains, logging_setup = setup
    if logging_setup is not None:
        setup_logging(*logging_setup)
    init(config, chains)
    while (task := wire.read_blocking(tasks)) is not None:
        try:
            answer: tuple[bool, object] = (True, run(task))
        except Exception as exc:  # a bug: the reader that sent the task fails with it
            log.exception("worker task failed", extra={"source": task.chain, "path": task.path})
            answer = (False, RuntimeError(f"worker task failed: {exc!r}"))
        try:
            wire.write_blocking(answers, answer)
        except BrokenPipeError:  # the main process is gone
            return
    sys.stdout.flush()


def run(task: Task, chains: dict[str, _Chain] | None = None) -> Result:
    """One task through its chain (`chains`: this process's, built by `init`, unless given)."""
    chain = (_CHAINS if chains is None else chains)[task.chain]
    stamp = Stamp(task.host, task.key, task.path, task.log_type)
    counts: dict[str, Counts] = {}
    written = _access_json(chain, task, stamp, counts)
    if written is not None:
        return written
    transforms = chain.transforms
    events = _access_fast(chain, task, stamp, counts)
    if events is not None:
        transforms = transforms[1:]  # the fast path did the parse
    else:
        lines = task.lines
        if lines is None:
            lines = LineSplitter(len(task.block) + 1, task.base).feed(task.block)
        events, _ = PlainFramer(stamp).feed(lines, 0.0, task.ts, task.crlf)
        if chain.fields is not None:
            chain.fields(events)
    for name, transform, stats in transforms:
        n = len(events)
        count = counts[name] = Counts(events_in=n)
        tags_before = dict(stats.tags)
        try:
            out = transform.process(events)
        except Exception:
            # As in the main process: a bug, not bad input; the batch goes on unchanged.
            log.exception("transform failed; passing the batch on unchanged", extra={"component": name})
            count.events_failed = n
            out = events
        count.events_out = len(out)
        count.events_dropped = n - len(out)
        count.tags = _tags_since(stats, tags_before)
        events = out
    return Result(encode(events), len(events), counts)


def _access_json(chain: _Chain, task: Task, stamp: Stamp, counts: dict[str, Counts]) -> Result | None:
    """Parse (and geoip) is the whole chain: the block's JSON lines straight from the matches (fastpath.py)."""
    if not chain.written or task.lines is not None:
        return None
    assert chain.access is not None
    fmt, parser = chain.access
    parse_name, _, parse_stats = chain.transforms[0]
    geo = chain.geo
    parse_before = dict(parse_stats.tags)
    geo_before = dict(geo.stats.tags) if geo is not None else {}
    if geo is not None:
        geo.start_block()

    def finish(event: Event) -> bytes:  # a line built as a dict: counted, enriched, encoded as the chain does
        parse_stats.count_tags([event])
        if geo is not None:
            geo.transform.process([event])
        return encode_event(event)

    slow = _slow_line(stamp, task.ts, parser)
    written = access_block_json(
        task.block, task.base, stamp, task.ts, fmt, slow, finish, None if geo is None else geo.fragment
    )
    if written is None:
        return None
    data, n = written
    counts[parse_name] = Counts(events_in=n, events_out=n, tags=_tags_since(parse_stats, parse_before))
    if geo is not None:
        counts[geo.name] = Counts(events_in=n, events_out=n, tags=_tags_since(geo.stats, geo_before))
    return Result(data, n, counts)


def _tags_since(stats: ComponentStats, before: dict[str, int]) -> dict[str, int]:
    return {t: v - before.get(t, 0) for t, v in stats.tags.items() if v != before.get(t, 0)}


def _access_fast(chain: _Chain, task: Task, stamp: Stamp, counts: dict[str, Counts]) -> list[Event] | None:
    """Frame and parse the block in one loop (fastpath.py), counting for the parse transform."""
    if chain.access is None or task.lines is not None:
        return None
    fmt, parser = chain.access
    events = access_block(task.block, task.base, stamp, task.ts, fmt, _slow_line(stamp, task.ts, parser))
    if events is None:
        return None
    _count_parse(chain, events, counts)
    return events


def _slow_line(stamp: Stamp, ts: str, parser: EventParser) -> SlowLine:
    """A line the fast regex does not take: framed and parsed the general way."""

    def slow(text: str, offset: int) -> Event:
        event = stamp.event(text, offset, ts, None)
        parser.parse_batch([event])
        return event

    return slow


def _count_parse(chain: _Chain, events: list[Event], counts: dict[str, Counts]) -> None:
    """What the parse transform counts, for the events the fast path parsed."""
    name, _, stats = chain.transforms[0]
    tags_before = dict(stats.tags)
    stats.count_tags(events)
    counts[name] = Counts(events_in=len(events), events_out=len(events), tags=_tags_since(stats, tags_before))


def encode(events: list[Event]) -> bytes:
    dumps = orjson.dumps
    try:
        return b"".join([dumps(e, option=_ENCODE_OPTS) for e in events])
    except (orjson.JSONEncodeError, TypeError):
        return b"".join([_encode_one(e) for e in events])


def encode_event(event: Event) -> bytes:
    """One event's JSON line, as `encode` writes it."""
    try:
        return orjson.dumps(event, option=_ENCODE_OPTS)
    except (orjson.JSONEncodeError, TypeError):
        return _encode_one(event)


def _encode_one(event: Event) -> bytes:
    try:
        return orjson.dumps(event, default=str, option=_ENCODE_OPTS)
    except orjson.JSONEncodeError:
        # What orjson refuses even with `default` (an integer beyond 64 bits, which a grok `:int`
        # capture can make): the standard library writes it; JSON itself has no such limit.
        return json.dumps(event, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"
