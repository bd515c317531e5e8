"""The container's filesystem, as its init process builds it (runc's rootfs_linux.go).

Init runs this inside its new mount namespace (and its new pid namespace, so
`proc` mounts show the container's processes). Two steps, with the rest of
init (console, hooks, sysctl) free to run between them:

    prepare_rootfs(config, rootfs, sys)          still sees the host's files
        / propagation: rslave (or linux.rootfsPropagation)
        parent mount of rootfs made private if shared (pivot_root needs it)
        bind rootfs onto itself (pivot_root needs a mount point)
        config.mounts, in order (cgroup: tmpfs + one bind per hierarchy)
        devices (defaults + linux.devices), /dev/ptmx, /dev/fd etc., /dev/console

    enter_rootfs(config, rootfs, sys)            only sees the container's files
        pivot_root(".", "."), old root made rslave and detached
        /dev read-only if its mount said ro (deferred: devices were made in it)
        maskedPaths, readonlyPaths, root.readonly, rootfsPropagation on /

Every path inside the rootfs goes through `secure_join`, which resolves
symlinks as if the rootfs were "/", so a symlink in an image can never point a
mount outside it. Mounts then target `/proc/self/fd/N` of an O_PATH descriptor
whose real path was checked, so a symlink swapped in after the join is caught
(runc's fix for CVE-2021-30465).

Errors are `RootfsError`, naming the mount (`mounts[3] (/dev/shm)`) or path.
"""

from __future__ import annotations

import errno
import os
import stat

from skiff.errors import SkiffError
from skiff.linux.syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_DIRSYNC,
    MS_I_VERSION,
    MS_LAZYTIME,
    MS_MANDLOCK,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_POSIXACL,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_SILENT,
    MS_SLAVE,
    MS_STRICTATIME,
    MS_SYNCHRONOUS,
    MS_UNBINDABLE,
)

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.linux.syscalls import Syscalls
    from skiff.oci.runtime_spec import Mount, RuntimeConfig


class RootfsError(SkiffError):
    """Setting up the container's filesystem failed; `errno` is set when a call failed."""

    def __init__(self, message: str, err: int | None = None) -> None:
        super().__init__(message)
        self.errno = err


# option -> (clears the flag?, flag), as runc's parseMountOptions.
MOUNT_FLAGS: dict[str, tuple[bool, int]] = {
    "acl": (False, MS_POSIXACL),
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "noacl": (True, MS_POSIXACL),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "noiversion": (True, MS_I_VERSION),
    "nolazytime": (True, MS_LAZYTIME),
    "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "symfollow": (True, MS_NOSYMFOLLOW),
    "sync": (False, MS_SYNCHRONOUS),
}

PROPAGATION_FLAGS: dict[str, int] = {
    "private": MS_PRIVATE,
    "shared": MS_SHARED,
    "slave": MS_SLAVE,
    "unbindable": MS_UNBINDABLE,
    "rprivate": MS_PRIVATE | MS_REC,
    "rshared": MS_SHARED | MS_REC,
    "rslave": MS_SLAVE | MS_REC,
    "runbindable": MS_UNBINDABLE | MS_REC,
}

# Options that are ours, not the kernel's: never passed on as data.
_IGNORED_OPTIONS = frozenset({"tmpcopyup"})
# mount_setattr(2) options the spec lists; refused loudly rather than sent as data.
_UNSUPPORTED_OPTIONS = frozenset(
    {"idmap", "ridmap"}
    | {
        "r" + o
        for o in (
            "ro",
            "rw",
            "atime",
            "noatime",
            "diratime",
            "nodiratime",
            "relatime",
            "norelatime",
            "strictatime",
            "nostrictatime",
            "suid",
            "nosuid",
            "dev",
            "nodev",
            "exec",
            "noexec",
            "symfollow",
            "nosymfollow",
        )
    }
)

