"""A fake of the container core's lookup API (skiff.services.core.ContainerCore), so the
extras (exec, top, stats, cp, diff, commit, update, prune) are unit-tested without
root, shims or runtimes.

    core = FakeCore(images)
    c = core.add("web", dir=str(tmp_path / "c"), running=True)
    core.shims[c.id].exit_code = 3          # what the next exec exits with
"""

from __future__ import annotations

import asyncio
import builtins
import os
from dataclasses import dataclass, field
from typing import Any

from skiff.errors import NotFound
from skiff.shim import protocol as p


@dataclass
class FakeState:
    status: str = "created"
    pid: int = 0
    exit_code: int = 0
    finished_at: str = "0001-01-01T00:00:00Z"

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    @property
    def paused(self) -> bool:
        return self.status == "paused"


@dataclass
class FakeContainer:
    id: str
    name: str
    dir: str
    image_id: str = ""
    image_ref: str = "busybox"
    created: str = "2024-01-01T00:00:00.000000000Z"
    config: dict[str, Any] = field(default_factory=dict)
    host_config: dict[str, Any] = field(default_factory=dict)
    snapshot_key: str = ""
    mounts: list[dict[str, Any]] = field(default_factory=list)
    state: FakeState = field(default_factory=FakeState)

    @property
    def rootfs(self) -> str:
        return self.dir + "/rootfs"

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})


class FakeStream:
    """An exec stream that yields `output` frames then exits with `exit_code`."""

    def __init__(self, output: list[tuple[int, bytes]], exit_code: int, pid: int) -> None:
        self._frames = list(output)
        self.exit_code: int | None = None
        self._code = exit_code
        self.pid = pid
        self.stdin = bytearray()
        self.stdin_closed = False

    async def read(self) -> tuple[int, bytes] | None:
        await asyncio.sleep(0)
        if self._frames:
            return self._frames.pop(0)
        self.exit_code = self._code
        return None

    async def write(self, data: bytes) -> None:
        self.stdin += data

    async def close_stdin(self) -> None:
        self.stdin_closed = True

    async def close(self) -> None:
        return None


class FakeExecState:
    def __init__(self, exec_id: str, pid: int, running: bool, exit_code: int | None) -> None:
        self.exec_id, self.pid, self.running, self.exit_code = exec_id, pid, running, exit_code


class FakeShim:
    def __init__(self) -> None:
        self.output: list[tuple[int, bytes]] = [(p.STDOUT, b"out\n"), (p.STDERR, b"err\n")]
        self.exit_code = 0
        self.fail: Exception | None = None
        self.processes: list[dict[str, object]] = []
        self.resized: list[tuple[int, int, str]] = []
        self.paused = 0

    async def exec(
        self, exec_id: str, process: dict[str, object], stdin: bool = False, attach: bool = True
    ) -> Any:
        if self.fail is not None:
            raise self.fail
        self.processes.append(process)
        if not attach:
            return 4242
        return FakeStream(self.output, self.exit_code, 4242)

    async def exec_state(self, exec_id: str) -> FakeExecState:
        return FakeExecState(exec_id, 4242, False, self.exit_code)

    async def wait_exec(self, exec_id: str) -> FakeExecState:
        return FakeExecState(exec_id, 4242, False, self.exit_code)

    async def resize(self, height: int, width: int, exec_id: str = "") -> None:
        self.resized.append((height, width, exec_id))

    async def pause(self) -> None:
        self.paused += 1

    async def resume(self) -> None:
        self.paused -= 1


class FakeCore:
    def __init__(self, images: Any = None) -> None:
        self.images = images
        self.containers: dict[str, FakeContainer] = {}
        self.shims: dict[str, FakeShim] = {}
        self.events: list[tuple[str, str]] = []
        self.removed: list[str] = []
        self._locks: dict[str, asyncio.Lock] = {}

    def add(self, name: str, dir: str, running: bool = False, **kw: Any) -> FakeContainer:
        cid = (name.encode().hex() + "0" * 64)[:64]
        c = FakeContainer(cid, name, dir, **kw)
        c.state.status = "running" if running else "exited"
        os.makedirs(c.rootfs, exist_ok=True)
        self.containers[cid] = c
        self.shims[cid] = FakeShim()
        return c

    def get(self, ref: str) -> FakeContainer:
        for c in self.containers.values():
            if ref in (c.id, c.name, "/" + c.name) or (ref and c.id.startswith(ref)):
                return c
        raise NotFound(f"No such container: {ref}")

    def list(self, all: bool = False, filters: Any = None) -> builtins.list[FakeContainer]:
        return [c for c in self.containers.values() if all or c.state.running]

    def shim(self, c: Any) -> FakeShim:
        return self.shims[c.id]

    def lock(self, c: Any) -> asyncio.Lock:
        return self._locks.setdefault(c.id, asyncio.Lock())

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        del self.containers[c.id]
        self.removed.append(c.id)

    def save(self, c: Any) -> None:
        return None

    def event(self, c: Any, action: str, **extra: str) -> None:
        self.events.append((c.id, action))
