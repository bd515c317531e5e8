"""A container's state on disk and the status derived from it.

Every container has a folder `<root>/<id>/` holding:

    state.json   what `create` recorded: init pid and its start time, bundle,
                 cgroup paths, annotations, creation time (written atomically)
    config.json  the bundle's config as it was at create (hooks run from it)
    exec.fifo    exists from create until start: init waits on it

The status is never stored; it is read off the world each time, as runc does:

    creating ──create done──▶ created ──start──▶ running ──exit──▶ stopped
                                 │                  ▲  │
                                 └──────kill────────┼──┴──▶ stopped
                                          pause/resume: running ⇄ paused

A pid alone is not an identity (pids are reused), so the init's start time
from /proc/<pid>/stat is stored beside it and compared.
"""

from __future__ import annotations

import json
import os

from skiff.errors import Conflict, InvalidArgument, NotFound

DEFAULT_ROOT = "/run/skiff-runtime"
OCI_VERSION = "1.0.2"

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"


def can_start(status: str) -> bool:
    return status == CREATED


def can_kill(status: str) -> bool:
    return status in (CREATED, RUNNING, PAUSED)


def can_delete(status: str) -> bool:
    # runc deletes a created container (it kills the waiting init first).
    return status in (STOPPED, CREATED)


def can_exec(status: str) -> bool:
    return status in (CREATED, RUNNING)


def validate_id(container_id: str) -> None:
    ok = container_id and all(c.isalnum() or c in "_+-." for c in container_id)
    if not ok or container_id in (".", ".."):
        raise InvalidArgument(f"invalid container id {container_id!r}")


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat, or None when the process is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses; fields follow the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def write_atomic(path: str, data: bytes, mode: int = 0o600, sync: bool = False) -> None:
    """Write a file by renaming a complete temporary one over it.

    The runtime's state lives on a tmpfs (/run) that a reboot empties anyway,
    so readers only need never to see a torn file: the rename gives that, and
    fsync (slow on a disk-backed --root) is asked for only where it matters.
    """
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def remove_tree(path: str) -> None:
    """rm -rf for the state folder (a few flat files), without importing shutil."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(path)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


class ContainerState:
    """What `create` recorded about one container."""

    __slots__ = (
        "annotations",
        "bundle",
        "cgroup_paths",
        "created",
        "dir",
        "id",
        "namespaces",
        "owner",
        "pid",
        "pid_start",
        "rootfs",
        "seccomp_key",
        "stage",
    )

    def __init__(self, root: str, container_id: str) -> None:
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.pid = 0
        self.pid_start = 0
        self.bundle = ""
        self.rootfs = ""
        self.annotations: dict[str, str] = {}
        self.cgroup_paths: dict[str, str] = {}
        self.created = ""
        self.owner = ""
        self.stage = CREATING
        # What `exec` needs of config.json, so that it need not parse it: the kinds
        # of namespace the config has, and the key of its compiled seccomp program
        # ("" for none). None: not recorded (an older create).
        self.namespaces: list[str] | None = None
        self.seccomp_key: str | None = None

    @property
    def state_file(self) -> str:
        return os.path.join(self.dir, "state.json")

    @property
    def config_file(self) -> str:
        return os.path.join(self.dir, "config.json")

    @property
    def fifo(self) -> str:
        return os.path.join(self.dir, "exec.fifo")

    def save(self) -> None:
        doc = {
            "id": self.id,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "annotations": self.annotations,
            "cgroup_paths": self.cgroup_paths,
            "created": self.created,
            "owner": self.owner,
            "stage": self.stage,
            "namespaces": self.namespaces,
            "seccomp_key": self.seccomp_key,
        }
        write_atomic(self.state_file, json.dumps(doc).encode())

    @classmethod
    def load(cls, root: str, container_id: str) -> ContainerState:
        validate_id(container_id)
        state = cls(root, container_id)
        try:
            with open(state.state_file, "rb") as f:
                doc = json.loads(f.read())
        except FileNotFoundError:
            raise NotFound(f"container does not exist: {container_id}") from None
        except (OSError, ValueError) as e:
            raise NotFound(f"container {container_id} has unreadable state: {e}") from None
        state.pid = int(doc["pid"])
        state.pid_start = int(doc["pid_start"])
        state.bundle = doc["bundle"]
        state.rootfs = doc.get("rootfs", "")
        state.annotations = doc.get("annotations", {})
        state.cgroup_paths = doc.get("cgroup_paths", {})
        state.created = doc.get("created", "")
        state.owner = doc.get("owner", "")
        state.stage = doc.get("stage", CREATED)
        namespaces, key = doc.get("namespaces"), doc.get("seccomp_key")
        if isinstance(namespaces, list) and isinstance(key, str):
            state.namespaces = [str(kind) for kind in namespaces]
            state.seccomp_key = key
        return state

    def alive(self) -> bool:
        return self.pid > 0 and process_start_time(self.pid) == self.pid_start

    def status(self) -> str:
        if self.stage == CREATING:
            return CREATING if self.alive() else STOPPED
        if not self.alive():
            return STOPPED
        if os.path.exists(self.fifo):
            return CREATED
        if self.cgroup_paths and self._frozen():
            return PAUSED
        return RUNNING

    def _frozen(self) -> bool:
        from skiff.cgroups import load_manager

        try:
            return load_manager(self.cgroup_paths).state() == "frozen"
        except OSError:
            return False

    def oci_state(self) -> dict[str, object]:
        """The runtime spec's state object, as `state` prints and hooks receive."""
        status = self.status()
        doc: dict[str, object] = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status,
            "pid": self.pid if status != STOPPED else 0,
            "bundle": self.bundle,
        }
        if self.annotations:
            doc["annotations"] = self.annotations
        return doc

    def require(self, allowed: bool, action: str) -> None:
        if not allowed:
            status = self.status()
            raise Conflict(f"cannot {action} container {self.id}: it is {status}")