# proc, sysfs, cgroup and the cgroup tmpfs get these, as in runc.
_DEFAULT_MOUNT_FLAGS = MS_NOEXEC | MS_NOSUID | MS_NODEV

# (path, type, major, minor): what runc always creates, mode 0666, owned by root.
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3),
    ("/dev/zero", "c", 1, 5),
    ("/dev/full", "c", 1, 7),
    ("/dev/tty", "c", 5, 0),
    ("/dev/urandom", "c", 1, 9),
    ("/dev/random", "c", 1, 8),
)

DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)

_MAX_SYMLINKS = 255


class MountOptions:
    """A mount's `options`, split as mount(2) wants them."""

    __slots__ = ("data", "flags", "propagation")

    def __init__(self, flags: int, propagation: list[int], data: str) -> None:
        self.flags = flags
        self.propagation = propagation
        self.data = data

    def __repr__(self) -> str:
        return f"MountOptions(flags={self.flags:#x}, propagation={self.propagation}, data={self.data!r})"


def parse_mount_options(options: list[str]) -> MountOptions:
    """Options in order, later ones winning (`ro,rw` is rw); unknown ones become data."""
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for opt in options:
        if opt in MOUNT_FLAGS:
            clear, flag = MOUNT_FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION_FLAGS:
            propagation.append(PROPAGATION_FLAGS[opt])
        elif opt in _UNSUPPORTED_OPTIONS:
            raise ValueError(f"mount option {opt!r} is not supported")
        elif opt not in _IGNORED_OPTIONS:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data))


def secure_join(root: str, unsafe: str) -> str:
    """`root` + `unsafe`, resolving symlinks as if `root` were "/".

    `..` stops at root and absolute symlink targets restart at root, so the
    result is always inside root (root must be absolute and symlink-free).
    Components that do not exist are kept as they are.
    """
    root = root.rstrip("/") or "/"
    prefix = "" if root == "/" else root
    todo = unsafe.split("/")[::-1]
    parts: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        candidate = prefix + "/" + "/".join([*parts, part])
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            parts.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            parts.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(errno.ELOOP, f"too many symlinks under {root}", unsafe)
        target = os.readlink(candidate)
        if target.startswith("/"):
            parts = []
        todo.extend(target.split("/")[::-1])
    return prefix + "/" + "/".join(parts) if parts else root


def _join_parent(root: str, path: str) -> str:
    """Like secure_join, but the last component is not followed (for symlinks, nodes)."""
    parent, name = os.path.split("/" + path.strip("/"))
    if not name:
        return root
    return secure_join(root, parent).rstrip("/") + "/" + name


def _mkdir_all(path: str) -> None:
    os.makedirs(path, mode=0o755, exist_ok=True)


def _create_file(path: str) -> None:
    """An empty file to mount a file onto (O_NOFOLLOW: a symlink here is an error)."""
    if os.path.lexists(path) and not os.path.islink(path):
        return
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    os.close(fd)


def _mount_at(
    sys: Syscalls,
    source: str | None,
    path: str,
    fstype: str | None,
    flags: int,
    *,
    data: str | None = None,
) -> None:
    """mount(2) onto `path` through a descriptor, refusing if `path` is not where it was."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if real != path:
            raise RootfsError(
                f"mount target {path} resolves to {real}: the path changed under us",
                errno.EXDEV,
            )
        try:
            sys.mount(source, f"/proc/self/fd/{fd}", fstype, flags, data)
        except OSError as e:
            kind = fstype or "(no type)"
            raise RootfsError(
                f"mount {source or '(none)'} ({kind}, flags {flags:#x}) on {path}: "
                f"{os.strerror(e.errno or 0)}",
                e.errno,
            ) from e
    finally:
        os.close(fd)


# ---- /proc/self/mountinfo and /proc/self/cgroup ------------------------------


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    if "\\" not in field:
        return field
    out: list[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


class MountInfo:
    """One line of /proc/self/mountinfo."""

    __slots__ = ("fstype", "mountpoint", "optional", "root", "source", "super_options")

    def __init__(self, line: str) -> None:
        left, _, right = line.partition(" - ")
        fields = left.split(" ")
        rest = right.split(" ")
        if len(fields) < 6 or len(rest) < 3:
            raise ValueError(f"bad mountinfo line: {line!r}")
        self.root = _unescape(fields[3])
        self.mountpoint = _unescape(fields[4])
        self.optional = fields[6:]
        self.fstype = rest[0]
        self.source = _unescape(rest[1])
        self.super_options = rest[2].split(",")


def parse_mountinfo(text: str) -> list[MountInfo]:
    return [MountInfo(line) for line in text.splitlines() if line.strip()]


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup as controller -> path; the v2 line is under ""."""
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            own[controller] = parts[2]
    return own


