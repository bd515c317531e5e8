"""What the container extras (exec, top, stats, cp, export, diff, commit, update, prune)
need from the container core: a small structural protocol, so they are written and
unit-tested against `skiff.testing.container_core.FakeCore` and run against the real
`skiff.services.containers.ContainerService`.

    core.get(ref) -> ContainerLike          NotFound("No such container: ref")
    core.list(all=True) -> [ContainerLike]
    core.shim(c) -> AsyncShim-like          exec, exec_state, wait_exec, resize, pause...
    core.lock(c) -> asyncio.Lock            orders lifecycle calls on one container
    core.remove(ref, force, volumes)        `container prune` removes through the core
    core.save(c) / core.event(c, action)    persist a changed record / publish an event
    core.images                              the ImageService (snapshotter, commit_layer)
"""

from __future__ import annotations

import asyncio
import builtins
from typing import Any, Protocol

RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"


class StateLike(Protocol):
    status: str
    pid: int
    exit_code: int
    finished_at: str

    @property
    def running(self) -> bool: ...

    @property
    def paused(self) -> bool: ...


class ContainerLike(Protocol):
    id: str
    name: str
    image_id: str
    image_ref: str
    created: str  # RFC 3339
    config: dict[str, Any]  # Docker's Config, as inspect shows it
    host_config: dict[str, Any]  # Docker's HostConfig
    dir: str  # the bundle: config.json, rootfs (mounted while it runs)
    snapshot_key: str
    mounts: list[dict[str, Any]]

    @property
    def state(self) -> Any: ...  # StateLike

    @property
    def rootfs(self) -> str: ...

    @property
    def labels(self) -> dict[str, str]: ...


class ShimLike(Protocol):
    async def exec(
        self, exec_id: str, process: dict[str, object], stdin: bool = False, attach: bool = True
    ) -> Any: ...

    async def exec_state(self, exec_id: str) -> Any: ...

    async def wait_exec(self, exec_id: str) -> Any: ...

    async def resize(self, height: int, width: int, exec_id: str = "") -> None: ...

    async def pause(self) -> Any: ...

    async def resume(self) -> Any: ...


class ContainerCore(Protocol):
    images: Any  # skiff.images.service.ImageService

    def get(self, ref: str) -> Any: ...  # ContainerLike

    def list(self, all: bool = False, filters: Any = None) -> builtins.list[Any]: ...

    def shim(self, c: Any) -> Any: ...  # ShimLike

    def lock(self, c: Any) -> asyncio.Lock: ...

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None: ...

    def save(self, c: Any) -> None: ...

    def event(self, c: Any, action: str, **extra: str) -> None: ...


def is_running(c: Any) -> bool:
    return str(c.state.status) in (RUNNING, PAUSED, RESTARTING)
