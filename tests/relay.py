"""A TCP relay between a client under test and a real service, to take the service "down" and back.

The services (Kafka, Elasticsearch, Alertmanager) are shared with tests running at the same
time, so a test must not stop them. Instead it points the client at a `Relay`, and
`cut()` takes the service away from that client only, in one of two ways:

- refused (the default): the listening socket closes (new connections are refused) and open
  connections are reset, which is what a client sees when a server process dies;
- silent (`cut(silent=True)`): connections stay open and new ones are accepted, but nothing
  is answered, as in a network partition or a hung host: clients learn only from their own
  timeouts, with requests in flight.

`restore()` listens again on the same port (after a silent cut it first resets the
connections that swallowed data: they cannot carry on).

Kafka clients only use the bootstrap address for their first metadata request, then connect
to the brokers the cluster advertises (127.0.0.1:9092 here), which would bypass a plain
relay. `KafkaRelay` reads the protocol's frames and rewrites the broker addresses in Metadata
responses to its own, so every connection of the client goes through it. (Consumer groups
would also need FindCoordinator rewritten; producers do not.)
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from typing import Any

# Per connection: correlation id -> (api key, api version) of requests awaiting a response.
State = dict[int, tuple[int, int]]


class _Connection:
    """One client connection and, while relayed, its upstream connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.done = asyncio.Event()

    def _run(self, *coros: Any) -> None:
        old, self.tasks = self.tasks, {asyncio.create_task(c) for c in coros}
        for task in self.tasks:
            task.add_done_callback(lambda t: self.done.set() if t in self.tasks else None)
        for task in old:
            task.cancel()

    def relay(self, owner: Relay, up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
        self.upstream = up_writer
        state: State = {}
        # Either direction ending (EOF, reset) ends the connection.
        self._run(
            owner.client_to_server(self.reader, up_writer, state), owner.server_to_client(up_reader, self.writer, state)
        )

    def silence(self) -> None:
        """Stop forwarding: drop the upstream side, read and discard what the client sends."""
        if self.upstream is not None:
            self.upstream.transport.abort()
            self.upstream = None
        self._run(_swallow(self.reader))

    def abort(self) -> None:
        for task in self.tasks:
            task.cancel()
        for w in (self.writer, self.upstream):
            if w is not None:
                w.transport.abort()
        self.done.set()


class Relay:
    """Forward connections on 127.0.0.1:<port> to `upstream` until cut."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0  # chosen at the first start, kept across cut/restore
        self.accepted = 0  # connections relayed so far (a test can check the client came through)
        self.mode = "up"  # up | refused | silent
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @classmethod
    def to_url(cls, url: str) -> Relay:
        """A relay for an http://host:port URL."""
        hostport = url.split("://", 1)[-1].split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        return cls(host, int(port))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def start(self) -> Relay:
        self.mode = "up"
        if self._server is None:
            server = await asyncio.start_server(self._accept, self.host, self.port)
            self.port = server.sockets[0].getsockname()[1]
            self._server = server
        return self

    async def cut(self, silent: bool = False) -> None:
        """Take the service away: refused (a dead server) or, with `silent`, unanswered (a partition)."""
        if silent:
            self.mode = "silent"
            for conn in list(self._connections):
                conn.silence()
            return
        self.mode = "refused"
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self._abort_all()
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        if self.mode == "silent":
            self._abort_all()  # they swallowed requests: the client must reconnect
        await self.start()

    async def aclose(self) -> None:
        await self.cut()

    async def __aenter__(self) -> Relay:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _abort_all(self) -> None:
        for conn in list(self._connections):
            conn.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refused":  # cut between accept and this callback
            writer.transport.abort()
            return
        conn = _Connection(reader, writer)
        self._connections.add(conn)
        try:
            if self.mode == "silent":
                conn.silence()
            else:
                try:
                    up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                except OSError:
                    return
                self.accepted += 1
                conn.relay(self, up_reader, up_writer)
                if self.mode == "silent":  # cut while connecting
                    conn.silence()
            await conn.done.wait()
        finally:
            conn.abort()
            await asyncio.gather(*conn.tasks, return_exceptions=True)
            self._connections.discard(conn)

    async def client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: State) -> None:
        await _copy(reader, writer)

    async def server_to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: State) -> None:
        await _copy(reader, writer)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def _swallow(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


# -- Kafka ------------------------------------------------------------------------------

METADATA = 3
FIRST_FLEXIBLE_METADATA = 9  # compact strings and arrays, tagged fields


class KafkaRelay(Relay):
    """A relay that advertises itself as the broker in Metadata responses (one-broker clusters)."""

    async def client_to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: State) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                frame = await _frame(reader)
                # Request header: api_key int16, api_version int16, correlation_id int32, ...
                api_key, version, correlation = struct.unpack_from(">hhi", frame, 4)
                state[correlation] = (api_key, version)
                writer.write(frame)
                await writer.drain()

    async def server_to_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: State) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                frame = await _frame(reader)
                (correlation,) = struct.unpack_from(">i", frame, 4)
                api_key, version = state.pop(correlation, (-1, -1))
                if api_key == METADATA:
                    body = rewrite_metadata_response(frame[4:], version, self.host, self.port)
                    frame = struct.pack(">i", len(body)) + body
                writer.write(frame)
                await writer.drain()


async def _frame(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(4)
    (size,) = struct.unpack(">i", head)
    return head + await reader.readexactly(size)


class _Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int16(self) -> int:
        return int(struct.unpack(">h", self.take(2))[0])

    def int32(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def uvarint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def skip_tagged_fields(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self.take(self.uvarint())


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def rewrite_metadata_response(payload: bytes, version: int, host: str, port: int) -> bytes:
    """A Metadata response (header + body, without the size) with every broker at host:port."""
    flexible = version >= FIRST_FLEXIBLE_METADATA
    r = _Reader(payload, 4)  # after the correlation id
    if flexible:
        r.skip_tagged_fields()  # response header v1
    if version >= 3:
        r.take(4)  # throttle_time_ms
    head = payload[: r.pos]
    count = r.uvarint() - 1 if flexible else r.int32()
    brokers = bytearray(_uvarint(count + 1) if flexible else struct.pack(">i", count))
    encoded_host = host.encode()
    for _ in range(count):
        node_id = r.int32()
        if flexible:
            r.take(r.uvarint() - 1)  # host
        else:
            r.take(r.int16())
        r.int32()  # port
        brokers += struct.pack(">i", node_id)
        brokers += _uvarint(len(encoded_host) + 1) if flexible else struct.pack(">h", len(encoded_host))
        brokers += encoded_host + struct.pack(">i", port)
        if version >= 1:  # rack, copied as it is
            start = r.pos
            length = r.uvarint() - 1 if flexible else r.int16()
            r.take(max(length, 0))
            brokers += payload[start : r.pos]
        if flexible:
            start = r.pos
            r.skip_tagged_fields()
            brokers += payload[start : r.pos]
    return head + bytes(brokers) + payload[r.pos :]
