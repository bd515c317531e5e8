"""JSON-lines progress streams (pull, push, load, build, events).

    async with JsonStream(request) as stream:
        await stream.send({"status": "Pulling from library/busybox", "id": "latest"})

Headers go out with the first message (or at `start()`). An error raised inside the block
before anything was sent propagates, so the client gets a real status (a 404 makes
`docker run` pull); after that it is written in-band as Docker does:
`{"errorDetail": {"message": M}, "error": M}`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from types import TracebackType
from typing import Any

from aiohttp import web

from skiff.errors import SkiffError

log = logging.getLogger(__name__)


def error_message(message: str) -> dict[str, Any]:
    return {"errorDetail": {"message": message}, "error": message}


class JsonStream:
    def __init__(self, request: web.Request, content_type: str = "application/json") -> None:
        self._request = request
        self.response = web.StreamResponse(status=200)
        self.response.content_type = content_type
        self.started = False

    async def start(self) -> None:
        if not self.started:
            self.started = True
            await self.response.prepare(self._request)

    async def send(self, message: dict[str, Any]) -> None:
        await self.start()
        await self.response.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def __aenter__(self) -> JsonStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not self.started:
            return False
        if isinstance(exc, ConnectionResetError):
            return True  # the client went away; nothing to tell it
        if not isinstance(exc, Exception):
            return False  # cancellation and the like
        if isinstance(exc, SkiffError):
            message = str(exc)
        else:
            log.error("stream failed", exc_info=exc)
            message = "internal error"
        with contextlib.suppress(ConnectionResetError):
            await self.send(error_message(message))
        return True
