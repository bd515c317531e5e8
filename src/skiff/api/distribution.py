"""Registry routes of the Docker Engine API over skiff.services.distribution.

    POST /images/create?fromImage=&tag=&platform=   pull   JSON progress stream
    POST /images/{name}/push?tag=                   push   JSON progress stream
    POST /auth                                      login  {"Status", "IdentityToken"}

`X-Registry-Auth` (base64url JSON from the docker CLI) carries the credentials of a
pull or push. `/images/create` is shared with import (`fromSrc`): the image routes
call `DistributionApi.pull` for a `fromImage` request. Errors before the first
progress line keep their status (an unknown image is a 404, which makes `docker run`
say so); later ones go in-band, as dockerd does. One exception: the registry's 401 on a
pull is a 500 here, as in dockerd ("no basic auth credentials"); a 401 would make the
docker CLI ask for a login ("Login prior to pull:") and wait on stdin.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from aiohttp import web

from skiff.api.app import json_response
from skiff.api.query import query_str
from skiff.api.registry import Route
from skiff.api.streams import JsonStream
from skiff.distribution.credentials import StaticCredentials, decode_registry_auth
from skiff.distribution.errors import RegistryError
from skiff.errors import InvalidArgument, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Callable

    from skiff.distribution.credentials import CredentialSource
    from skiff.distribution.progress import ProgressCallback, ProgressEvent
    from skiff.services.distribution import DistributionService

NAME = "{name:.+}"


def registry_auth(request: web.Request) -> CredentialSource | None:
    header = request.headers.get("X-Registry-Auth", "")
    creds, server = decode_registry_auth(header)
    return None if creds.empty else StaticCredentials(creds, server)


class DistributionApi:
    def __init__(self, service: DistributionService) -> None:
        self._service = service

    def routes(self) -> list[Route]:
        return [
            Route("POST", f"/images/{NAME}/push", self.push),
            Route("POST", "/auth", self.auth),
        ]

    async def _stream(
        self, request: web.Request, work: Callable[[ProgressCallback], object]
    ) -> web.StreamResponse:
        """Run `work(progress)` in a thread, streaming its progress events."""
        loop = asyncio.get_running_loop()
        stream = JsonStream(request)

        def progress(event: ProgressEvent) -> None:
            asyncio.run_coroutine_threadsafe(stream.send(event.to_json()), loop).result()

        async with stream:
            await asyncio.to_thread(work, progress)
        return stream.response

    # POST /images/create?fromImage=busybox&tag=latest&platform=linux/amd64
    async def pull(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        name = query_str(query, "fromImage")
        if not name:
            raise InvalidArgument("fromImage is required")
        tag = query_str(query, "tag") or None
        platform = query_str(query, "platform") or None
        creds = registry_auth(request)

        def work(progress: ProgressCallback) -> None:
            self._service.pull(name, tag, platform=platform, progress=progress, credentials=creds)

        try:
            return await self._stream(request, work)
        except Unauthorized as e:
            raise RegistryError(str(e)) from e

    # POST /images/{name}/push?tag=
    async def push(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        tag = query_str(request.query, "tag") or None
        creds = registry_auth(request)

        def work(progress: ProgressCallback) -> None:
            self._service.push(name, tag, progress=progress, credentials=creds)

        return await self._stream(request, work)

    # POST /auth {"username", "password", "serveraddress"}
    async def auth(self, request: web.Request) -> web.StreamResponse:
        try:
            doc = json.loads(await request.read() or b"{}")
        except ValueError:
            raise InvalidArgument("invalid JSON in the request body") from None
        if not isinstance(doc, dict):
            raise InvalidArgument("invalid auth configuration")
        status = await asyncio.to_thread(
            self._service.check_login,
            str(doc.get("serveraddress") or ""),
            str(doc.get("username") or ""),
            str(doc.get("password") or ""),
        )
        return json_response({"Status": status, "IdentityToken": ""})