def _is_under(path: str, top: str) -> bool:
    return top in ("/", path) or path.startswith(top.rstrip("/") + "/")


def _mount_containing(path: str, mounts: list[MountInfo]) -> MountInfo | None:
    """The mount `path` lives on: the longest mount point above it, the last one listed."""
    best: MountInfo | None = None
    for m in mounts:
        if _is_under(path, m.mountpoint) and (
            best is None or len(m.mountpoint) >= len(best.mountpoint)
        ):
            best = m
    return best


class CgroupBind:
    """One v1 hierarchy to show in the container: host `source` at `<dest>/<name>`."""

    __slots__ = ("name", "options", "source")

    def __init__(self, name: str, source: str, options: list[str]) -> None:
        self.name = name
        self.source = source
        self.options = options

    def __repr__(self) -> str:
        return f"CgroupBind({self.name!r}, {self.source!r})"


def cgroup_v1_binds(proc_cgroup: str, mountinfo: str) -> list[CgroupBind]:
    """This process's directory in every v1 hierarchy (runc's getCgroupMounts).

    The cgroup2 "unified" mount of a hybrid host is left out, as runc does.
    """
    own = parse_proc_cgroup(proc_cgroup)
    binds: list[CgroupBind] = []
    seen: set[tuple[str, ...]] = set()
    for m in parse_mountinfo(mountinfo):
        if m.fstype != "cgroup":
            continue
        subsystems = tuple(o for o in m.super_options if o in own and o)
        if not subsystems or subsystems in seen:
            continue
        seen.add(subsystems)
        rel = os.path.relpath(own[subsystems[0]], m.root)
        if rel == "." or rel.startswith(".."):
            source = m.mountpoint
        else:
            source = m.mountpoint.rstrip("/") + "/" + rel
        binds.append(CgroupBind(os.path.basename(m.mountpoint), source, list(subsystems)))
    return binds


def _is_cgroup2_host(mounts: list[MountInfo]) -> bool:
    top = _mount_containing("/sys/fs/cgroup", mounts)
    return top is not None and top.mountpoint == "/sys/fs/cgroup" and top.fstype == "cgroup2"


# ---- helpers shared by both steps --------------------------------------------


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    return str(e)


def _sys_mount(
    sys: Syscalls,
    what: str,
    source: str | None,
    target: str,
    flags: int,
    *,
    fstype: str | None = None,
) -> None:
    """A mount on a trusted path (the host's, or the container's once pivoted)."""
    try:
        sys.mount(source, target, fstype, flags, None)
    except OSError as e:
        raise RootfsError(
            f"{what}: mount on {target} (flags {flags:#x}): {os.strerror(e.errno or 0)}", e.errno
        ) from e


def _absolute(path: str) -> str:
    """Relative destinations are deprecated but allowed: they are relative to "/"."""
    return path if path.startswith("/") else "/" + path


def _propagate(sys: Syscalls, path: str, propagation: list[int]) -> None:
    # Re-opened for each call: the mount just made covers the old descriptor's directory.
    for flag in propagation:
        _mount_at(sys, None, path, None, flag)


# ---- config.mounts -----------------------------------------------------------


