"""Image routes of the Docker Engine API over an `ImageBackend` (skiff.services.images).

    GET    /images/json                 list             ImageSummary[]
    GET    /images/{name}/json          inspect          ImageInspect
    GET    /images/{name}/history       history          HistoryResponseItem[]
    POST   /images/{name}/tag           tag              201, no body
    DELETE /images/{name}               remove           [{"Untagged"}|{"Deleted"}]
    POST   /images/create?fromSrc=-     import           JSON stream, last {"status": id}
    POST   /images/load                 load             JSON stream of {"stream": ...}
    GET    /images/get?names=...        save             application/x-tar, streamed
    GET    /images/{name}/get           save one         application/x-tar, streamed
    POST   /images/prune                prune            {"ImagesDeleted", "SpaceReclaimed"}
    POST   /skiff/images/bootstrap      skiff's own: a busybox image from the host

Each handler decodes a typed query (a bad value is a 400 in Docker's words), runs the
backend in a worker thread (it is synchronous: files, tar, SQLite), and writes the wire
form with the converters below. Bodies stream through skiff.api.bridge, never whole in
memory. The backend publishes its own image events (tag, untag, delete, import, load,
save); only `prune`, which dockerd logs for the request as a whole, is published here.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from skiff.api.app import json_response, request_api_version
from skiff.api.bridge import ResponseWriter, body_reader
from skiff.api.query import query_bool, query_filters, query_list, query_str
from skiff.api.registry import DiskUsage, Handler, Route
from skiff.api.streams import JsonStream
from skiff.errors import InvalidArgument, Unsupported
from skiff.services.events import Event, EventBus
from skiff.services.images import (
    HistoryEntry,
    Image,
    ImageBackend,
    ImageConfig,
    ImageFilters,
)

LIST_FILTERS = ("dangling", "label", "before", "since", "reference", "until")
PRUNE_FILTERS = ("dangling", "label", "label!", "until")
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as dockerd shows "never"
NAME = "{name:.+}"  # image names contain slashes: /images/localhost:5000/a/b:1/json
V1_44 = (1, 44)


# -- domain -> wire ---------------------------------------------------------------------


def config_to_wire(config: ImageConfig) -> dict[str, Any]:
    """Docker's container.Config as image inspect shows it (the container-only fields
    empty); `omitempty` fields are left out when unset, as Go's encoder does."""
    wire: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": config.user,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
    }
    if config.exposed_ports:
        wire["ExposedPorts"] = {port: {} for port in config.exposed_ports}
    wire.update({"Tty": False, "OpenStdin": False, "StdinOnce": False})
    wire["Env"] = list(config.env) or None
    wire["Cmd"] = list(config.cmd) if config.cmd is not None else None
    if config.healthcheck is not None:
        wire["Healthcheck"] = dict(config.healthcheck)
    if config.args_escaped:
        wire["ArgsEscaped"] = True
    wire.update(
        {
            "Image": "",
            "Volumes": {path: {} for path in config.volumes} or None,
            "WorkingDir": config.working_dir,
            "Entrypoint": list(config.entrypoint) if config.entrypoint is not None else None,
            "OnBuild": list(config.on_build) or None,
            "Labels": dict(config.labels) or None,
        }
    )
    if config.stop_signal:
        wire["StopSignal"] = config.stop_signal
    if config.shell is not None:
        wire["Shell"] = list(config.shell)
    return wire


def _wire_refs(image: Image) -> tuple[list[str], list[str]]:
    """RepoTags and RepoDigests; an image with neither is `<none>:<none>` (as dockerd)."""
    if not image.repo_tags and not image.repo_digests:
        return ["<none>:<none>"], ["<none>@<none>"]
    return list(image.repo_tags), list(image.repo_digests)


def summary_to_wire(image: Image, api_version: tuple[int, int] = V1_44) -> dict[str, Any]:
    tags, digests = _wire_refs(image)
    wire: dict[str, Any] = {
        "Containers": image.containers,
        "Created": image.created_unix,
        "Id": image.id,
        "Labels": dict(image.config.labels),
        "ParentId": image.parent,
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": image.shared_size,
        "Size": image.size,
    }
    if api_version < V1_44:
        wire["VirtualSize"] = image.size  # removed in API 1.44
    return wire


def inspect_to_wire(image: Image, api_version: tuple[int, int] = V1_44) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": image.parent,
        "Comment": image.comment,
    }
    if image.created:
        wire["Created"] = image.created
    # Container and ContainerConfig are deprecated, but still sent up to API 1.44.
    wire["Container"] = image.container
    wire["ContainerConfig"] = config_to_wire(image.container_config or ImageConfig())
    wire.update(
        {
            "DockerVersion": image.docker_version,
            "Author": image.author,
            "Config": config_to_wire(image.config),
            "Architecture": image.architecture,
        }
    )
    if image.variant:
        wire["Variant"] = image.variant
    wire["Os"] = image.os
    if image.os_version:
        wire["OsVersion"] = image.os_version
    wire["Size"] = image.size
    if api_version < V1_44:
        wire["VirtualSize"] = image.size
    wire.update(
        {
            "GraphDriver": {"Data": {}, "Name": "overlay2"},
            "RootFS": {"Type": "layers", "Layers": list(image.diff_ids)},
            "Metadata": {"LastTagTime": ZERO_TIME},
        }
    )
    return wire


