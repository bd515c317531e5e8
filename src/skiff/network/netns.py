"""Network namespace files: a namespace kept alive by a bind mount, as libnetwork does.

    create(path)   a new, empty network namespace bind-mounted on `path` (a new file)
    remove(path)   unmount and delete it (no error if it is gone)

The namespace is made by a short-lived thread that unshares its own network namespace
(joining one is per-thread) and bind-mounts `/proc/self/task/TID/ns/net` onto the file;
the thread then ends, and the mount keeps the namespace. skiffd never forks for it.
The runtime then joins it through the spec's `linux.namespaces[network].path`.
"""

from __future__ import annotations

import contextlib
import os
import threading

from skiff.linux.syscalls import CLONE_NEWNET, MNT_DETACH, MS_BIND, mount, umount2, unshare


def create(path: str) -> str:
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        remove(path)  # a leftover of a crash: start afresh
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0o444)
    os.close(fd)
    errors: list[BaseException] = []

    def body() -> None:
        try:
            unshare(CLONE_NEWNET)
            mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, MS_BIND, None)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=body, name="skiff-netns")
    t.start()
    t.join()
    if errors:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise errors[0]
    return path


def is_netns(path: str) -> bool:
    return os.path.ismount(path)


def remove(path: str) -> None:
    if not os.path.lexists(path):
        raise FileNotFoundError(path)
    for _ in range(4):  # stacked mounts after a crash between mount and bookkeeping
        try:
            umount2(path, MNT_DETACH)
        except OSError:
            break
    os.unlink(path)
