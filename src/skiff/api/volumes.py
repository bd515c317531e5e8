"""Volume routes of the Docker Engine API over skiff.services.volumes.VolumeService.

    GET    /volumes              list      {"Volumes": [Volume], "Warnings": null}
    POST   /volumes/create       create    201, Volume
    GET    /volumes/{name}       inspect   Volume
    DELETE /volumes/{name}       remove    204
    POST   /volumes/prune        prune     {"VolumesDeleted", "SpaceReclaimed"}

Also the `Volumes` part of `/system/df` (with UsageData).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from skiff.api.app import json_response, request_api_version
from skiff.api.query import query_bool, query_filters
from skiff.api.registry import DiskUsage, Route
from skiff.errors import InvalidArgument
from skiff.services.events import Event, EventBus
from skiff.services.volumes import (
    ANONYMOUS_LABEL,
    FILTER_KEYS,
    Volume,
    VolumeFilters,
    VolumeService,
)


def volume_to_wire(volume: Volume, usage: bool = False) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "CreatedAt": volume.created_at,
        "Driver": volume.driver,
        "Labels": dict(volume.labels) or None,
        "Mountpoint": volume.mountpoint,
        "Name": volume.name,
        "Options": dict(volume.options) or None,
        "Scope": volume.scope,
    }
    if usage:
        wire["UsageData"] = {"Size": volume.size, "RefCount": volume.ref_count}
    return wire


class VolumesApi:
    def __init__(self, volumes: VolumeService, events: EventBus | None = None) -> None:
        self._volumes = volumes
        self._events = events

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/volumes", self.list),
            Route("POST", "/volumes/create", self.create),
            Route("POST", "/volumes/prune", self.prune),
            Route("GET", "/volumes/{name}", self.inspect),
            Route("DELETE", "/volumes/{name}", self.remove),
        ]

    # GET /volumes?filters=
    async def list(self, request: web.Request) -> web.StreamResponse:
        filters = VolumeFilters.from_filters(query_filters(request.query, FILTER_KEYS))
        volumes = await asyncio.to_thread(self._volumes.list, filters)
        return json_response({"Volumes": [volume_to_wire(v) for v in volumes], "Warnings": None})

    # POST /volumes/create {Name, Driver, DriverOpts, Labels}
    async def create(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise InvalidArgument(f"invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidArgument("invalid volume create request")
        labels = body.get("Labels") or {}
        options = body.get("DriverOpts") or {}
        if not isinstance(labels, dict) or not isinstance(options, dict):
            raise InvalidArgument("Labels and DriverOpts must be objects")
        volume = await asyncio.to_thread(
            self._volumes.create,
            str(body.get("Name") or ""),
            str(body.get("Driver") or ""),
            {str(k): str(v) for k, v in labels.items()},
            {str(k): str(v) for k, v in options.items()},
        )
        return json_response(volume_to_wire(volume), status=201)

    # GET /volumes/{name}
    async def inspect(self, request: web.Request) -> web.StreamResponse:
        volume = await asyncio.to_thread(self._volumes.get, request.match_info["name"])
        return json_response(volume_to_wire(volume))

    # DELETE /volumes/{name}?force=
    async def remove(self, request: web.Request) -> web.StreamResponse:
        force = query_bool(request.query, "force")
        await asyncio.to_thread(self._volumes.remove, request.match_info["name"], force)
        return web.Response(status=204)

    # POST /volumes/prune?filters=
    async def prune(self, request: web.Request) -> web.StreamResponse:
        raw = query_filters(request.query, FILTER_KEYS)
        filters = VolumeFilters.from_filters(raw)
        if request_api_version(request) < (1, 42):
            filters = VolumeFilters(label=filters.label, label_not=filters.label_not, all=True)
        deleted, reclaimed = await asyncio.to_thread(self._volumes.prune, filters)
        if self._events is not None:
            self._events.publish(Event("volume", "prune", attributes={"reclaimed": str(reclaimed)}))
        return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    # /system/df
    async def contribute_disk_usage(self, usage: DiskUsage, kinds: frozenset[str]) -> None:
        if kinds and "volume" not in kinds:
            return
        volumes = await asyncio.to_thread(self._volumes.disk_usage)
        usage.volumes.extend(volume_to_wire(v, usage=True) for v in volumes)


__all__ = ["ANONYMOUS_LABEL", "VolumesApi", "volume_to_wire"]
