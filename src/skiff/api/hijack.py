"""Connection hijack for attach and exec start.

The client asks to switch protocols; skiffd answers and the socket becomes a raw byte pipe:

    client: POST /containers/ID/attach?stream=1&stdin=1...   Connection: Upgrade, Upgrade: tcp
    server: HTTP/1.1 101 UPGRADED                              Content-Type: ...raw-stream
    then:   client -> server  stdin bytes ... (half-close = stdin EOF)
            server -> client  raw or multiplexed output ... (close = end)

aiohttp's own protocol closes the socket when the peer half-closes, which would cut the
output of `echo hi | docker run -i busybox cat`; so after the 101 the transport is handed to
a small protocol of ours that keeps the write side open after EOF, and back to aiohttp's
protocol only to report the connection lost.

Clients must wait for the 101 before sending (the docker CLI and the SDK do): aiohttp's C
HTTP parser only knows websocket upgrades and drops bytes that arrive behind an
`Upgrade: tcp` request in the same read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from aiohttp import web

from skiff.errors import InvalidArgument

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"


def wants_upgrade(request: web.Request) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return "upgrade" in tokens and request.headers.get("Upgrade", "").lower() == "tcp"


class _Collector:
    """Takes the bytes aiohttp buffered after the upgrade request (aiohttp's set_parser)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self._reader.feed_eof()


class _RawProtocol(asyncio.Protocol):
    def __init__(self, reader: asyncio.StreamReader, previous: asyncio.BaseProtocol) -> None:
        self._reader = reader
        self._previous = previous
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self._reader.feed_data(data)

    def eof_received(self) -> bool:
        self._reader.feed_eof()
        return True  # keep our write side open: output continues after stdin EOF

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    async def drain(self) -> None:
        if self.closed.done():
            raise ConnectionResetError("connection lost")
        if self._paused:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def connection_lost(self, exc: Exception | None) -> None:
        self._reader.feed_eof()
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionResetError("connection lost"))
        if not self.closed.done():
            self.closed.set_result(None)
        self._previous.connection_lost(exc)


class HijackedConnection:
    """Raw bytes both ways. `read` returns b"" once the client half-closed (stdin EOF)."""

    def __init__(
        self, transport: asyncio.Transport, reader: asyncio.StreamReader, proto: _RawProtocol
    ) -> None:
        self._transport = transport
        self._reader = reader
        self._proto = proto

    async def read(self, n: int = 65536) -> bytes:
        return await self._reader.read(n)

    async def write(self, data: bytes) -> None:
        if self._transport.is_closing():
            raise ConnectionResetError("connection lost")
        self._transport.write(data)
        await self._proto.drain()

    def close_write(self) -> None:
        if self._transport.can_write_eof() and not self._transport.is_closing():
            self._transport.write_eof()

    def close(self) -> None:
        self._transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._proto.closed)


@asynccontextmanager
async def hijack(
    request: web.Request, content_type: str = RAW_STREAM
) -> AsyncIterator[HijackedConnection]:
    """Answer 101 UPGRADED and yield the raw connection; it is closed on exit."""
    if not wants_upgrade(request):
        raise InvalidArgument("this endpoint needs a connection upgrade (Upgrade: tcp)")
    transport = request.transport
    protocol = request.protocol
    if transport is None or not isinstance(transport, asyncio.Transport):
        raise ConnectionResetError("connection lost")

    response = web.StreamResponse(status=101, reason="UPGRADED")
    response.headers["Content-Type"] = content_type
    response.headers["Connection"] = "Upgrade"
    response.headers["Upgrade"] = "tcp"
    await response.prepare(request)
    response.force_close()  # once we are done aiohttp closes instead of reading a next request

    reader = asyncio.StreamReader(limit=2**20)
    reader.set_transport(transport)
    # Bytes the client sent right after its request are buffered in aiohttp's protocol.
    protocol.set_parser(cast(Any, _Collector(reader)))
    raw = _RawProtocol(reader, protocol)
    transport.set_protocol(raw)
    transport.resume_reading()
    conn = HijackedConnection(transport, reader, raw)
    try:
        yield conn
    finally:
        conn.close()
