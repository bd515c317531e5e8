"""A CgroupManager that records calls and keeps state in memory, for tests of
code that drives cgroups (the runtime) without root or a kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    from skiff.oci.runtime_spec import Resources


class FakeManager:
    version = 2

    def __init__(self, path: str = "/sys/fs/cgroup/fake") -> None:
        self.path = path
        self.calls: list[tuple[str, object]] = []
        self.members: list[int] = []
        self.applied: list[Resources] = []
        self.frozen = False
        self.exists = False

    def create(self) -> None:
        self.calls.append(("create", None))
        self.exists = True

    def add(self, pid: int) -> None:
        self.calls.append(("add", pid))
        self.members.append(pid)

    def apply(self, resources: Resources) -> None:
        self.calls.append(("apply", resources))
        self.applied.append(resources)

    def pids(self) -> list[int]:
        return list(self.members)

    def freeze(self) -> None:
        self.calls.append(("freeze", None))
        self.frozen = True

    def thaw(self) -> None:
        self.calls.append(("thaw", None))
        self.frozen = False

    def state(self) -> str:
        return "frozen" if self.frozen else "thawed"

    def destroy(self) -> None:
        self.calls.append(("destroy", None))
        self.exists = False

    def paths(self) -> dict[str, str]:
        return {"": self.path}

    def stats(self) -> dict[str, Any]:
        return {"pids": {"current": len(self.members), "limit": None}}
