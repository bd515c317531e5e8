"""Build routes of the Docker Engine API over skiff.services.build.

    POST /build          tar context in (plain or compressed), JSON lines out:
                         {"stream": "Step 1/3 : FROM busybox\\n"} ... {"aux": {"ID": ...}}
                         errors after the stream started go in-band with the RUN's code:
                         {"errorDetail": {"code": 3, "message": M}, "error": M}
    POST /build/prune    {"CachesDeleted": [...], "SpaceReclaimed": N}

The context is read (as an index, build/context.py) and the Dockerfile parsed before any
byte is answered, so a missing or broken Dockerfile is a plain 400, as dockerd answers it.
The upload is read ahead on the loop (BodyPump) while the worker hashes it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from skiff.api.app import json_response
from skiff.api.bridge import BodyPump
from skiff.api.query import query_bool, query_list, query_str
from skiff.api.registry import Route
from skiff.api.streams import JsonStream
from skiff.build.builder import BuildError, BuildOptions
from skiff.errors import InvalidArgument, SkiffError, Unsupported
from skiff.services.build import BuildService


def _json_map(query: Any, name: str) -> dict[str, Any]:
    raw = query_str(query, name)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidArgument(f"invalid {name} JSON: {raw}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {name} JSON: expected an object")
    return value


def parse_options(query: Any) -> BuildOptions:
    if query_str(query, "remote"):
        raise Unsupported("building from a remote context is not supported by skiff")
    build_args = {
        str(k): (None if v is None else str(v)) for k, v in _json_map(query, "buildargs").items()
    }
    labels = {str(k): str(v) for k, v in _json_map(query, "labels").items()}
    return BuildOptions(
        tags=query_list(query, "t"),
        build_args=build_args,
        labels=labels,
        target=query_str(query, "target"),
        no_cache=query_bool(query, "nocache"),
        pull=query_bool(query, "pull"),
        quiet=query_bool(query, "q"),
        remove=query_bool(query, "rm", True),
        force_remove=query_bool(query, "forcerm"),
        platform=query_str(query, "platform"),
    )


class BuildApi:
    def __init__(self, service: BuildService) -> None:
        self._service = service

    def routes(self) -> list[Route]:
        return [Route("POST", "/build", self.build), Route("POST", "/build/prune", self.prune)]

    async def build(self, request: web.Request) -> web.StreamResponse:
        options = parse_options(request.query)
        dockerfile = query_str(request.query, "dockerfile") or "Dockerfile"
        loop = asyncio.get_running_loop()
        pump = BodyPump(request, loop)
        pump.start()
        try:
            prepared = await asyncio.to_thread(self._service.prepare, pump, dockerfile)
        finally:
            await pump.stop()
        stream = JsonStream(request)
        await stream.start()

        def emit(message: dict[str, Any]) -> None:
            asyncio.run_coroutine_threadsafe(stream.send(message), loop).result()

        try:
            await asyncio.to_thread(self._service.build, prepared, options, emit)
        except BuildError as e:
            await _send_error(stream, str(e), e.code)
        except SkiffError as e:
            await _send_error(stream, str(e), None)
        except ConnectionResetError:
            pass
        return stream.response

    async def prune(self, request: web.Request) -> web.StreamResponse:
        deleted, reclaimed = await asyncio.to_thread(self._service.prune)
        return json_response({"CachesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


async def _send_error(stream: JsonStream, message: str, code: int | None) -> None:
    detail: dict[str, Any] = {"message": message}
    if code is not None:
        detail = {"code": code, "message": message}
    try:
        await stream.send({"errorDetail": detail, "error": message})
    except ConnectionResetError:
        pass
