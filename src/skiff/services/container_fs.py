"""A container's filesystem from the outside: cp (stat, get and put archives), export,
diff (changes) and commit. Works on stopped containers too: their snapshot is mounted
on the bundle's rootfs for the call, under the container's lock, so a concurrent
start waits.

    ContainerFs(core)
      async with fs.rootfs(c) as root: ...        the merged tree (overlay mount)
      stat(root, path) -> PathStat                  X-Docker-Container-Path-Stat
      write_archive(root, path, out)                GET /containers/{id}/archive
      extract_archive(root, path, stream, ...)      PUT /containers/{id}/archive
      export(root, out)                             GET /containers/{id}/export
      changes(c) -> [(path, kind)]                  GET /containers/{id}/changes
      commit(c, ...) -> Image                       POST /commit

Paths from the client are resolved inside the rootfs as if chrooted (symlinks are
followed but never leave it: `scoped_path`); extraction uses skiff.archive's
apply_layer, which opens every folder relative to the destination without following
symlinks, so a hostile tar cannot write outside. Volumes mounted inside a running
container live in its mount namespace and are not seen here (as with Docker's cp of a
stopped container).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tarfile
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from skiff.errors import InvalidArgument, NotFound
from skiff.services.core import ContainerCore, is_running

MODIFIED, ADDED, DELETED = 0, 1, 2

# Go's os.FileMode type bits (what the docker CLI decodes from the stat header).
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_DEVICE = 1 << 26
GO_PIPE = 1 << 25
GO_SOCKET = 1 << 24
GO_SETUID = 1 << 23
GO_SETGID = 1 << 22
GO_CHARDEV = 1 << 21
GO_STICKY = 1 << 20


@dataclass(frozen=True)
class PathStat:
    name: str
    size: int
    mode: int  # Go's FileMode
    mtime: str  # RFC 3339
    link_target: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "mode": self.mode,
            "mtime": self.mtime,
            "linkTarget": self.link_target,
        }


class NoSuchPath(NotFound):
    def __init__(self, path: str, container: str) -> None:
        super().__init__(f"Could not find the file {path} in container {container}")


def go_mode(st: os.stat_result) -> int:
    mode = stat.S_IMODE(st.st_mode) & 0o777
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFDIR:
        mode |= GO_DIR
    elif kind == stat.S_IFLNK:
        mode |= GO_SYMLINK
    elif kind == stat.S_IFIFO:
        mode |= GO_PIPE
    elif kind == stat.S_IFSOCK:
        mode |= GO_SOCKET
    elif kind == stat.S_IFCHR:
        mode |= GO_DEVICE | GO_CHARDEV
    elif kind == stat.S_IFBLK:
        mode |= GO_DEVICE
    if st.st_mode & stat.S_ISUID:
        mode |= GO_SETUID
    if st.st_mode & stat.S_ISGID:
        mode |= GO_SETGID
    if st.st_mode & stat.S_ISVTX:
        mode |= GO_STICKY
    return mode


# Docker's init layer (moby daemon/initlayer): what every container gets between
# its image and its writable layer, if the image lacks it. Mount points, mostly:
# made here, they are not changes of the container (`docker diff`, `commit`).
INIT_LAYER = (
    ("/dev/pts", "dir"),
    ("/dev/shm", "dir"),
    ("/proc", "dir"),
    ("/sys", "dir"),
    ("/.dockerenv", "file"),
    ("/etc/resolv.conf", "file"),
    ("/etc/hosts", "file"),
    ("/etc/hostname", "file"),
    ("/dev/console", "file"),
    ("/etc/mtab", "/proc/mounts"),
)


def fill_init_layer(root: str) -> None:
    """Make INIT_LAYER's entries that are missing under `root` (a mounted snapshot on
    the image), resolving the image's symlinks inside it."""
    for path, kind in INIT_LAYER:
        full = scoped_path(root, path)
        if os.path.lexists(full):
            continue
        os.makedirs(os.path.dirname(full), mode=0o755, exist_ok=True)
        if kind == "dir":
            os.mkdir(full, 0o755)
        elif kind == "file":
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            os.close(os.open(full, flags, 0o755))
        else:
            os.symlink(kind, full)


