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
from collections import deque
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


class FrameReader(asyncio.BufferedProtocol):
    """The frames of a pipe, for the event loop: `await read()` gives the next frame's object.

    Each frame body is received into a buffer of its own length: under uvloop (a buffered
    protocol) the pipe is read straight into it, so an answer is copied once from the kernel
    and once by unpickling; with asyncio's own pipes, which hand over chunks (`data_received`),
    once more. (A stream reader copies each answer three more times.)
    """

    def __init__(self) -> None:
        self._header = bytearray(_LENGTH.size)
        self._body: bytearray | None = None  # the frame being received, once its header is in
        self._filled = 0  # bytes received of the header or the body
        self._frames: deque[bytearray] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False

    async def read(self) -> Any:
        """The next frame's object; EOFError once the writer is gone (a frame it cut is dropped)."""
        while not self._frames:
            if self._ended:
                raise EOFError("the pipe ended")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return pickle.loads(self._frames.popleft())

    def get_buffer(self, sizehint: int) -> memoryview:
        target = self._header if self._body is None else self._body
        return memoryview(target)[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        self._filled += nbytes
        if self._body is None and self._filled == _LENGTH.size:  # the header is in: the body next
            (length,) = _LENGTH.unpack(self._header)
            self._body = bytearray(length)
            self._filled = 0
        if self._body is not None and self._filled == len(self._body):
            self._frames.append(self._body)
            self._body = None
            self._filled = 0
            self._wake()

    def data_received(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            target = self.get_buffer(len(view))
            n = min(len(target), len(view))
            target[:n] = view[:n]
            view = view[n:]
            self.buffer_updated(n)

    def eof_received(self) -> None:
        self._end()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