def _bind_source(m: Mount, bundle: str | None) -> str:
    if not m.source:
        raise ValueError("a bind mount needs a source")
    if m.source.startswith("/"):
        return m.source
    if bundle is None:
        raise ValueError(f"bind source {m.source!r} is relative and no bundle was given")
    return os.path.join(bundle, m.source)


def _remount_bind(sys: Syscalls, path: str, flags: int) -> None:
    """A bind mount takes no flags of its own: ro, nosuid... need a remount."""
    want = (flags & ~MS_REC) | MS_BIND | MS_REMOUNT
    try:
        _mount_at(sys, None, path, None, want)
    except RootfsError as e:
        if e.errno != errno.EPERM:
            raise
        # In a user namespace the flags the source mount has are locked: keep them.
        _mount_at(sys, None, path, None, want | sys.statvfs_flags(path))


def _mount_bind(
    sys: Syscalls,
    rootfs: str,
    dest: str,
    source: str,
    flags: int,
    *,
    propagation: list[int],
    source_is_dir: bool = False,
) -> None:
    path = secure_join(rootfs, dest)
    if source_is_dir or os.path.isdir(source):
        _mkdir_all(path)
    elif os.path.exists(source):
        _create_file(path)
    else:
        raise FileNotFoundError(errno.ENOENT, "bind source does not exist", source)
    _mount_at(sys, source, path, "bind", flags & (MS_BIND | MS_REC) | MS_BIND)
    _propagate(sys, path, propagation)
    if flags & ~(MS_REC | MS_REMOUNT | MS_BIND):
        _remount_bind(sys, path, flags)


def _mount_fs(sys: Syscalls, rootfs: str, dest: str, m: Mount, opts: MountOptions) -> None:
    path = secure_join(rootfs, dest)
    fstype = m.type or None
    if fstype in ("proc", "sysfs") and os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"{fstype} must be mounted on a directory, {path} is not one")
    _mkdir_all(path)
    flags = opts.flags
    # Files are made in /dev and tmpfs mounts after mounting: ro comes later.
    if fstype == "tmpfs" or os.path.normpath(dest) == "/dev":
        flags &= ~MS_RDONLY
    _mount_at(sys, m.source or fstype, path, fstype, flags, data=opts.data or None)
    _propagate(sys, path, opts.propagation)
    if flags != opts.flags and os.path.normpath(dest) != "/dev":
        _mount_at(sys, None, path, fstype, opts.flags | MS_REMOUNT)


class _Setup:
    """What every mount of one prepare_rootfs call needs to know."""

    __slots__ = ("bundle", "config", "infos", "mountinfo", "rootfs", "sys")

    def __init__(
        self, sys: Syscalls, config: RuntimeConfig, rootfs: str, bundle: str | None
    ) -> None:
        self.sys = sys
        self.config = config
        self.rootfs = rootfs
        self.bundle = bundle
        self.mountinfo = sys.read_proc_self("mountinfo")
        self.infos = parse_mountinfo(self.mountinfo)


