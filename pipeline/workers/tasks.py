"""What crosses between the main process and a worker: the chains to build, tasks, results.

Kept apart from worker.py so the main process can make tasks without importing
what a worker runs (parsers, transforms): a file-only daemon starts faster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.sources.lines import RawLine


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """One offloaded source: its name (for its `fields`) and its transforms, in order."""

    source: str
    transforms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Task:
    """A block of complete lines of one file (`lines` instead when one of them was cut)."""

    chain: str  # the source's name
    host: str
    key: str  # the file identity (event ids derive from it)
    path: str
    log_type: str | None
    ts: str  # ingest time for `@timestamp` (as the file source stamps it)
    base: int  # offset of the block's first byte
    block: bytes  # lines, each ending with a newline
    lines: list[RawLine] | None
    crlf: bool


@dataclass(slots=True)
class Counts:
    """What one transform counted on one task (the main process adds it to the transform's stats)."""

    events_in: int = 0
    events_out: int = 0
    events_failed: int = 0
    events_dropped: int = 0
    tags: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Result:
    data: bytes  # JSON lines, one per event out of the chain
    n: int
    counts: dict[str, Counts]
