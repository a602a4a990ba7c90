"""Static fields a source adds to every event it emits (Filebeat's `fields` / `fields_under_root`).

The options live on the base `SourceConfig`, so every source has them, and the
runtime applies them where batches leave a source: no source implements them.
Each event gets its own copy of mutable values, because transforms downstream
change events in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parsers.fieldpath import compile_getter, set_path
from pipeline.config import SourceConfig
from pipeline.event import Event, deep_copy

Stamp = Callable[[list[Event]], None]


def compile_stamp(config: SourceConfig) -> Stamp | None:
    """The per-batch function that adds `config.fields`, or None when there are none."""
    fields = dict(config.fields)
    if not fields:
        return None
    copy = _copier(fields)
    if config.fields_under_root:
        if copy is None:

            def stamp_root(events: list[Event]) -> None:
                for event in events:
                    event.update(fields)

            return stamp_root
        fresh_root = copy

        def stamp_root_copies(events: list[Event]) -> None:
            for event in events:
                event.update(fresh_root())

        return stamp_root_copies

    key = config.fields_key
    get = compile_getter(key)
    fresh = copy or fields.copy

    def stamp_under_key(events: list[Event]) -> None:
        for event in events:
            existing = get(event)
            if existing.__class__ is dict:
                existing.update(fresh())
            else:
                set_path(event, key, fresh())

    return stamp_under_key


def _copier(fields: dict[str, Any]) -> Callable[[], dict[str, Any]] | None:
    """A deep copier when some value is mutable (a list or mapping); None when sharing scalars is safe."""
    if not any(isinstance(v, dict | list) for v in fields.values()):
        return None
    return lambda: deep_copy(fields)
