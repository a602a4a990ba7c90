"""Frames between the processes: what one side writes, the other reads back, however the pipe cuts it."""

from __future__ import annotations

import asyncio
import io
import random

import pytest

from pipeline.workers import wire

OBJECTS: list[object] = [("small", 1), b"x" * 300_000, {"nested": [1, 2.5, None]}, "", (True, b"\n" * 70_000)]


def stream() -> bytes:
    out = io.BytesIO()
    for obj in OBJECTS:
        wire.write_blocking(out, obj)
    return out.getvalue()


async def read_all(reader: wire.FrameReader) -> list[object]:
    got = []
    with pytest.raises(EOFError):
        while True:
            got.append(await reader.read())
    return got


@pytest.mark.parametrize("seed", range(5))
async def test_chunks_of_any_size_give_the_frames_back(seed: int) -> None:
    # asyncio's own pipes hand over chunks (data_received), cut anywhere.
    data, rng, reader = stream(), random.Random(seed), wire.FrameReader()
    pos = 0
    while pos < len(data):
        size = rng.choice([1, 3, 8, 9, 1000, 65536, 300_001])
        reader.data_received(data[pos : pos + size])
        pos += size
    reader.eof_received()
    assert await read_all(reader) == OBJECTS


@pytest.mark.parametrize("seed", range(5))
async def test_reads_into_its_buffers_give_the_frames_back(seed: int) -> None:
    # uvloop's pipes read into the buffer the protocol offers, as much as is there.
    data, rng, reader = stream(), random.Random(seed), wire.FrameReader()
    pos = 0
    while pos < len(data):
        target = reader.get_buffer(-1)
        n = min(len(target), rng.choice([1, 5, 4096, 1 << 20]), len(data) - pos)
        target[:n] = data[pos : pos + n]
        reader.buffer_updated(n)
        pos += n
    reader.connection_lost(None)
    assert await read_all(reader) == OBJECTS


async def test_a_reader_waits_for_its_frame_and_a_cut_frame_ends_the_stream() -> None:
    data, reader = stream(), wire.FrameReader()
    first = sum(map(len, wire.frame(OBJECTS[0])))
    pending = asyncio.ensure_future(reader.read())
    reader.data_received(data[: first - 1])
    await asyncio.sleep(0)
    assert not pending.done()  # one byte short
    reader.data_received(data[first - 1 : first])
    assert await pending == OBJECTS[0]
    reader.data_received(data[first:-10])  # every other frame, the last one cut short
    assert [await reader.read() for _ in OBJECTS[1:-1]] == OBJECTS[1:-1]
    reader.eof_received()
    with pytest.raises(EOFError):
        await reader.read()
