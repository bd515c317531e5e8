"""Container routes beyond the lifecycle: top, stats, archive (cp), export, changes,
commit, update and prune.

    GET  /containers/{id}/top?ps_args=           {"Titles", "Processes"}
    GET  /containers/{id}/stats?stream=&one-shot= StatsJSON (a JSON line per second)
    HEAD /containers/{id}/archive?path=          X-Docker-Container-Path-Stat
    GET  /containers/{id}/archive?path=          tar + the stat header
    PUT  /containers/{id}/archive?path=&noOverwriteDirNonDir=   200
    GET  /containers/{id}/export                 tar of the rootfs
    GET  /containers/{id}/changes                [{"Path", "Kind"}]
    POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=   201 {"Id"}
    POST /containers/{id}/update                 {"Warnings"}
    POST /containers/prune?filters=              {"ContainersDeleted", "SpaceReclaimed"}
"""

from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import web

from skiff.api.app import json_response
from skiff.api.bridge import ResponseWriter, body_reader
from skiff.api.execs import read_json
from skiff.api.query import query_bool, query_filters, query_list, query_str
from skiff.api.registry import Route
from skiff.errors import InvalidArgument
from skiff.services.container_admin import ContainerAdmin
from skiff.services.container_fs import ContainerFs
from skiff.services.container_stats import StatsService
from skiff.services.core import ContainerCore, is_running
from skiff.services.events import Event, EventBus

STAT_HEADER = "X-Docker-Container-Path-Stat"


class ContainerExtrasApi:
    def __init__(
        self,
        core: ContainerCore,
        fs: ContainerFs,
        stats: StatsService,
        admin: ContainerAdmin,
        events: EventBus | None = None,
    ) -> None:
        self._core = core
        self._fs = fs
        self._stats = stats
        self._admin = admin
        self._events = events

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/containers/{id}/top", self.top),
            Route("GET", "/containers/{id}/stats", self.stats),
            Route("HEAD", "/containers/{id}/archive", self.archive_head),
            Route("GET", "/containers/{id}/archive", self.archive_get),
            Route("PUT", "/containers/{id}/archive", self.archive_put),
            Route("GET", "/containers/{id}/export", self.export),
            Route("GET", "/containers/{id}/changes", self.changes),
            Route("POST", "/commit", self.commit),
            Route("POST", "/containers/{id}/update", self.update),
            Route("POST", "/containers/prune", self.prune),
        ]

    async def top(self, request: web.Request) -> web.StreamResponse:
        ps_args = query_str(request.query, "ps_args")
        return json_response(await self._stats.top(request.match_info["id"], ps_args))

    async def stats(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        stream = query_bool(request.query, "stream", True)
        one_shot = query_bool(request.query, "one-shot")
        c = self._core.get(ref)
        if not stream:
            first = await self._stats.sample(ref)
            if one_shot or not is_running(c):
                return json_response(first)
            await asyncio.sleep(1)
            return json_response(await self._stats.sample(ref, first))
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        await response.prepare(request)
        previous = None
        try:
            while True:
                current = await self._stats.sample(ref, previous)
                await response.write(json.dumps(current).encode() + b"\n")
                previous = current
                if not is_running(self._core.get(ref)):
                    break
                await asyncio.sleep(1)
        except (ConnectionError, OSError):
            return response
        await response.write_eof()
        return response

    async def _stat_header(self, ref: str, path: str) -> str:
        c = self._core.get(ref)
        async with self._fs.rootfs(c) as root:
            st = await asyncio.to_thread(self._fs.stat, root, path, ref)
        return base64.b64encode(json.dumps(st.to_wire()).encode()).decode()

    def _path(self, request: web.Request) -> str:
        path = query_str(request.query, "path")
        if not path:
            raise InvalidArgument("path cannot be empty")
        return path

    async def archive_head(self, request: web.Request) -> web.StreamResponse:
        header = await self._stat_header(request.match_info["id"], self._path(request))
        return web.Response(status=200, headers={STAT_HEADER: header})

    async def archive_get(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        path = self._path(request)
        c = self._core.get(ref)
        async with self._fs.rootfs(c) as root:
            st = await asyncio.to_thread(self._fs.stat, root, path, ref)
            header = base64.b64encode(json.dumps(st.to_wire()).encode()).decode()
            response = web.StreamResponse(status=200, headers={STAT_HEADER: header})
            response.content_type = "application/x-tar"
            writer = ResponseWriter(request, response, asyncio.get_running_loop())

            def run() -> None:
                self._fs.write_archive(root, path, writer, ref)  # type: ignore[arg-type]
                writer.finish()

            await asyncio.to_thread(run)
        await response.write_eof()
        return response

    async def archive_put(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["id"]
        path = self._path(request)
        no_overwrite = query_bool(request.query, "noOverwriteDirNonDir")
        query_bool(request.query, "copyUIDGID")
        c = self._core.get(ref)
        if c.host_config.get("ReadonlyRootfs"):
            raise InvalidArgument("container rootfs is marked read-only")
        loop = asyncio.get_running_loop()
        async with self._fs.rootfs(c) as root:
            with body_reader(request, loop) as body:
                await asyncio.to_thread(
                    self._fs.extract_archive, root, path, body, ref, no_overwrite
                )
        return web.Response(status=200)

    async def export(self, request: web.Request) -> web.StreamResponse:
        c = self._core.get(request.match_info["id"])
        async with self._fs.rootfs(c) as root:
            response = web.StreamResponse(status=200)
            response.content_type = "application/x-tar"
            writer = ResponseWriter(request, response, asyncio.get_running_loop())

            def run() -> None:
                self._fs.export(root, writer)  # type: ignore[arg-type]
                writer.finish()

            await asyncio.to_thread(run)
        await response.write_eof()
        self._core.event(c, "export")
        return response

    async def changes(self, request: web.Request) -> web.StreamResponse:
        c = self._core.get(request.match_info["id"])
        items = await asyncio.to_thread(self._fs.changes, c)
        return json_response([{"Path": path, "Kind": kind} for path, kind in items])

    async def commit(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        ref = query_str(q, "container")
        if not ref:
            raise InvalidArgument("No container specified")  # moby's wording is close
        body = await read_json(request)
        repo = query_str(q, "repo")
        tag = query_str(q, "tag")
        repo_tag = ""
        if repo:
            from skiff.api.images import split_repo_tag

            name, tag = split_repo_tag(repo, tag)
            repo_tag = f"{name}:{tag}"
        image = await self._admin.commit(
            ref,
            repo_tag,
            comment=query_str(q, "comment"),
            author=query_str(q, "author"),
            pause=query_bool(q, "pause", True),
            changes=query_list(q, "changes"),
            config=body or None,
        )
        return json_response({"Id": image.id}, status=201)

    async def update(self, request: web.Request) -> web.StreamResponse:
        warnings = await self._admin.update(request.match_info["id"], await read_json(request))
        return json_response({"Warnings": warnings or None})

    async def prune(self, request: web.Request) -> web.StreamResponse:
        filters = query_filters(request.query, ("until", "label", "label!"))
        deleted, reclaimed = await self._admin.prune(filters)
        if self._events is not None:
            self._events.publish(
                Event("container", "prune", attributes={"reclaimed": str(reclaimed)})
            )
        return json_response({"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed})