def _mount_cgroup(setup: _Setup, dest: str, opts: MountOptions) -> None:
    sys, rootfs = setup.sys, setup.rootfs
    cgroupns = setup.config.linux.namespace("cgroup") is not None
    path = secure_join(rootfs, dest)
    _mkdir_all(path)
    proc_cgroup = sys.read_proc_self("cgroup")
    if _is_cgroup2_host(setup.infos):
        try:
            _mount_at(sys, "cgroup2", path, "cgroup2", opts.flags, data=opts.data or None)
        except RootfsError as e:
            # Without a cgroup namespace the kernel may refuse: show our own cgroup instead.
            if e.errno not in (errno.EPERM, errno.EBUSY):
                raise
            own = parse_proc_cgroup(proc_cgroup).get("", "/")
            source = "/sys/fs/cgroup" + ("" if own == "/" else own)
            _mount_bind(
                sys,
                rootfs,
                dest,
                source,
                MS_BIND | MS_REC | opts.flags,
                propagation=opts.propagation,
                source_is_dir=True,
            )
        else:
            _propagate(sys, path, opts.propagation)
        return
    _mount_at(sys, "tmpfs", path, "tmpfs", _DEFAULT_MOUNT_FLAGS, data="mode=755")
    _propagate(sys, path, opts.propagation)
    binds = cgroup_v1_binds(proc_cgroup, setup.mountinfo)
    for b in binds:
        sub = dest.rstrip("/") + "/" + b.name
        if cgroupns:
            sub_path = secure_join(rootfs, sub)
            _mkdir_all(sub_path)
            flags = _DEFAULT_MOUNT_FLAGS | (opts.flags & MS_RDONLY)
            _mount_at(sys, "cgroup", sub_path, "cgroup", flags, data=",".join(b.options))
        else:
            flags = MS_BIND | MS_REC | opts.flags
            _mount_bind(
                sys, rootfs, sub, b.source, flags, propagation=opts.propagation, source_is_dir=True
            )
    for b in binds:
        if "," in b.name:
            for subsystem in b.name.split(","):
                link = _join_parent(rootfs, dest.rstrip("/") + "/" + subsystem)
                if not os.path.lexists(link):
                    os.symlink(b.name, link)
    if opts.flags & MS_RDONLY:
        _mount_at(sys, None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | _DEFAULT_MOUNT_FLAGS)


def _mount_entry(setup: _Setup, index: int, m: Mount) -> None:
    sys, rootfs = setup.sys, setup.rootfs
    dest = _absolute(m.destination)
    try:
        opts = parse_mount_options(m.options)
        if m.type == "cgroup":
            _mount_cgroup(setup, dest, opts)
        elif opts.flags & MS_BIND or m.type == "bind":
            source = _bind_source(m, setup.bundle)
            _mount_bind(sys, rootfs, dest, source, opts.flags, propagation=opts.propagation)
        else:
            _mount_fs(sys, rootfs, dest, m, opts)
    except RootfsError as e:
        raise RootfsError(f"mounts[{index}] ({m.destination}): {e}", e.errno) from e
    except (OSError, ValueError) as e:
        err = e.errno if isinstance(e, OSError) else None
        raise RootfsError(f"mounts[{index}] ({m.destination}): {_describe(e)}", err) from e


# ---- /dev --------------------------------------------------------------------


def _is_dev_bind(m: Mount) -> bool:
    if os.path.normpath(_absolute(m.destination)) != "/dev":
        return False
    return m.type == "bind" or "bind" in m.options or "rbind" in m.options


def _bind_device(sys: Syscalls, path: str, host_path: str) -> None:
    _create_file(path)
    _mount_at(sys, host_path, path, "bind", MS_BIND)


_DEVICE_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _create_device(
    sys: Syscalls,
    rootfs: str,
    spec: tuple[str, str, int, int, int, int, int],
    bind: bool,
) -> None:
    dev_path, kind, major, minor, mode, uid, gid = spec
    path = _join_parent(rootfs, dev_path)
    _mkdir_all(os.path.dirname(path))
    if bind:
        _bind_device(sys, path, dev_path)
        return
    device = 0 if kind == "p" else os.makedev(major, minor)
    old_umask = os.umask(0)
    try:
        sys.mknod(path, _DEVICE_KINDS[kind] | (mode & 0o7777), device)
    except FileExistsError:
        return
    except PermissionError:
        # No CAP_MKNOD here (a user namespace): the host's node, bound, does the job.
        _bind_device(sys, path, dev_path)
        return
    finally:
        os.umask(old_umask)
    sys.lchown(path, uid, gid)


def _device_list(config: RuntimeConfig) -> list[tuple[str, str, int, int, int, int, int]]:
    given = {d.path for d in config.linux.devices}
    out = [(p, t, ma, mi, 0o666, 0, 0) for p, t, ma, mi in DEFAULT_DEVICES if p not in given]
    for d in config.linux.devices:
        mode = 0o666 if d.file_mode is None else d.file_mode
        out.append((d.path, d.type, d.major, d.minor, mode, d.uid or 0, d.gid or 0))
    return out


