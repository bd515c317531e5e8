"""The ctypes wrappers against the real kernel, in throwaway children."""

from __future__ import annotations

import errno
import json
import os
import socket
import traceback
from typing import TYPE_CHECKING

import pytest

from skiff.linux import syscalls

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.root


def in_child(fn: Callable[[], object]) -> object:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(r)
            out: dict[str, object] = {"ok": fn()}
        except BaseException:
            out = {"error": traceback.format_exc()}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert "error" not in result, result["error"]
    return result["ok"]


def test_uts_namespace_hostname_and_setns_back() -> None:
    host = socket.gethostname()

    def child() -> object:
        original = os.open("/proc/self/ns/uts", os.O_RDONLY)
        syscalls.unshare(syscalls.CLONE_NEWUTS)
        syscalls.sethostname("skiff-box")
        syscalls.setdomainname("skiff.test")
        inside = [os.uname().nodename, open("/proc/sys/kernel/domainname").read().strip()]  # noqa: SIM115
        syscalls.setns(original, syscalls.CLONE_NEWUTS)
        return [*inside, os.uname().nodename]

    assert in_child(child) == ["skiff-box", "skiff.test", host]
    assert socket.gethostname() == host


def test_mount_and_umount_in_a_mount_namespace(tmp_path: os.PathLike[str]) -> None:
    target = os.fspath(tmp_path)

    def child() -> object:
        syscalls.unshare(syscalls.CLONE_NEWNS)
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE, None)
        syscalls.mount("tmpfs", target, "tmpfs", syscalls.MS_NOSUID, "size=1m,mode=700")
        mounted = os.statvfs(target).f_flag & os.ST_NOSUID != 0
        flags = syscalls.statvfs_mount_flags(target)
        syscalls.umount2(target, syscalls.MNT_DETACH)
        return [mounted, flags & syscalls.MS_NOSUID != 0]

    assert in_child(child) == [True, True]
    assert target not in open("/proc/self/mountinfo").read()  # noqa: SIM115


def test_errors_carry_errno_and_path() -> None:
    with pytest.raises(OSError, match="mount") as info:
        syscalls.mount(None, "/nonexistent/skiff", None, syscalls.MS_BIND, None)
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == "/nonexistent/skiff"
    with pytest.raises(OSError, match="pivot_root") as info:
        syscalls.pivot_root("/nonexistent/skiff", "/nonexistent/skiff")
    assert info.value.errno == errno.ENOENT
