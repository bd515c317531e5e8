"""Host device nodes as a container spec needs them (`--device`, `--privileged`).

`device_from_path` is one node (None when the path is no device); `host_devices()`
is every node under /dev that `--privileged` gives a container, skipping what runc
skips (pts, shm, fd, mqueue, console, fifos, symlinks); `devices_for_mapping` is one
`--device HOST[:CONTAINER]`, a directory standing for every node below it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from skiff.errors import InvalidArgument

_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


@dataclass(frozen=True)
class HostDevice:
    path: str  # where it appears in the container
    type: str  # "c", "b" or "p"
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int

    def to_spec(self) -> dict[str, object]:
        return {
            "path": self.path,
            "type": self.type,
            "major": self.major,
            "minor": self.minor,
            "fileMode": self.file_mode,
            "uid": self.uid,
            "gid": self.gid,
        }


class NotADevice(Exception):
    pass


def device_from_path(path: str) -> HostDevice:
    """The node at `path` (not following a final symlink). OSError if it is missing,
    NotADevice if it is something else."""
    st = os.lstat(path)
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    elif stat.S_ISFIFO(st.st_mode):
        kind = "p"
    else:
        raise NotADevice(path)
    return HostDevice(
        path=path,
        type=kind,
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )


def host_devices(root: str = "/dev") -> list[HostDevice]:
    out: list[HostDevice] = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return out
    for name in names:
        path = os.path.join(root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            if name not in _SKIP_DIRS:
                out += host_devices(path)
            continue
        if name == "console":
            continue
        try:
            device = device_from_path(path)
        except (OSError, NotADevice):
            continue
        if device.type != "p":
            out.append(device)
    return out


def devices_for_mapping(path_on_host: str, path_in_container: str) -> list[HostDevice]:
    """The nodes one `--device` names, at their container paths (dockerd's DevicesFromPath)."""
    resolved = os.path.realpath(path_on_host) if os.path.islink(path_on_host) else path_on_host
    try:
        device = device_from_path(resolved)
        return [_at(device, path_in_container)]
    except NotADevice:
        reason = "not a device node"
    except OSError as e:
        reason = e.strerror or str(e)
    found: list[HostDevice] = []
    if reason == "not a device node" and os.path.isdir(resolved):
        for dirpath, dirnames, filenames in os.walk(resolved):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                try:
                    child = device_from_path(full)
                except (OSError, NotADevice):
                    continue
                found.append(_at(child, full.replace(resolved, path_in_container, 1)))
    if found:
        return found
    raise InvalidArgument(
        f'error gathering device information while adding custom device "{path_on_host}": {reason}'
    )


def _at(device: HostDevice, path: str) -> HostDevice:
    return HostDevice(
        path, device.type, device.major, device.minor, device.file_mode, device.uid, device.gid
    )