def scoped_path(root: str, path: str, *, follow_last: bool = True) -> str:
    """The host path of `path` inside `root`, resolving symlinks as if `root` were `/`
    (an absolute link restarts at root, `..` stops at root), like securejoin."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if (parts or follow_last) and os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise InvalidArgument(f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _rfc3339(ts: float) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return (
        dt.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{int(ts % 1 * 1e9):09d}".rstrip("0").rstrip("."))
        + "Z"
    )


class ContainerFs:
    def __init__(self, core: ContainerCore) -> None:
        self._core = core

    # --- the merged tree -----------------------------------------------------------

    @contextlib.asynccontextmanager
    async def rootfs(self, c: Any) -> AsyncIterator[str]:
        """The container's merged rootfs: its live mount while it runs, else its snapshot
        mounted for the duration (under the container's lock)."""
        if is_running(c) and os.path.ismount(c.rootfs):
            yield c.rootfs
            return
        async with self._core.lock(c):
            if os.path.ismount(c.rootfs):
                yield c.rootfs
                return
            # A private mount point: the core owns c.rootfs and its mount state.
            target = await asyncio.to_thread(tempfile.mkdtemp, prefix=".fs-", dir=c.dir)
            try:
                await asyncio.to_thread(self._mount, c, target)
                try:
                    yield target
                finally:
                    # Shielded: a client that hangs up cancels the handler, and the
                    # unmount must finish all the same.
                    await asyncio.shield(asyncio.to_thread(self._unmount, target))
            finally:
                with contextlib.suppress(OSError):
                    os.rmdir(target)

    def _mount(self, c: Any, target: str) -> None:
        from skiff.snapshots.mount import mount_all

        mount_all(self._core.images.snapshotter.mounts(c.snapshot_key), target)

    def _unmount(self, target: str) -> None:
        from skiff.snapshots.mount import unmount

        try:
            unmount(target)
        except OSError:
            with contextlib.suppress(OSError):
                unmount(target, detach=True)

    # --- cp -----------------------------------------------------------------------------

    def stat(self, root: str, path: str, container: str = "") -> PathStat:
        if not path:
            raise InvalidArgument("path cannot be empty")
        host = scoped_path(root, path, follow_last=False)
        try:
            st = os.lstat(host)
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchPath(path, container) from None
        link = ""
        if stat.S_ISLNK(st.st_mode):
            target = scoped_path(root, path)
            link = "/" + os.path.relpath(target, root) if target != root else "/"
        name = os.path.basename(host.rstrip("/")) or "/"
        return PathStat(name, st.st_size, go_mode(st), _rfc3339(st.st_mtime), link)

    def write_archive(self, root: str, path: str, out: BinaryIO, container: str = "") -> None:
        """A tar of `path` named by its base name (`/etc` -> `etc/...`); `path/.` gives
        the folder's contents, as `docker cp c:/etc/. dest`."""
        contents = path.endswith("/.")
        host = scoped_path(root, path, follow_last=path.endswith("/"))
        if not os.path.lexists(host):
            raise NoSuchPath(path, container)
        name = "." if contents else os.path.basename(host.rstrip("/")) or "."
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            _add_tree(tf, host, name)

    def extract_archive(
        self,
        root: str,
        path: str,
        stream: BinaryIO,
        container: str = "",
        no_overwrite_dir_non_dir: bool = False,
    ) -> None:
        from skiff.archive import apply_layer

        host = scoped_path(root, path)
        if not os.path.lexists(host):
            raise NoSuchPath(path, container)
        if not os.path.isdir(host):
            raise InvalidArgument("extraction point is not a directory")
        if not no_overwrite_dir_non_dir:
            apply_layer(stream, host, whiteouts="delete")
            return
        # Stage the tar beside, check dir/non-dir clashes, then apply (Docker's rule).
        with tempfile.TemporaryFile() as spool:
            while chunk := stream.read(1 << 20):
                spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool, mode="r:*") as tf:
                for member in tf:
                    target = os.path.join(host, member.name.lstrip("/"))
                    if not os.path.lexists(target) or os.path.islink(target):
                        continue
                    existing_dir = os.path.isdir(target)
                    if existing_dir and not member.isdir():
                        raise InvalidArgument(
                            f"cannot overwrite directory {target[len(root) :]!r} with non-directory"
                        )
                    if not existing_dir and member.isdir():
                        raise InvalidArgument(
                            f"cannot overwrite non-directory {target[len(root) :]!r} with directory"
                        )
            spool.seek(0)
            apply_layer(spool, host, whiteouts="delete")

    def export(self, root: str, out: BinaryIO) -> None:
        from skiff.archive import NONE, tar_dir

        tar_dir(root, out, compression=NONE)

    # --- diff and commit ----------------------------------------------------------------

    def changes(self, c: Any) -> list[tuple[str, int]]:
        """`docker diff`: what the container's writable layer changed, sorted by path."""
        from skiff.snapshots.types import lower_dirs, upper_dir

        mounts = self._core.images.snapshotter.mounts(c.snapshot_key)
        return layer_changes(upper_dir(mounts), lower_dirs(mounts))

    def diff_to(self, c: Any, out: BinaryIO) -> None:
        """The writable layer as an uncompressed layer tar (for commit)."""
        from skiff.archive import NONE, diff_layer
        from skiff.snapshots.types import lower_dirs, upper_dir

        mounts = self._core.images.snapshotter.mounts(c.snapshot_key)
        diff_layer(lower_dirs(mounts), upper_dir(mounts), out, compression=NONE)


def layer_changes(upper: str, lowers: list[str]) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []

    def in_lower(rel: str) -> bool:
        return any(os.path.lexists(os.path.join(lower, rel)) for lower in lowers)

    for top, dirs, files in os.walk(upper):
        rel_top = os.path.relpath(top, upper)
        for name in sorted(dirs + files):
            full = os.path.join(top, name)
            rel = name if rel_top == "." else os.path.join(rel_top, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(("/" + rel, DELETED))  # an overlay whiteout
            else:
                out.append(("/" + rel, MODIFIED if in_lower(rel) else ADDED))
    out.sort()
    return out


def _add_tree(tf: tarfile.TarFile, host: str, name: str) -> None:
    """Add `host` as `name`, depth first, never following symlinks."""
    info = tf.gettarinfo(host, arcname=name)
    info.uname = info.gname = ""
    if info.isreg():
        with open(host, "rb") as f:
            tf.addfile(info, f)
    else:
        tf.addfile(info)
    if info.isdir():
        for child in sorted(os.listdir(host)):
            child_name = child if name == "." else f"{name}/{child}"
            _add_tree(tf, os.path.join(host, child), child_name)
