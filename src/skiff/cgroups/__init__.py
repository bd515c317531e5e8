"""Control groups: one manager protocol (`manager.CgroupManager`), two backends.

    open_manager(cgroups_path, container_id) → V1Manager | V2Manager
        chosen by the statfs magic of /sys/fs/cgroup (cgroup2 → v2; the tmpfs
        of v1 hierarchies, including hybrid hosts → v1). cgroupsPath rules are
        runc's: see `paths`.
    load_manager(manager.paths()) → the same manager again, for a later
        runtime operation (the runtime keeps paths() in its state file;
        v1: {"memory": dir, ...}, v2: {"": dir}, as runc's state.json).

A manager's lifecycle: create() → apply(resources) → add(pid) → ...
pids()/freeze()/thaw()/state()/stats() ... → destroy().

Notes for callers:
- apply() writes only what `resources` sets; call it again to update.
- Device rules: v1 writes them in order (exact for a new cgroup; an update
  rewrites them, so there is a short window where a running container is
  denied devices: runc avoids that by diffing). v2 ignores them (needs eBPF).
  The runtime adds its default allowed devices (runc's AllowedDevices) and an
  allow rule per linux.devices entry before calling apply(), as runc's specconv.
- `fake.FakeManager` records calls, for the runtime's unit tests.
"""

from __future__ import annotations

from skiff.cgroups import paths
from skiff.cgroups.files import CgroupError
from skiff.cgroups.paths import DEFAULT_ROOT
from skiff.cgroups.v1 import V1Manager
from skiff.cgroups.v2 import V2Manager

TYPE_CHECKING = False  # typing costs ~15 ms at import; mypy treats this name as True

if TYPE_CHECKING:
    from skiff.cgroups.manager import CgroupManager

__all__ = ["DEFAULT_ROOT", "CgroupError", "load_manager", "open_manager"]


def open_manager(
    cgroups_path: str,
    container_id: str,
    *,
    systemd: bool = False,
    root: str = DEFAULT_ROOT,
    own: dict[str, str] | None = None,
) -> CgroupManager:
    """The manager for linux.cgroupsPath (`systemd`: the runtime's
    --systemd-cgroup flag; `root`: where the hierarchies are mounted; `own`:
    this process's cgroups, read from /proc/self when a relative path needs them)."""
    inner = paths.inner_path(cgroups_path, container_id, systemd)
    if paths.detect_version(root) == 2:
        return V2Manager(paths.v2_path(root, inner, own), root=root)
    return V1Manager(paths.v1_paths(root, inner, own))


def load_manager(saved: dict[str, str]) -> CgroupManager:
    """Rebuild a manager from what its paths() returned."""
    if not saved:
        raise CgroupError("cgroup paths", "no saved cgroup paths")
    if set(saved) == {""}:
        return V2Manager(saved[""])
    return V1Manager(saved)


def remove_empty_parent(parent: str, root: str = DEFAULT_ROOT) -> None:
    """Remove the absolute cgroup `parent` (e.g. "/skiff") from every hierarchy where
    it is empty. The runtime removes a container's own cgroup, not the parents it
    made for it; whoever names the parent clears it once its containers are gone.
    A parent that still has children (another daemon's, or a live-restored
    container's) stays: rmdir refuses it, and that is not an error here."""
    import os

    if paths.detect_version(root) == 2:
        dirs = [os.path.join(root, parent.lstrip("/"))]
    else:
        dirs = [os.path.join(d, parent.lstrip("/")) for d in paths.v1_hierarchies(root).values()]
    for d in dict.fromkeys(dirs):
        try:
            os.rmdir(d)
        except OSError:
            pass
