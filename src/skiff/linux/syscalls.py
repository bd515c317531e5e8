"""Privileged Linux system calls, behind one small seam.

`Syscalls` is the seam: code that mounts, pivots or creates device nodes takes
a `Syscalls` and calls its methods, never libc directly. The real class here
does the calls; `skiff.testing.syscalls.RecordingSyscalls` records them so the
order of a container's mounts can be unit-tested without root (youki does the
same with its `Syscall` trait).

Only calls that need privilege or change process-wide state sit behind the
seam. Plain file work inside a rootfs (mkdir, symlink, creating an empty file)
is done directly: a test can do it for real in a temporary directory.

The free functions (`mount`, `umount2`, ...) are the thin ctypes wrappers; each
raises OSError with the C errno and the path, like the `os` module does.
"""

from __future__ import annotations

import ctypes
import os

from skiff.linux.libc import check, libc

# clone(2) / unshare(2) / setns(2) namespace flags.
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags.
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# umount2(2) flags.
MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

# statvfs(3) f_flag bits that have a mount(2) twin, and the one that differs.
_ST_NOSYMFOLLOW = 0x2000
_ST_SAME_AS_MS = (
    MS_RDONLY
    | MS_NOSUID
    | MS_NODEV
    | MS_NOEXEC
    | MS_SYNCHRONOUS
    | MS_MANDLOCK
    | MS_NOATIME
    | MS_NODIRATIME
    | MS_RELATIME
)

# glibc has no pivot_root(2) wrapper; the number depends on the architecture.
_SYS_PIVOT_ROOT = {
    "x86_64": 155,
    "aarch64": 41,
    "riscv64": 41,
    "loongarch64": 41,
    "ppc64le": 203,
    "ppc64": 203,
    "s390x": 217,
    "i686": 217,
    "i386": 217,
    "armv7l": 218,
}

libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.unshare.argtypes = [ctypes.c_int]
libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    ret = libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data) if data else None)
    check(ret, "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    check(libc.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {os.uname().machine}")
    check(libc.syscall(ctypes.c_long(nr), _b(new_root), _b(put_old)), "pivot_root", new_root)


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    check(libc.setns(fd, nstype), "setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    check(libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    check(libc.setdomainname(raw, len(raw)), "setdomainname")


def statvfs_mount_flags(path: str) -> int:
    """The mount(2) flags (MS_*) a mount currently has, from statvfs(3)."""
    st = os.statvfs(path)
    flags = st.f_flag & _ST_SAME_AS_MS
    if st.f_flag & _ST_NOSYMFOLLOW:
        flags |= MS_NOSYMFOLLOW
    return flags


class Syscalls:
    """The real system calls. Subclassed by the recording fake in `skiff.testing`."""

    def mount(
        self,
        source: str | None,
        target: str,
        fstype: str | None = None,
        flags: int = 0,
        data: str | None = None,
    ) -> None:
        mount(source, target, fstype, flags, data)

    def umount2(self, target: str, flags: int = 0) -> None:
        umount2(target, flags)

    def pivot_root(self, new_root: str, put_old: str) -> None:
        pivot_root(new_root, put_old)

    def unshare(self, flags: int) -> None:
        unshare(flags)

    def setns(self, fd: int, nstype: int = 0) -> None:
        setns(fd, nstype)

    def sethostname(self, name: str) -> None:
        sethostname(name)

    def setdomainname(self, name: str) -> None:
        setdomainname(name)

    def mknod(self, path: str, mode: int, device: int) -> None:
        os.mknod(path, mode, device)

    def lchown(self, path: str, uid: int, gid: int) -> None:
        os.lchown(path, uid, gid)

    def open(self, path: str, flags: int) -> int:
        return os.open(path, flags | os.O_CLOEXEC)

    def close(self, fd: int) -> None:
        os.close(fd)

    def fchdir(self, fd: int) -> None:
        os.fchdir(fd)

    def chdir(self, path: str) -> None:
        os.chdir(path)

    def statvfs_flags(self, path: str) -> int:
        return statvfs_mount_flags(path)

    def read_proc_self(self, name: str) -> str:
        """/proc/self/<name> (cgroup, mountinfo): a seam so tests can feed a host layout."""
        with open(f"/proc/self/{name}", encoding="utf-8", errors="surrogateescape") as f:
            return f.read()

    def exists(self, path: str) -> bool:
        """Whether a host path exists (e.g. /proc/kcore): a seam for the same reason."""
        return os.path.exists(path)