def history_to_wire(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "Comment": entry.comment,
        "Created": entry.created,
        "CreatedBy": entry.created_by,
        "Id": entry.id,
        "Size": entry.size,
        "Tags": list(entry.tags) or None,
    }


def deletes_to_wire(items: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    """[("Untagged", "busybox:latest"), ("Deleted", "sha256:...")] -> Docker's items."""
    return [{kind: value} for kind, value in items]


# -- reference helpers ------------------------------------------------------------------


def split_repo_tag(repo: str, tag: str) -> tuple[str, str]:
    """The `repo`/`tag` query pair of tag and import: a tag inside `repo` counts
    unless `tag` is given (dockerd's RepoTagReference)."""
    if not repo:
        raise InvalidArgument("invalid reference format")
    if "@" in repo:
        raise InvalidArgument("refusing to create a tag with a digest reference")
    name, sep, inner = repo.rpartition(":")
    if sep and "/" not in inner:
        return name, tag or inner
    return repo, tag or "latest"


def familiar_match(pattern: str, ref: str) -> bool:
    """dockerd's reference.FamiliarMatch: a pattern without a tag matches the name."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    tagged_pattern = ":" in pattern.rsplit("/", 1)[-1] or "@" in pattern
    target = ref if tagged_pattern else name
    return fnmatch.fnmatchcase(target, pattern)


# -- the API ----------------------------------------------------------------------------


class ImagesApi:
    """Route table and `/system/df` provider for images."""

    def __init__(
        self,
        backend: ImageBackend,
        events: EventBus | None = None,
        pull: Handler | None = None,
    ) -> None:
        self._backend = backend
        self._events = events
        # `POST /images/create?fromImage=` is a pull: the distribution API answers it.
        self._pull = pull

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/images/json", self.list),
            Route("POST", "/images/create", self.create),
            Route("POST", "/images/load", self.load),
            Route("GET", "/images/get", self.save),
            Route("POST", "/images/prune", self.prune),
            Route("GET", f"/images/{NAME}/json", self.inspect),
            Route("GET", f"/images/{NAME}/history", self.history),
            Route("POST", f"/images/{NAME}/tag", self.tag),
            Route("GET", f"/images/{NAME}/get", self.save),
            Route("DELETE", f"/images/{NAME}", self.remove),
            Route("POST", "/skiff/images/bootstrap", self.bootstrap),
        ]

    # GET /images/json?all=&filters=&shared-size=&digests=
    async def list(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        show_all = query_bool(query, "all")
        raw_filters = query_filters(query, LIST_FILTERS)
        filters = ImageFilters.from_filters(raw_filters)
        shared_size = query_bool(query, "shared-size")
        query_bool(query, "digests")  # accepted; RepoDigests are always sent
        images = await asyncio.to_thread(self._backend.list, show_all, filters)
        if shared_size:
            usage = {i.id: i for i in await asyncio.to_thread(self._backend.disk_usage)}
            images = [usage.get(i.id, i) for i in images]
        version = request_api_version(request)
        return json_response([summary_to_wire(image, version) for image in images])

    # GET /images/{name}/json
    async def inspect(self, request: web.Request) -> web.StreamResponse:
        image = await asyncio.to_thread(self._backend.get, request.match_info["name"])
        return json_response(inspect_to_wire(image, request_api_version(request)))

    # GET /images/{name}/history
    async def history(self, request: web.Request) -> web.StreamResponse:
        entries = await asyncio.to_thread(self._backend.history, request.match_info["name"])
        return json_response([history_to_wire(e) for e in entries])

    # POST /images/{name}/tag?repo=&tag=
    async def tag(self, request: web.Request) -> web.StreamResponse:
        source = request.match_info["name"]
        repo, tag = split_repo_tag(
            query_str(request.query, "repo"), query_str(request.query, "tag")
        )
        await asyncio.to_thread(self._backend.tag, source, repo, tag)
        return web.Response(status=201)

    # DELETE /images/{name}?force=&noprune=
    async def remove(self, request: web.Request) -> web.StreamResponse:
        force = query_bool(request.query, "force")
        noprune = query_bool(request.query, "noprune")
        name = request.match_info["name"]
        items = await asyncio.to_thread(self._backend.remove, name, force, noprune)
        return json_response(deletes_to_wire(items))

    # POST /images/create?fromSrc=-&repo=&tag=&message=&changes=&platform=
    async def create(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        source = query_str(query, "fromSrc")
        if query_str(query, "fromImage"):
            if self._pull is None:
                raise Unsupported("pulling images is not configured in this daemon")
            return await self._pull(request)
        if source != "-":
            if not source:
                raise InvalidArgument("fromImage or fromSrc is required")
            raise Unsupported(f"importing from a URL is not supported: {source}")
        repo = query_str(query, "repo")
        ref: str | None = None
        if repo:
            name, tag = split_repo_tag(repo, query_str(query, "tag"))
            ref = f"{name}:{tag}"
        changes = query_list(query, "changes")
        message = query_str(query, "message")
        platform = query_str(query, "platform") or None
        loop = asyncio.get_running_loop()
        with body_reader(request, loop) as body:
            image = await asyncio.to_thread(
                self._backend.import_rootfs, body, ref, changes, message, platform
            )
        stream = JsonStream(request)
        async with stream:
            await stream.send({"status": image.id})
        return stream.response

    # POST /images/load?quiet=
    async def load(self, request: web.Request) -> web.StreamResponse:
        # `quiet` only silences progress bars in dockerd; skiff sends none, and the
        # lines (renamed tags, "Loaded image: ...") go out either way, as dockerd's do.
        query_bool(request.query, "quiet")
        loop = asyncio.get_running_loop()
        stream = JsonStream(request)
        sent: set[str] = set()

        def progress(line: str) -> None:
            sent.add(line)
            message = {"stream": line + "\n"}
            asyncio.run_coroutine_threadsafe(stream.send(message), loop).result()

        async with stream:
            with body_reader(request, loop) as body:
                lines = await asyncio.to_thread(self._backend.load, body, progress)
            for line in lines:
                if line not in sent:
                    await stream.send({"stream": line + "\n"})
        return stream.response

    # GET /images/get?names=a&names=b and GET /images/{name}/get
    async def save(self, request: web.Request) -> web.StreamResponse:
        names = (
            [request.match_info["name"]]
            if "name" in request.match_info
            else query_list(request.query, "names")
        )
        for name in names:  # unknown names are a 404 before any byte of tar
            await asyncio.to_thread(self._backend.get, name)
        response = web.StreamResponse(status=200)
        response.content_type = "application/x-tar"
        writer = ResponseWriter(request, response, asyncio.get_running_loop())

        def run() -> None:
            self._backend.save(names, writer)  # type: ignore[arg-type]
            writer.finish()

        await asyncio.to_thread(run)
        await response.write_eof()
        return response

    # POST /images/prune?filters=
    async def prune(self, request: web.Request) -> web.StreamResponse:
        raw = query_filters(request.query, PRUNE_FILTERS)
        filters = ImageFilters.from_filters(raw)
        # dangling=false widens prune to every unused image (`docker image prune -a`)
        prune_all = filters.dangling is False
        narrowed = ImageFilters(
            label=filters.label, label_not=filters.label_not, until=filters.until
        )
        items, reclaimed = await asyncio.to_thread(self._backend.prune, prune_all, narrowed)
        if self._events is not None:
            self._events.publish(Event("image", "prune", attributes={"reclaimed": str(reclaimed)}))
        return json_response(
            {"ImagesDeleted": deletes_to_wire(items) or None, "SpaceReclaimed": reclaimed}
        )

    # POST /skiff/images/bootstrap?kind=busybox&ref=busybox:latest
    async def bootstrap(self, request: web.Request) -> web.StreamResponse:
        kind = query_str(request.query, "kind", "busybox")
        if kind != "busybox":
            raise InvalidArgument(f"unknown bootstrap kind: {kind} (known: busybox)")
        ref = query_str(request.query, "ref") or "busybox:latest"
        image = await asyncio.to_thread(self._backend.bootstrap_busybox, ref)
        return json_response(summary_to_wire(image), status=201)

    # /system/df
    async def contribute_disk_usage(self, usage: DiskUsage, kinds: frozenset[str]) -> None:
        if kinds and "image" not in kinds:
            return
        images = await asyncio.to_thread(self._backend.disk_usage)
        usage.images.extend(summary_to_wire(image) for image in images)
        usage.layers_size += layers_size(images)


def layers_size(images: Sequence[Image]) -> int:
    """Bytes of all layers, each counted once (`/system/df`'s LayersSize).

    Images with the same top layer share every layer; otherwise an image's shared part
    is counted once per distinct amount shared, which is exact for the common case of
    images built on one base."""
    seen_chains: set[str] = set()
    unique = 0
    shared: dict[int, int] = {}
    for image in images:
        key = image.chain_id or image.id
        if key in seen_chains:
            continue
        seen_chains.add(key)
        shared_size = max(image.shared_size, 0)
        unique += image.size - shared_size
        if shared_size:
            shared[shared_size] = shared_size
    return unique + sum(shared.values())
