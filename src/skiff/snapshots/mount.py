"""Mount and unmount the `Mount`s a snapshotter returns (containerd's mount.All)."""

from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING

from skiff.linux.libc import check, libc

if TYPE_CHECKING:
    from skiff.snapshots.types import Mount

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MNT_DETACH = 0x2

_FLAGS = {
    "ro": MS_RDONLY,
    "rw": 0,
    "bind": MS_BIND,
    "rbind": MS_BIND | MS_REC,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
}


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    check(
        libc.mount(
            os.fsencode(source),
            os.fsencode(target),
            fstype.encode(),
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        "mount",
        target,
    )


def mount_all(mounts: list[Mount], target: str | os.PathLike[str]) -> None:
    """Mount each in order onto `target`; a bind that is read-only is remounted
    read-only, since the kernel ignores MS_RDONLY on the first bind call."""
    dest = os.fspath(target)
    for m in mounts:
        flags = 0
        data = []
        for opt in m.options:
            if opt in _FLAGS:
                flags |= _FLAGS[opt]
            else:
                data.append(opt)
        if m.type == "bind":
            _mount(m.source, dest, "", flags & ~MS_RDONLY, "")
            if flags & MS_RDONLY:
                _mount("", dest, "", MS_REMOUNT | MS_BIND | MS_RDONLY, "")
        else:
            _mount(m.source, dest, m.type, flags, ",".join(data))


def unmount(target: str | os.PathLike[str], *, detach: bool = False) -> None:
    check(libc.umount2(os.fsencode(target), MNT_DETACH if detach else 0), "umount2", str(target))