def _setup_dev(sys: Syscalls, config: RuntimeConfig, rootfs: str) -> None:
    bind = config.linux.namespace("user") is not None
    for spec in _device_list(config):
        try:
            _create_device(sys, rootfs, spec, bind)
        except (RootfsError, OSError) as e:
            raise RootfsError(f"device {spec[0]}: {_describe(e)}", e.errno) from e
    ptmx = _join_parent(rootfs, "/dev/ptmx")
    try:
        if os.path.lexists(ptmx):
            os.remove(ptmx)
        os.symlink("pts/ptmx", ptmx)
    except OSError as e:
        raise RootfsError(f"/dev/ptmx: {_describe(e)}", e.errno) from e
    links = list(DEV_SYMLINKS)
    if sys.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    for target, link in links:
        try:
            os.symlink(target, _join_parent(rootfs, link))
        except FileExistsError:
            pass
        except OSError as e:
            raise RootfsError(f"symlink {link} -> {target}: {_describe(e)}", e.errno) from e


def _setup_console(sys: Syscalls, rootfs: str, console_slave: str) -> None:
    path = _join_parent(rootfs, "/dev/console")
    try:
        _create_file(path)
        _mount_at(sys, console_slave, path, "bind", MS_BIND)
    except (RootfsError, OSError) as e:
        raise RootfsError(f"/dev/console from {console_slave}: {_describe(e)}", e.errno) from e


# ---- the two steps -----------------------------------------------------------


def shares_host_mounts(config: RuntimeConfig) -> bool:
    """True when the container has no mount namespace of its own."""
    return config.linux.namespace("mount") is None


def unmount_under(rootfs: str) -> None:
    """Detach every mount at or below `rootfs` in our namespace, deepest first.

    For containers that share the host's mount namespace: their mounts outlive
    them there, and `delete` removes them with this.
    """
    from skiff.linux.syscalls import umount2

    if not os.path.isabs(rootfs) or os.path.realpath(rootfs) == "/":
        raise ValueError(f"refusing to unmount under {rootfs!r}")
    rootfs = os.path.realpath(rootfs)
    with open("/proc/self/mountinfo") as f:
        points = [_unescape(line.split()[4]) for line in f]
    inside = [p for p in points if p == rootfs or p.startswith(rootfs + "/")]
    for point in sorted(set(inside), key=len, reverse=True):
        try:
            umount2(point, MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOENT):
                raise


def prepare_rootfs(
    config: RuntimeConfig,
    rootfs: str,
    sys: Syscalls,
    console_slave: str | None = None,
    *,
    bundle: str | None = None,
) -> None:
    """Mount everything under `rootfs`, still seeing the host (see the module docstring).

    `bundle` resolves relative bind sources; without it they are an error.
    """
    rootfs = os.path.realpath(rootfs)
    if shares_host_mounts(config):
        # Without a mount namespace of its own (runc allows it) the container's
        # mounts land in the host's namespace: leave the host's propagation
        # alone; `delete` unmounts what was made under the rootfs.
        setup = _Setup(sys, config, rootfs, bundle)
    else:
        prop = config.linux.rootfs_propagation
        # rslave by default: host mounts still reach us, ours never reach the host.
        root_flags = PROPAGATION_FLAGS[prop] if prop else MS_SLAVE | MS_REC
        _sys_mount(sys, "rootfsPropagation", None, "/", root_flags)
        # Read after the change above: "shared:" below must be what pivot_root will see.
        setup = _Setup(sys, config, rootfs, bundle)
        parent = _mount_containing(rootfs, setup.infos)
        if parent is not None and any(f.startswith("shared:") for f in parent.optional):
            # pivot_root refuses a new root whose parent mount is shared.
            _sys_mount(sys, "rootfs parent", None, parent.mountpoint, MS_PRIVATE)
    _sys_mount(sys, "root.path", rootfs, rootfs, MS_BIND | MS_REC, fstype="bind")
    for index, m in enumerate(config.mounts):
        _mount_entry(setup, index, m)
    if not any(_is_dev_bind(m) for m in config.mounts):
        _setup_dev(sys, config, rootfs)
    if console_slave is not None:
        _setup_console(sys, rootfs, console_slave)


