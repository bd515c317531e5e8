"""How many processes the kernel's OOM killer ended in a process's memory cgroup.

The shim asks once the init is created (`counter_file(pid)`, then a baseline
`oom_kills`), and again when the init has exited, before `delete` removes the
cgroup: a larger count means the container was OOM-killed (Docker's
State.OOMKilled and its `oom` event). Any runtime's cgroup works, runc's too:
the file is found from /proc/<pid>/cgroup, not from the runtime's state.

    v1: <memory hierarchy>/<path>/memory.oom_control, line "oom_kill N" (kernel 4.13+)
    v2: <cgroup2 mount>/<path>/memory.events,        line "oom_kill N"

Only `os` is imported: the shim parent loads this before it forks its shims.
"""

from __future__ import annotations

import os

V1_FILE = "memory.oom_control"
V2_FILE = "memory.events"

# Mount points of the hierarchies, found once per process: generating
# /proc/self/mountinfo costs about 0.5 ms, far more than the rest.
_mount_points: dict[tuple[str, str], str] = {}


def counter_file(pid: int, proc: str = "/proc") -> str:
    """The file holding the oom_kill count of `pid`'s memory cgroup ("" if none is found)."""
    try:
        with open(f"{proc}/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    v2_path = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            mount = mount_point("cgroup", "memory", proc)
            return os.path.join(mount, path.lstrip("/"), V1_FILE) if mount else ""
        if controllers == "":
            v2_path = path
    if v2_path is None:
        return ""
    # On a hybrid host the v2 hierarchy has no memory controller; memory.events is
    # then missing and the count reads as 0.
    mount = mount_point("cgroup2", "", proc)
    return os.path.join(mount, v2_path.lstrip("/"), V2_FILE) if mount else ""


def oom_kills(path: str) -> int:
    """The "oom_kill" count in `path` (0 when the file or the line is missing)."""
    if not path:
        return 0
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


def mount_point(fstype: str, option: str, proc: str = "/proc") -> str:
    """Where a cgroup hierarchy of `fstype` is mounted (v1: the one whose super
    options name `option`); "" if none is. Cached: hierarchies stay where they are."""
    key = (fstype, option)
    if proc == "/proc" and key in _mount_points:
        return _mount_points[key]
    try:
        with open(f"{proc}/self/mountinfo") as f:
            found = _find_mount(f.read().splitlines(), fstype, option)
    except OSError:
        return ""
    if proc == "/proc":
        _mount_points[key] = found
    return found


def _find_mount(mounts: list[str], fstype: str, option: str) -> str:
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields = right.split()
        if len(fields) < 3 or fields[0] != fstype:
            continue
        if option and option not in fields[2].split(","):
            continue
        point = left.split()[4]
        # mountinfo escapes space, tab, newline and backslash as octal.
        for raw, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
            point = point.replace(raw, char)
        return point
    return ""
