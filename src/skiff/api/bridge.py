"""Blocking file objects over aiohttp streams, for domain code that runs in a worker thread.

The domain is synchronous (tarfile, hashlib, sqlite3) and runs under `asyncio.to_thread`;
request and response bodies live on the event loop. These adapters carry bytes between
the two without spooling whole archives to disk or memory:

    worker thread                         event loop
    BodyReader.readinto()  ── waits on ─▶ request.content.read(n)      (upload: import, load)
    ResponseWriter.write() ── waits on ─▶ response.prepare / write     (download: save)

Each call blocks the worker until the loop has done the step, which gives back-pressure
both ways: a slow client slows `save`, a slow store slows the upload. They must never be
used from the loop's own thread (that would deadlock).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")

WRITE_CHUNK = 1 << 20  # coalesce small tar writes: one loop round trip per MiB


def _on_loop(loop: asyncio.AbstractEventLoop, coro: Awaitable[T]) -> T:
    async def run() -> T:
        return await coro

    return asyncio.run_coroutine_threadsafe(run(), loop).result()


class BodyReader(io.RawIOBase):
    """The request body as a non-seekable binary file (read it in a worker thread)."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._content = request.content
        self._loop = loop
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if len(view) == 0:
            return 0
        data = _on_loop(self._loop, self._content.read(len(view)))
        n = len(data)
        view[:n] = data
        self.bytes_read += n
        return n


def body_reader(request: web.Request, loop: asyncio.AbstractEventLoop) -> io.BufferedReader:
    return io.BufferedReader(BodyReader(request, loop), buffer_size=WRITE_CHUNK)


class ResponseWriter(io.RawIOBase):
    """A streamed response as a binary file. Headers go out with the first bytes, so
    an error raised before anything was written still becomes a normal error status."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__()
        self._request = request
        self.response = response
        self._loop = loop
        self._pending = bytearray()
        self.started = False

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._pending += data
        if len(self._pending) >= WRITE_CHUNK:
            self._send()
        return len(data)

    def flush(self) -> None:
        if self._pending:
            self._send()

    def _send(self) -> None:
        chunk = bytes(self._pending)
        self._pending.clear()
        _on_loop(self._loop, self._write(chunk))

    async def _write(self, chunk: bytes) -> None:
        if not self.started:
            self.started = True
            await self.response.prepare(self._request)
        await self.response.write(chunk)

    def finish(self) -> None:
        """Send what is buffered (and the headers, if nothing was sent yet)."""
        self.flush()
        if not self.started:
            _on_loop(self._loop, self._write(b""))
