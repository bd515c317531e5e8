"""BodyPump over a fake request body: read-ahead, zero-copy read1, and a stop that
wakes a reading worker (a cancelled handler must not leave a thread blocked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from aiohttp import web

from skiff.api.bridge import BodyPump


class _Content:
    def __init__(self, chunks: list[bytes], hang: bool) -> None:
        self.chunks = chunks
        self.hang = hang

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.hang:  # a client that stops sending without closing
            await asyncio.Event().wait()


def _request(chunks: list[bytes], hang: bool = False) -> web.Request:
    class _Request:
        content = _Content(chunks, hang)

    return cast(web.Request, _Request())


def test_reads_every_chunk_then_the_end() -> None:
    async def main() -> tuple[bytes, bytes, Any]:
        pump = BodyPump(_request([b"abc", b"defg"]), asyncio.get_running_loop())
        pump.start()
        try:
            head = await asyncio.to_thread(pump.peek, 2)
            first = await asyncio.to_thread(pump.read1, 2)
            rest = await asyncio.to_thread(pump.read)
        finally:
            await pump.stop()
        return head, bytes(first) + rest, first

    head, data, first = asyncio.run(main())
    assert head == b"ab"
    assert data == b"abcdefg"
    assert isinstance(first, memoryview)  # the received chunk itself, not a copy


def test_stop_wakes_a_reader_that_waits_for_more() -> None:
    async def main() -> None:
        pump = BodyPump(_request([b"x"], hang=True), asyncio.get_running_loop())
        pump.start()
        reader = asyncio.ensure_future(asyncio.to_thread(pump.read))
        await asyncio.sleep(0.05)
        await pump.stop()
        with pytest.raises(OSError, match="the upload failed"):
            await asyncio.wait_for(reader, 10)

    asyncio.run(main())
