"""Reading and writing cgroup control files, and the one error apply() raises.

Every write goes through `Files.write`, which names the OCI field being set
when the kernel refuses a value (`linux.resources.memory.limit: ...`) and can
record each write in order (`trace`) so unit tests see the exact sequence a
backend produced against a fake root directory.
"""

from __future__ import annotations

import errno
import os
import time

from skiff.errors import SkiffError

# v1 reports "no limit" as the largest page-aligned int64; anything this big is unlimited.
UNLIMITED_FLOOR = 1 << 62


class CgroupError(SkiffError):
    """A cgroup operation failed; `field` names the OCI field (or the operation)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Files:
    """Control-file access for one backend; `trace` (if given) receives (path, value)."""

    __slots__ = ("trace",)

    def __init__(self, trace: list[tuple[str, str]] | None = None) -> None:
        self.trace = trace

    def write(self, directory: str, name: str, value: str, field: str) -> None:
        path = os.path.join(directory, name)
        try:
            self.write_raw(path, value)
        except OSError as e:
            raise CgroupError(field, f"writing {value!r} to {path}: {e.strerror}") from e

    def write_raw(self, path: str, value: str) -> None:
        """Write one value; no O_CREAT, so a missing control file is ENOENT."""
        if self.trace is not None:
            self.trace.append((path, value))
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)


def read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def read_int(directory: str, name: str) -> int | None:
    """An integer control file; None if absent, "max" or v1's unlimited sentinel."""
    try:
        text = read(directory, name)
    except FileNotFoundError:
        return None
    if text == "max":
        return None
    value = int(text)
    return None if value >= UNLIMITED_FLOOR else value


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """A flat keyed file ("key value" per line), e.g. memory.stat or cpu.stat."""
    out: dict[str, int] = {}
    try:
        text = read(directory, name)
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def exists(directory: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory, name))


def procs(directory: str) -> list[int]:
    """Every pid in the cgroup at `directory` and its descendants."""
    pids: list[int] = []
    for dirpath, _dirs, _files in os.walk(directory):
        try:
            text = read(dirpath, "cgroup.procs")
        except FileNotFoundError:
            continue
        pids.extend(int(p) for p in text.split())
    return pids


def remove_tree(directory: str) -> None:
    """rmdir a cgroup and its descendants, children first; gone already is fine.

    A cgroup whose last process just exited can report EBUSY for a moment, so
    retry as runc does (10, 20, 40, 80 ms) before giving up.
    """
    delay = 0.01
    for attempt in range(5):
        if attempt:
            time.sleep(delay)
            delay *= 2
        busy: OSError | None = None
        for dirpath, _dirs, _files in os.walk(directory, topdown=False):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise CgroupError("cgroup destroy", f"rmdir {dirpath}: {e.strerror}") from e
                busy = e
        if not os.path.exists(directory):
            return
    why = busy.strerror if busy else "still present"
    raise CgroupError("cgroup destroy", f"rmdir {directory}: {why}")
