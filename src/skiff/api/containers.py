"""Container routes of the Docker Engine API over skiff.services.containers.

    POST   /containers/create?name=          create        201 {"Id", "Warnings"}
    GET    /containers/json                  list          ContainerSummary[]
    GET    /containers/{id}/json             inspect       ContainerInspect
    POST   /containers/{id}/start            start         204 (304 already started)
    POST   /containers/{id}/stop?t=&signal=  stop          204 (304 already stopped)
    POST   /containers/{id}/kill?signal=     kill          204
    POST   /containers/{id}/restart          restart       204
    POST   /containers/{id}/pause|unpause    pause         204
    POST   /containers/{id}/wait?condition=  wait          200 at once, {"StatusCode"} when met
    POST   /containers/{id}/attach           attach        101, then raw or multiplexed bytes
    POST   /containers/{id}/resize?h=&w=     resize        200
    POST   /containers/{id}/rename?name=     rename        204
    GET    /containers/{id}/logs             logs          streamed, multiplexed unless a TTY
    DELETE /containers/{id}?force=&v=        remove        204

Handlers decode the query, call the service, and write the wire form with the
converters below (the only place Docker's CamelCase of a container is made).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from skiff.api.app import json_response
from skiff.api.container_create import parse_create
from skiff.api.framing import HEADER, STDERR, STDOUT, encode_frame
from skiff.api.hijack import MULTIPLEXED_STREAM, RAW_STREAM, HijackedConnection, hijack
from skiff.api.query import query_bool, query_filters, query_int, query_str, query_timestamp
from skiff.api.registry import Handler, Route
from skiff.errors import InvalidArgument
from skiff.services.container_network import empty_endpoint
from skiff.services.containers import (
    DEAD,
    EXITED,
    PAUSED,
    REMOVING,
    RESTARTING,
    RUNNING,
    ZERO_TIME,
    Container,
    ContainerFilters,
    ContainerService,
)
from skiff.shim.client import AsyncStream
from skiff.shim.jsonfile import parse_time
from skiff.shim.logreader import LogEntry
from skiff.units import human_duration

DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q


# -- domain -> wire ---------------------------------------------------------------------


def _ago(stamp: str) -> float:
    if not stamp or stamp == ZERO_TIME:
        return 0.0
    try:
        return max(0.0, time.time() - parse_time(stamp) / 1e9)
    except (ValueError, TypeError):
        return 0.0


def status_text(c: Container) -> str:
    s = c.state
    if s.status == RUNNING:
        return "Up " + human_duration(_ago(s.started_at))
    if s.status == PAUSED:
        return "Up " + human_duration(_ago(s.started_at)) + " (Paused)"
    if s.status == RESTARTING:
        return f"Restarting ({s.exit_code}) {human_duration(_ago(s.finished_at))} ago"
    if s.status == EXITED:
        return f"Exited ({s.exit_code}) {human_duration(_ago(s.finished_at))} ago"
    if s.status == REMOVING:
        return "Removal In Progress"
    if s.status == DEAD:
        return "Dead"
    return "Created"


def _unix(stamp: str) -> int:
    try:
        return parse_time(stamp) // 1_000_000_000
    except (ValueError, TypeError):
        return 0


def _networks(c: Container) -> dict[str, Any]:
    mode = c.network_mode
    if mode in ("host", "none"):
        return {mode: empty_endpoint()}
    return {}


def summary_to_wire(c: Container, size: tuple[int, int] | None = None) -> dict[str, Any]:
    command = " ".join([c.path, *c.args])
    wire: dict[str, Any] = {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.image_ref,
        "ImageID": c.image_id,
        "Command": command,
        "Created": _unix(c.created),
        "Ports": [],
        "Labels": c.labels,
        "State": c.state.status,
        "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.network_mode},
        "NetworkSettings": {"Networks": _networks(c)},
        "Mounts": c.mounts,
    }
    if size is not None:
        wire["SizeRw"], wire["SizeRootFs"] = size
    return wire


def inspect_to_wire(c: Container, size: tuple[int, int] | None = None) -> dict[str, Any]:
    s = c.state
    wire: dict[str, Any] = {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": s.status,
            "Running": s.running,
            "Paused": s.paused,
            "Restarting": s.restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": s.started_at,
            "FinishedAt": s.finished_at,
        },
        "Image": c.image_id,
        "ResolvConfPath": c.dir + "/resolv.conf",
        "HostnamePath": c.dir + "/hostname",
        "HostsPath": c.dir + "/hosts",
        "LogPath": c.log_path,
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": c.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": c.host_config,
        "GraphDriver": {"Data": {"MergedDir": c.rootfs}, "Name": c.driver},
        "Mounts": c.mounts,
        "Config": c.config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Ports": {},
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": _networks(c),
        },
    }
    if size is not None:
        wire["SizeRw"], wire["SizeRootFs"] = size
    return wire


# -- handlers ---------------------------------------------------------------------------


class ContainersApi:
    def __init__(self, service: ContainerService) -> None:
        self.svc = service

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Handler]] = [
            ("POST", "/containers/create", self.create),
            ("GET", "/containers/json", self.list),
            ("GET", "/containers/{id}/json", self.inspect),
            ("POST", "/containers/{id}/start", self.start),
            ("POST", "/containers/{id}/stop", self.stop),
            ("POST", "/containers/{id}/kill", self.kill),
            ("POST", "/containers/{id}/restart", self.restart),
            ("POST", "/containers/{id}/pause", self.pause),
            ("POST", "/containers/{id}/unpause", self.unpause),
            ("POST", "/containers/{id}/wait", self.wait),
            ("POST", "/containers/{id}/attach", self.attach),
            ("POST", "/containers/{id}/resize", self.resize),
            ("POST", "/containers/{id}/rename", self.rename),
            ("GET", "/containers/{id}/logs", self.logs),
            ("DELETE", "/containers/{id}", self.remove),
        ]
        return [Route(m, path, h) for m, path, h in table]

    async def _size(self, c: Container) -> tuple[int, int]:
        def measure() -> tuple[int, int]:
            try:
                rw = self.svc.images.snapshotter.usage(c.snapshot_key).size
            except Exception:
                rw = 0
            try:
                base = self.svc.images.get(c.image_id).size
            except Exception:
                base = 0
            return rw, rw + base

        return await asyncio.to_thread(measure)

    async def create(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json(loads=json.loads)
        except ValueError as e:
            raise InvalidArgument(f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("config cannot be empty in order to create a container")
        name = query_str(request.query, "name")
        platform = query_str(request.query, "platform")
        create = parse_create(body, name, platform)  # dockerd's checks and words
        c = await self.svc.create(body, name=name, platform=platform, create=create)
        return json_response({"Id": c.id, "Warnings": []}, 201)

    async def list(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        filters = ContainerFilters.parse(query_filters(q))
        items = self.svc.list(all=query_bool(q, "all"), filters=filters)
        limit = query_int(q, "limit", 0) or 0
        if limit > 0:
            items = items[:limit]
        size = query_bool(q, "size")
        out = [summary_to_wire(c, await self._size(c) if size else None) for c in items]
        if self.svc.network is not None:  # network hook: Ports, Networks
            for c, wire in zip(items, out, strict=True):
                wire["Ports"] = self.svc.network.summary_ports(c)
                wire["NetworkSettings"]["Networks"] = self.svc.network.networks(c)
        return json_response(out)

    async def inspect(self, request: web.Request) -> web.StreamResponse:
        c = self.svc.get(request.match_info["id"])
        size = await self._size(c) if query_bool(request.query, "size") else None
        wire = inspect_to_wire(c, size)
        if self.svc.network is not None:  # network hook: NetworkSettings
            wire["NetworkSettings"] = self.svc.network.settings(c)
        return json_response(wire)

    async def start(self, request: web.Request) -> web.StreamResponse:
        await self.svc.start(request.match_info["id"])
        return web.Response(status=204)

    async def stop(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        timeout = query_int(q, "t")
        await self.svc.stop(request.match_info["id"], timeout, query_str(q, "signal"))
        return web.Response(status=204)

    async def kill(self, request: web.Request) -> web.StreamResponse:
        await self.svc.kill(request.match_info["id"], query_str(request.query, "signal", "SIGKILL"))
        return web.Response(status=204)

    async def restart(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        await self.svc.restart(request.match_info["id"], query_int(q, "t"), query_str(q, "signal"))
        return web.Response(status=204)

    async def pause(self, request: web.Request) -> web.StreamResponse:
        await self.svc.pause(request.match_info["id"])
        return web.Response(status=204)

    async def unpause(self, request: web.Request) -> web.StreamResponse:
        await self.svc.unpause(request.match_info["id"])
        return web.Response(status=204)

    async def rename(self, request: web.Request) -> web.StreamResponse:
        await self.svc.rename(request.match_info["id"], query_str(request.query, "name"))
        return web.Response(status=204)

    async def remove(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        await self.svc.remove(
            request.match_info["id"], force=query_bool(q, "force"), volumes=query_bool(q, "v")
        )
        return web.Response(status=204)

    async def resize(self, request: web.Request) -> web.StreamResponse:
        c = self.svc.get(request.match_info["id"])
        h = query_int(request.query, "h", 0) or 0
        w = query_int(request.query, "w", 0) or 0
        await self.svc.resize(c, h, w)
        self.svc.event(c, "resize", height=str(h), width=str(w))
        return web.Response(status=200)

    async def wait(self, request: web.Request) -> web.StreamResponse:
        c = self.svc.get(request.match_info["id"])
        condition = query_str(request.query, "condition", "not-running")
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidArgument(f"invalid condition: {condition}")
        # Headers now (docker run waits for them before it starts), the body when met.
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(request)
        code = await self.svc.wait_for(c, condition)
        await response.write(json.dumps({"Error": None, "StatusCode": code}).encode() + b"\n")
        await response.write_eof()
        return response

    async def logs(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        c = self.svc.get(request.match_info["id"])
        stdout, stderr = query_bool(q, "stdout"), query_bool(q, "stderr")
        if not (stdout or stderr):
            raise InvalidArgument("You must choose at least one stream")
        tail_raw = query_str(q, "tail", "all")
        if tail_raw in ("all", ""):
            tail = None
        else:
            try:
                tail = int(tail_raw)
            except ValueError:
                raise InvalidArgument(f"invalid value for tail: {tail_raw}") from None
            if tail < 0:
                tail = None
        since = query_timestamp(q, "since")
        until = query_timestamp(q, "until")
        timestamps = query_bool(q, "timestamps")
        response = web.StreamResponse(status=200)
        response.content_type = RAW_STREAM if c.tty else MULTIPLEXED_STREAM
        await response.prepare(request)
        batches = self.svc.log_batches(
            c,
            follow=query_bool(q, "follow"),
            since_ns=since if since else None,
            until_ns=until if until else None,
            tail=tail,
        )
        with contextlib.suppress(ConnectionResetError):
            async for batch in batches:
                data = encode_log_batch(batch, stdout, stderr, timestamps, c.tty)
                if data:
                    await response.write(data)
            await response.write_eof()
        return response

    async def attach(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        c = self.svc.get(request.match_info["id"])
        want_stdin = query_bool(q, "stdin")
        want_stdout = query_bool(q, "stdout")
        want_stderr = query_bool(q, "stderr")
        detach_keys = parse_detach_keys(query_str(q, "detachKeys"))
        content_type = RAW_STREAM if c.tty else MULTIPLEXED_STREAM
        async with hijack(request, content_type) as conn:
            self.svc.event(c, "attach")
            if query_bool(q, "logs"):
                async for entry in self.svc.logs(c):
                    is_err = entry.stream == "stderr"
                    if (is_err and not want_stderr) or (not is_err and not want_stdout):
                        continue
                    await conn.write(_frame(c.tty, is_err, entry.line))
            if query_bool(q, "stream"):
                stream = await self.svc.attach(c, want_stdin, want_stdout, want_stderr)
                await pump(conn, stream, c.tty, want_stdin, detach_keys)
        return web.Response(status=101)  # never sent: the connection was hijacked


def encode_log_batch(
    batch: list[LogEntry], stdout: bool, stderr: bool, timestamps: bool, tty: bool
) -> bytes:
    """The wire bytes of log entries: the chosen streams, each line with its time when
    asked, raw for a TTY, else one multiplexed frame per entry."""
    parts: list[bytes] = []
    add = parts.append
    pack = HEADER.pack
    for entry in batch:
        is_err = entry.stream == "stderr"
        if not (stderr if is_err else stdout):
            continue
        data = entry.line
        if timestamps:
            data = entry.time.encode() + b" " + data
        if not tty:
            add(pack(STDERR if is_err else STDOUT, len(data)))
        add(data)
    return b"".join(parts)


def _frame(tty: bool, is_err: bool, data: bytes) -> bytes:
    return data if tty else encode_frame(STDERR if is_err else STDOUT, data)


def parse_detach_keys(text: str) -> bytes:
    """Docker's --detach-keys: "ctrl-p,ctrl-q", "a,ctrl-@", ..."""
    if not text:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for raw in text.split(","):
        key = raw.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            ch = key[5].upper()
            code = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}.get(ch)
            if code is None:
                if not "A" <= ch <= "Z":
                    raise InvalidArgument(f"Unknown character: '{key}'")
                code = ord(ch) - ord("A") + 1
            out.append(code)
        elif len(key) == 1:
            out += key.encode()
        else:
            raise InvalidArgument(f"Unknown character: '{key}'")
    return bytes(out)


