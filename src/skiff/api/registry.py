"""Where API resources plug in: route tables, `/info` providers and `/system/df` providers.

A resource module (system.py now; images.py, containers.py later) builds a list of `Route`
from handlers closed over its service, and the composition root (skiff.daemon.compose)
passes it to `ApiRegistry.add_routes`. Services that report in `/info` implement
skiff.services.system.InfoProvider; API modules that report in `/system/df` implement
`DiskUsageProvider` (they own the domain -> wire conversion).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from skiff.services.system import InfoProvider

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # without the /v1.NN prefix, e.g. "/containers/{id}/json"
    handler: Handler


@dataclass
class DiskUsage:
    """`/system/df` in the making; lists hold wire-ready entries (ImageSummary, ...)."""

    layers_size: int = 0
    images: list[dict[str, Any]] = field(default_factory=list)
    containers: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    build_cache: list[dict[str, Any]] = field(default_factory=list)


class DiskUsageProvider(Protocol):
    """Adds entries to `/system/df`. `kinds` holds what the client asked for
    ("container", "image", "volume", "build-cache"); empty means all."""

    async def contribute_disk_usage(self, usage: DiskUsage, kinds: frozenset[str]) -> None: ...


class ApiRegistry:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.info_providers: list[InfoProvider] = []
        self.disk_usage_providers: list[DiskUsageProvider] = []

    def add_routes(self, routes: Iterable[Route]) -> None:
        for route in routes:
            for existing in self.routes:
                if (existing.method, existing.path) == (route.method, route.path):
                    raise ValueError(f"route registered twice: {route.method} {route.path}")
            self.routes.append(route)

    def add_info_provider(self, provider: InfoProvider) -> None:
        self.info_providers.append(provider)

    def add_disk_usage_provider(self, provider: DiskUsageProvider) -> None:
        self.disk_usage_providers.append(provider)
