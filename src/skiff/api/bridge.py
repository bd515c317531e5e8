"""Blocking file objects over aiohttp streams, for domain code that runs in a worker thread.

The domain is synchronous (tarfile, hashlib, sqlite3) and runs under `asyncio.to_thread`;
request and response bodies live on the event loop. These adapters carry bytes between
the two without spooling whole archives to disk or memory:

    worker thread                         event loop
    BodyReader.readinto()  ── waits on ─▶ request.content.read(n)      (upload: import, load)
    BodyPump.readinto()    ◀─ queue ───── a task reading ahead         (upload: build context)
    ResponseWriter.write() ── waits on ─▶ response.prepare / write     (download: save)

Each BodyReader/ResponseWriter call blocks the worker until the loop has done the step,
which gives back-pressure both ways: a slow client slows `save`, a slow store slows the
upload. BodyPump trades that lock-step for throughput: its task keeps reading while the
worker works (no loop round trip per read), and stops when READ_AHEAD bytes wait. None of
them may be used from the loop's own thread (that would deadlock).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue
import threading
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

T = TypeVar("T")

WRITE_CHUNK = 1 << 20  # coalesce small tar writes: one loop round trip per MiB
READ_AHEAD = 8 << 20  # bytes a BodyPump holds before its task waits for the worker


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


class BodyPump(io.RawIOBase):
    """The request body as a non-seekable binary file, read ahead by a task on the loop.

    On the loop: `start()`, then (after the worker is done) `await stop()`. In the worker:
    `read1` hands out the received chunks themselves (no copy); `peek`, and `read` for
    code that wants a plain file. A failed upload reads as an OSError."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._content = request.content
        self._loop = loop
        self._queue: queue.SimpleQueue[bytes | BaseException | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._waiting = 0  # bytes put but not yet taken by the worker
        self._room = asyncio.Event()
        self._current = memoryview(b"")
        self._eof = False
        self._stopped = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._loop.create_task(self._pump())

    async def stop(self) -> None:
        """Stop reading (what the worker did not take is dropped). A worker still reading
        (its handler was cancelled: the client left) gets an OSError, never a hang."""
        self._stopped = True
        self._queue.put(ConnectionAbortedError("the upload was stopped"))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _pump(self) -> None:
        end: BaseException | None = None
        try:
            async for chunk in self._content.iter_any():
                with self._lock:
                    self._waiting += len(chunk)
                    full = self._waiting > READ_AHEAD
                self._queue.put(chunk)
                if full:
                    self._room.clear()
                    with self._lock:
                        full = self._waiting > READ_AHEAD
                    if full:
                        await self._room.wait()
                if self._stopped:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as e:
            end = e
        self._queue.put(end)

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        """Wait for a chunk unless one is at hand; False at the end."""
        if self._current:
            return True
        if self._eof:
            return False
        item = self._queue.get()
        if item is None:
            self._eof = True
            return False
        if isinstance(item, BaseException):
            self._eof = True
            raise OSError(f"the upload failed: {item}") from item
        self._current = memoryview(item)
        return True

    def read1(self, size: int = -1, /) -> memoryview | bytes:
        """Up to `size` bytes of one received chunk, not copied (b"" at the end)."""
        if size == 0 or not self._fill():
            return b""
        n = len(self._current) if size < 0 else min(size, len(self._current))
        out = self._current[:n]
        self._current = self._current[n:]
        self._taken(n)
        return out

    def peek(self, size: int = 0, /) -> bytes:
        if not self._fill():
            return b""
        return bytes(self._current[: max(size, 1)])

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        chunk = self.read1(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def _taken(self, n: int) -> None:
        with self._lock:
            before = self._waiting
            self._waiting -= n
            room = before > READ_AHEAD >= self._waiting
        if room:  # the task may be waiting for it
            self._loop.call_soon_threadsafe(self._room.set)


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
