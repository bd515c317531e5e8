"""A `Syscalls` that records instead of calling the kernel.

Each call is appended to `calls` as a tuple whose first item is the call's
name, e.g. `("mount", source, target, fstype, flags, data)`. A target given as
`/proc/self/fd/N` (how rootfs code mounts through a checked file descriptor)
is recorded as the path that descriptor points at, so tests read like the
mount table they expect.

`fail(op, path, errno)` makes later calls with that path raise OSError, to
test the error paths (e.g. ENOENT for a masked path that does not exist);
`times=1` makes only the next one fail.
`proc_self` and `host_paths` stand in for /proc/self files and the host's files.
"""

from __future__ import annotations

import os

from skiff.linux.syscalls import Syscalls

_FAKE_FD_BASE = 10_000


def _readable(path: str | None) -> str | None:
    if path is not None and path.startswith("/proc/self/fd/"):
        try:
            return os.readlink(path)
        except OSError:
            return path
    return path


class RecordingSyscalls(Syscalls):
    def __init__(
        self,
        proc_self: dict[str, str] | None = None,
        host_paths: set[str] | None = None,
        statvfs: dict[str, int] | None = None,
    ) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.proc_self = dict(proc_self or {})
        self.host_paths = set(host_paths or ())
        self.statvfs = dict(statvfs or {})
        self.failures: dict[tuple[str, str], tuple[int, int | None]] = {}
        self.fds: dict[int, str] = {}
        self._next_fd = _FAKE_FD_BASE

    def fail(self, op: str, path: str, err: int, times: int | None = None) -> None:
        self.failures[(op, path)] = (err, times)

    def _maybe_fail(self, op: str, path: str) -> None:
        failure = self.failures.get((op, path))
        if failure is None:
            return
        err, times = failure
        if times is not None:
            if times <= 1:
                del self.failures[(op, path)]
            else:
                self.failures[(op, path)] = (err, times - 1)
        raise OSError(err, f"{op}: {os.strerror(err)}", path)

    def mounts(self) -> list[tuple[object, ...]]:
        """Only the mount calls, without the leading name."""
        return [c[1:] for c in self.calls if c[0] == "mount"]

    def mount(
        self,
        source: str | None,
        target: str,
        fstype: str | None = None,
        flags: int = 0,
        data: str | None = None,
    ) -> None:
        target = _readable(target) or target
        self.calls.append(("mount", _readable(source), target, fstype, flags, data))
        self._maybe_fail("mount", target)

    def umount2(self, target: str, flags: int = 0) -> None:
        self.calls.append(("umount2", target, flags))
        self._maybe_fail("umount2", target)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self.calls.append(("pivot_root", new_root, put_old))

    def unshare(self, flags: int) -> None:
        self.calls.append(("unshare", flags))

    def setns(self, fd: int, nstype: int = 0) -> None:
        self.calls.append(("setns", fd, nstype))

    def sethostname(self, name: str) -> None:
        self.calls.append(("sethostname", name))

    def setdomainname(self, name: str) -> None:
        self.calls.append(("setdomainname", name))

    def mknod(self, path: str, mode: int, device: int) -> None:
        self.calls.append(("mknod", path, mode, device))
        self._maybe_fail("mknod", path)

    def lchown(self, path: str, uid: int, gid: int) -> None:
        self.calls.append(("lchown", path, uid, gid))

    def open(self, path: str, flags: int) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.fds[fd] = path
        self.calls.append(("open", path))
        return fd

    def close(self, fd: int) -> None:
        self.calls.append(("close", self.fds.pop(fd)))

    def fchdir(self, fd: int) -> None:
        self.calls.append(("fchdir", self.fds[fd]))

    def chdir(self, path: str) -> None:
        self.calls.append(("chdir", path))

    def statvfs_flags(self, path: str) -> int:
        return self.statvfs.get(path, 0)

    def read_proc_self(self, name: str) -> str:
        return self.proc_self.get(name, "")

    def exists(self, path: str) -> bool:
        return path in self.host_paths
