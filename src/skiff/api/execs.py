"""Exec routes of the Docker Engine API over skiff.services.execs.ExecService.

POST /containers/{id}/exec     create    201 {"Id"}
POST /exec/{id}/start          start     101 + raw/multiplexed stream (or 200 detached)
POST /exec/{id}/resize         resize    200
GET  /exec/{id}/json           inspect   ExecInspectResponse
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from skiff.api.app import json_response
from skiff.api.hijack import MULTIPLEXED_STREAM, RAW_STREAM, hijack, wants_upgrade
from skiff.api.query import query_int
from skiff.api.registry import Route
from skiff.errors import InvalidArgument
from skiff.services.execs import ExecConfig, ExecIO, ExecRecord, ExecService


async def read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    return body


def exec_to_wire(record: ExecRecord) -> dict[str, Any]:
    config = record.config
    return {
        "CanRemove": False,
        "ContainerID": record.container_id,
        "DetachKeys": config.detach_keys,
        "ExitCode": record.exit_code,
        "ID": record.id,
        "OpenStderr": config.attach_stderr,
        "OpenStdin": config.attach_stdin,
        "OpenStdout": config.attach_stdout,
        "ProcessConfig": {
            "arguments": config.cmd[1:],
            "entrypoint": config.cmd[0],
            "privileged": config.privileged,
            "tty": config.tty,
            "user": config.user,
        },
        "Running": record.running,
        "Pid": record.pid,
    }


def _console_size(value: Any) -> tuple[int, int] | None:
    """exec start's ConsoleSize: [height, width], or null."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    if not all(isinstance(n, int) and n >= 0 for n in value):
        raise InvalidArgument("ConsoleSize must be [height, width]")
    return value[0], value[1]


class ExecApi:
    def __init__(self, execs: ExecService) -> None:
        self._execs = execs

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/containers/{id}/exec", self.create),
            Route("POST", "/exec/{id}/start", self.start),
            Route("POST", "/exec/{id}/resize", self.resize),
            Route("GET", "/exec/{id}/json", self.inspect),
        ]

    async def create(self, request: web.Request) -> web.StreamResponse:
        config = ExecConfig.from_wire(await read_json(request))
        exec_id = self._execs.create(request.match_info["id"], config)
        return json_response({"Id": exec_id}, status=201)

    async def start(self, request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        exec_id = request.match_info["id"]
        record = self._execs.get(exec_id)  # 404 before any upgrade
        tty = bool(body.get("Tty")) or record.config.tty
        console_size = _console_size(body.get("ConsoleSize"))
        if body.get("Detach"):
            await self._execs.start(exec_id, None)
            return web.Response(status=200)
        content_type = RAW_STREAM if tty else MULTIPLEXED_STREAM
        if wants_upgrade(request):
            async with hijack(request, content_type) as conn:
                io = ExecIO(conn.read, conn.write)
                await self._execs.start(exec_id, io, tty, console_size)
                conn.close_write()
            return web.Response(status=101)  # already sent; aiohttp drops this one
        response = web.StreamResponse(status=200)
        response.content_type = content_type
        await response.prepare(request)

        async def no_stdin() -> bytes:
            return b""

        await self._execs.start(exec_id, ExecIO(no_stdin, response.write), tty, console_size)
        await response.write_eof()
        return response

    async def resize(self, request: web.Request) -> web.StreamResponse:
        height = query_int(request.query, "h", 0) or 0
        width = query_int(request.query, "w", 0) or 0
        await self._execs.resize(request.match_info["id"], height, width)
        return web.Response(status=200)

    async def inspect(self, request: web.Request) -> web.StreamResponse:
        record = await self._execs.inspect(request.match_info["id"])
        return json_response(exec_to_wire(record))