def _pivot(sys: Syscalls, rootfs: str) -> None:
    """pivot_root(".", ".") stacks the old root on the new; detaching it leaves the new.

    No temporary directory is needed in the rootfs (it may be read-only). The
    old root is made rslave first so the detach cannot propagate to the host.
    """
    old_root = sys.open("/", os.O_DIRECTORY | os.O_RDONLY)
    try:
        new_root = sys.open(rootfs, os.O_DIRECTORY | os.O_RDONLY)
        try:
            sys.fchdir(new_root)
            sys.pivot_root(".", ".")
            sys.fchdir(old_root)
            sys.mount(None, ".", None, MS_SLAVE | MS_REC, None)
            sys.umount2(".", MNT_DETACH)
        finally:
            sys.close(new_root)
    finally:
        sys.close(old_root)
    sys.chdir("/")


def _mask(sys: Syscalls, path: str) -> None:
    try:
        sys.mount("/dev/null", path, None, MS_BIND, None)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        if e.errno != errno.ENOTDIR:
            raise RootfsError(f"maskedPaths {path}: {os.strerror(e.errno or 0)}", e.errno) from e
        # A directory: hide it under an empty read-only tmpfs.
        _sys_mount(sys, f"maskedPaths {path}", "tmpfs", path, MS_RDONLY, fstype="tmpfs")


def _make_readonly(sys: Syscalls, path: str) -> None:
    try:
        sys.mount(path, path, None, MS_BIND | MS_REC, None)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return
        raise RootfsError(f"readonlyPaths {path}: {os.strerror(e.errno or 0)}", e.errno) from e
    try:
        kept = sys.statvfs_flags(path)
    except OSError as e:
        raise RootfsError(f"readonlyPaths {path}: statvfs: {e.strerror}", e.errno) from e
    flags = kept | MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    _sys_mount(sys, f"readonlyPaths {path}", path, path, flags)


def enter_rootfs(config: RuntimeConfig, rootfs: str, sys: Syscalls) -> None:
    """Make `rootfs` the root, then lock it down (see the module docstring)."""
    rootfs = os.path.realpath(rootfs)
    try:
        if shares_host_mounts(config):
            # pivot_root would change the host's root: chroot, as runc does.
            os.chroot(rootfs)
            os.chdir("/")
        else:
            _pivot(sys, rootfs)
    except OSError as e:
        raise RootfsError(f"pivot_root into {rootfs}: {_describe(e)}", e.errno) from e
    for m in config.mounts:
        if os.path.normpath(_absolute(m.destination)) == "/dev" and not _is_dev_bind(m):
            flags = parse_mount_options(m.options).flags
            if flags & MS_RDONLY:
                _sys_mount(sys, "/dev", None, "/dev", flags | MS_REMOUNT)
    for path in config.linux.masked_paths:
        _mask(sys, _absolute(path))
    for path in config.linux.readonly_paths:
        _make_readonly(sys, _absolute(path))
    if config.root_readonly:
        try:
            kept = sys.statvfs_flags("/")
        except OSError as e:
            raise RootfsError(f"root.readonly: statvfs /: {e.strerror}", e.errno) from e
        flags = kept | MS_BIND | MS_REMOUNT | MS_RDONLY
        _sys_mount(sys, "root.readonly", None, "/", flags)
    prop = config.linux.rootfs_propagation
    if prop:
        _sys_mount(sys, "rootfsPropagation", None, "/", PROPAGATION_FLAGS[prop])
