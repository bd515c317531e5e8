"""Where a container's cgroup lives: cgroupsPath rules and v1/v2 detection.

The rules are runc's (cgroupfs driver, libcontainer/cgroups/fs{,2}):

- `clean_path` first: an absolute path is normalised; a relative one is
  normalised as if rooted at "/" and made relative again, so "../../x" is "x"
  and no value can climb out of the hierarchy.
- absolute → `<hierarchy mount>/<path>` in every hierarchy.
- relative → v1: `<mount>/<this process's cgroup in that hierarchy>/<path>`;
  v2: `<mount>/<parent of this process's cgroup>/<path>` (runc uses the parent
  because a process's own v2 cgroup has processes in it and so cannot
  delegate controllers to a child).
- empty → the container id, relative (runc's fs driver: `Name = id`).
- `--systemd-cgroup` style "slice:prefix:name" (`systemd=True`): we have no
  systemd to ask, so it maps to the directory systemd would have made:
  "system.slice:docker:abc" → "/system.slice/docker-abc.scope"; "a-b.slice"
  expands to "/a.slice/a-b.slice"; an empty slice is system.slice; an empty
  prefix gives "name.scope"; a name ending in ".slice" is used as is; an
  empty value is "system.slice:runc:<id>" (runc's default).
"""

from __future__ import annotations

import ctypes
import os
import posixpath

from skiff.cgroups.files import CgroupError
from skiff.linux.libc import libc

DEFAULT_ROOT = "/sys/fs/cgroup"
CGROUP2_SUPER_MAGIC = 0x63677270

# v1 controllers a container joins (runc's fs subsystems; name=systemd is not one).
V1_SUBSYSTEMS = (
    "cpuset",
    "cpu",
    "cpuacct",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
)

FIELD = "linux.cgroupsPath"


def clean_path(path: str) -> str:
    if not path:
        return ""
    if path.startswith("/"):
        return "/" + posixpath.normpath(path).lstrip("/")
    cleaned = posixpath.normpath("/" + path).lstrip("/")
    return "" if cleaned == "." else cleaned


def expand_slice(slice_name: str) -> str:
    """systemd's slice nesting: "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice"."""
    suffix = ".slice"
    if not slice_name.endswith(suffix) or len(slice_name) <= len(suffix) or "/" in slice_name:
        raise CgroupError(FIELD, f"invalid slice name {slice_name!r}")
    stem = slice_name[: -len(suffix)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for part in stem.split("-"):
        if not part:
            raise CgroupError(FIELD, f"invalid slice name {slice_name!r}")
        path += "/" + prefix + part + suffix
        prefix += part + "-"
    return path


def systemd_path(cgroups_path: str, container_id: str) -> str:
    if not cgroups_path:
        parent, prefix, name = "", "runc", container_id
    else:
        parts = cgroups_path.split(":")
        if len(parts) != 3:
            raise CgroupError(
                FIELD, f'expected "slice:prefix:name" for systemd cgroups, got {cgroups_path!r}'
            )
        parent, prefix, name = parts
    if not name or "/" in name or "/" in prefix:
        raise CgroupError(FIELD, f"invalid systemd unit in {cgroups_path!r}")
    if name.endswith(".slice"):
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return posixpath.join(expand_slice(parent or "system.slice"), unit)


def inner_path(cgroups_path: str, container_id: str, systemd: bool) -> str:
    """The cleaned path below a hierarchy (absolute) or below our own cgroup (relative)."""
    if systemd:
        return systemd_path(cgroups_path, container_id)
    inner = clean_path(cgroups_path) or clean_path(container_id)
    if not inner or inner == "/":
        raise CgroupError(FIELD, f"{cgroups_path!r} names no cgroup below the root")
    return inner


def own_cgroups(proc_cgroup: str, mountinfo: str) -> dict[str, str]:
    """This process's cgroup per v1 controller ("" = the v2 hierarchy), as a path
    relative to the hierarchy's mount (a bind-mounted sub-hierarchy has a root
    other than "/" in mountinfo's fourth field)."""
    mount_roots: dict[str, str] = {}
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        if tail[0] == "cgroup2":
            mount_roots.setdefault("", fields[3])
        elif tail[0] == "cgroup":
            for opt in tail[2].split(","):
                mount_roots.setdefault(opt, fields[3])
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        for name in controllers.split(",") if controllers else [""]:
            mroot = mount_roots.get(name, "/")
            if mroot != "/" and (path == mroot or path.startswith(mroot + "/")):
                path = path[len(mroot) :] or "/"
            own[name] = path or "/"
    return own


def read_own_cgroups() -> dict[str, str]:
    with open("/proc/self/cgroup") as f:
        proc_cgroup = f.read()
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    return own_cgroups(proc_cgroup, mountinfo)


def v1_hierarchies(root: str) -> dict[str, str]:
    """Mounted v1 controllers under `root` → hierarchy directory; a co-mount link
    such as cpu → cpu,cpuacct resolves to the real directory (runc joins
    `filepath.Base(mountpoint)`)."""
    out: dict[str, str] = {}
    for name in V1_SUBSYSTEMS:
        d = os.path.join(root, name)
        if os.path.islink(d):
            d = posixpath.normpath(os.path.join(root, os.readlink(d)))
        if os.path.isdir(d):
            out[name] = d
    return out


def v1_paths(root: str, inner: str, own: dict[str, str] | None = None) -> dict[str, str]:
    hierarchies = v1_hierarchies(root)
    if not hierarchies:
        raise CgroupError(FIELD, f"no cgroup v1 controllers mounted under {root}")
    if not inner.startswith("/") and own is None:
        own = read_own_cgroups()
    paths = {}
    for name, mount in hierarchies.items():
        base = "/" if inner.startswith("/") else (own or {}).get(name, "/")
        paths[name] = posixpath.join(mount, base.lstrip("/"), inner.lstrip("/")).rstrip("/")
    return paths


def v2_path(root: str, inner: str, own: dict[str, str] | None = None) -> str:
    if inner.startswith("/"):
        return posixpath.join(root, inner.lstrip("/"))
    if own is None:
        own = read_own_cgroups()
    parent = posixpath.dirname(own.get("", "/"))
    return posixpath.join(root, parent.lstrip("/"), inner)


def detect_version(root: str) -> int:
    """2 if `root` is a cgroup2 mount (statfs magic), else 1 (tmpfs of v1
    hierarchies, including hybrid hosts). A directory that is neither (a test's
    fake root) is v2 if it has cgroup.controllers."""
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type is its first long
    if libc.statfs(root.encode(), buf) == 0:
        magic = ctypes.c_long.from_buffer(buf).value
        if magic == CGROUP2_SUPER_MAGIC:
            return 2
        if magic == 0x01021994:  # TMPFS_MAGIC: the v1 layout
            return 1
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1