async def pump(
    conn: HijackedConnection,
    stream: AsyncStream,
    tty: bool,
    stdin: bool,
    detach_keys: bytes,
) -> None:
    """Bytes both ways until the process's output ends, the client detaches (its
    detach keys, or it closes the connection)."""

    async def output() -> None:
        with contextlib.suppress(ConnectionResetError, OSError):
            async for kind, data in stream:
                await conn.write(_frame(tty, kind == STDERR, data))

    async def input() -> str:
        matched = b""
        while True:
            data = await conn.read()
            if not data:
                if stdin:
                    with contextlib.suppress(OSError, ConnectionResetError):
                        await stream.close_stdin()
                return "eof"
            if not stdin:
                continue
            send = bytearray()
            for byte in data:
                b = bytes([byte])
                if detach_keys and detach_keys.startswith(matched + b):
                    matched += b
                    if matched == detach_keys:
                        if send:
                            await stream.write(bytes(send))
                        return "detach"
                    continue
                send += matched + b
                matched = b""
            if send:
                await stream.write(bytes(send))

    out_task = asyncio.ensure_future(output())
    in_task = asyncio.ensure_future(input())
    try:
        while True:
            done, _ = await asyncio.wait({out_task, in_task}, return_when=asyncio.FIRST_COMPLETED)
            if out_task in done:
                break
            how = in_task.result()
            if how == "eof":
                # stdin ended: output goes on; a later close of the connection is a detach
                in_task = asyncio.ensure_future(_wait_closed(conn))
                continue
            # detach keys, or the client went away
            await stream.detach()
            break
    finally:
        for task in (out_task, in_task):
            task.cancel()
        await asyncio.gather(out_task, in_task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await stream.close()


async def _wait_closed(conn: HijackedConnection) -> str:
    await conn.wait_closed()
    return "closed"
