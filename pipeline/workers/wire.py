"""Frames between the main process and a worker: a length, then a pickle.

Each worker has its own pair of pipes (its stdin and stdout), so a worker that
dies mid-frame leaves a cut frame on a pipe no one else writes: the main
process reads end-of-file there and knows exactly which tasks to send again.
(A shared result queue, as `concurrent.futures.ProcessPoolExecutor` has, hangs
its reader on a frame cut by a killed writer.)
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any, BinaryIO

_LENGTH = struct.Struct("<Q")


def frame(obj: object) -> tuple[bytes, bytes]:
    """(header, body) of one frame: written one after the other, never copied into one."""
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)), body


def write_blocking(stream: BinaryIO, obj: object) -> None:
    """One frame to a blocking stream, flushed (a worker's answer)."""
    header, body = frame(obj)
    stream.write(header)
    stream.write(body)
    stream.flush()


def read_blocking(stream: BinaryIO) -> Any | None:
    """The next frame's object; None at the end of the stream (or a frame cut by it)."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    return pickle.loads(body)


async def read(reader: asyncio.StreamReader) -> Any:
    """The next frame's object; `asyncio.IncompleteReadError` when the writer is gone."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    return pickle.loads(await reader.readexactly(length))
