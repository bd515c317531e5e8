"""The one protocol both backends (and the fake) implement.

Import it only for annotations (`if TYPE_CHECKING:`); nothing here runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from skiff.oci.runtime_spec import Resources


class CgroupManager(Protocol):
    version: int  # 1 or 2

    def create(self) -> None:
        """mkdir -p the container's cgroup in every hierarchy (idempotent)."""

    def add(self, pid: int) -> None:
        """Move a process into the cgroup (every hierarchy)."""

    def join(self) -> None:
        """Move the calling process, which must have a single thread, into the
        cgroup; on v1 without waiting for an RCU grace period (v1.py says how)."""

    def apply(self, resources: Resources) -> None:
        """Write every limit set in `resources`; CgroupError names the OCI field."""

    def pids(self) -> list[int]:
        """Every process in the cgroup and its descendants."""

    def freeze(self) -> None:
        """Freeze every process; returns once the kernel reports frozen."""

    def thaw(self) -> None: ...

    def state(self) -> str:
        """ "frozen" or "thawed" (frozen only via an ancestor counts as thawed on v1)."""

    def destroy(self) -> None:
        """Remove the cgroup and its descendants, children first; gone is fine."""

    def paths(self) -> dict[str, str]:
        """Where it lives, for the state file; `load_manager` takes this back."""

    def stats(self) -> dict[str, Any]:
        """{"memory": {usage, max_usage, limit, stat}, "cpu": {usage_ns, user_ns,
        system_ns, percpu_ns, periods, throttled_periods, throttled_ns},
        "pids": {current, limit}}; a section is absent if its controller is;
        None for an unlimited (or unknown) value."""
