"""COPY and ADD: sources out of the context (or another image's rootfs) into a rootfs.

As the classic builder: a folder source copies its contents; a file goes to `dest`
itself unless `dest` ends in `/` or is an existing folder; several sources need a
folder `dest` ending in `/`. Copied entries belong to root (or `--chown`), keep their
mode (or take `--chmod`) and mtime. ADD unpacks a local tar (plain, gzip, bzip2, xz)
with archive.apply's safe extractor; ADD of a URL is refused (skiffd works offline).

Sources are resolved and hashed (the cache's view of them) by build/sources.py; here
they are read from the folder that holds them on disk.
"""

from __future__ import annotations

import bz2
import lzma
import os
import shutil
import stat
from dataclasses import dataclass
from typing import BinaryIO, cast

from skiff.build.dockerignore import clean
from skiff.build.sources import CopyError, Source

_CHUNK = 1 << 20


# --- writing into a rootfs ------------------------------------------------------------


def rootfs_path(rootfs: str, path: str) -> str:
    """`path` inside `rootfs` with chroot semantics: symlinks in the parents resolve
    as if rootfs were `/`, so nothing lands outside it. The last component is kept."""
    parts = [p for p in clean("/" + path).split("/") if p]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(rootfs, *resolved, part)
        if parts and os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise CopyError(f"too many levels of symbolic links: {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(rootfs, *resolved)


def mkdir_all(rootfs: str, path: str, uid: int = 0, gid: int = 0) -> str:
    """Create `path` (and parents, 0755, root's) inside rootfs; return the host path."""
    parts = [p for p in clean("/" + path).split("/") if p]
    current = "/"
    for part in parts:
        current = current.rstrip("/") + "/" + part
        host = rootfs_path(rootfs, current)
        if not os.path.lexists(host):
            os.mkdir(host, 0o755)
            os.chown(host, uid, gid, follow_symlinks=False)
        elif not os.path.isdir(host):
            raise CopyError(f"mkdir {current}: not a directory")
    return rootfs_path(rootfs, path)


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int


def copy_sources(
    rootfs: str,
    root: str,
    sources: list[Source],
    dest: str,
    *,
    kind: str,
    owner: Owner,
    chmod: int | None,
) -> None:
    dest_is_dir = dest.endswith("/") or len(sources) > 1
    if len(sources) > 1 and not dest.endswith("/"):
        raise CopyError(
            f"When using {kind} with more than one source file, the destination must be "
            "a directory and end with a /"
        )
    host_dest = rootfs_path(rootfs, dest)
    if os.path.isdir(host_dest):
        dest_is_dir = True
    for src in sources:
        path = os.path.join(root, src.path) if src.path else root
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            target = mkdir_all(rootfs, dest, owner.uid, owner.gid)
            _copy_tree(path, target, owner, chmod)
            continue
        if kind == "ADD" and stat.S_ISREG(st.st_mode) and _is_archive(path):
            target = mkdir_all(rootfs, dest)
            _extract(path, target)
            continue
        if dest_is_dir:
            parent = mkdir_all(rootfs, dest)
            target = os.path.join(parent, os.path.basename(src.rel.rstrip("/")))
        else:
            parent_dir = os.path.dirname(dest.rstrip("/")) or "/"
            mkdir_all(rootfs, parent_dir)
            target = rootfs_path(rootfs, dest)
        _copy_one(path, target, owner, chmod)


def _copy_tree(src: str, dest: str, owner: Owner, chmod: int | None) -> None:
    for name in sorted(os.listdir(src)):
        s = os.path.join(src, name)
        d = os.path.join(dest, name)
        if os.path.isdir(s) and not os.path.islink(s):
            if os.path.lexists(d) and not os.path.isdir(d):
                _remove(d)
            if not os.path.lexists(d):
                os.mkdir(d, 0o700)
            _copy_tree(s, d, owner, chmod)
            _finish(s, d, owner, chmod)
        else:
            _copy_one(s, d, owner, chmod)


def _copy_one(src: str, dest: str, owner: Owner, chmod: int | None) -> None:
    st = os.lstat(src)
    if os.path.lexists(dest):
        if os.path.isdir(dest) and not os.path.islink(dest):
            if not stat.S_ISDIR(st.st_mode):
                shutil.rmtree(dest)
        else:
            _remove(dest)
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dest)
        os.chown(dest, owner.uid, owner.gid, follow_symlinks=False)
        return
    if stat.S_ISREG(st.st_mode):
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, _CHUNK)
    elif stat.S_ISDIR(st.st_mode):
        os.mkdir(dest, 0o700)
    else:
        return  # devices, fifos and sockets of a context are not copied
    _finish(src, dest, owner, chmod)


def _finish(src: str, dest: str, owner: Owner, chmod: int | None) -> None:
    st = os.lstat(src)
    os.chown(dest, owner.uid, owner.gid)
    os.chmod(dest, chmod if chmod is not None else stat.S_IMODE(st.st_mode))
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _is_archive(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _extract(path: str, dest: str) -> None:
    from skiff.archive.apply import apply_layer

    with open(path, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        if head[:3] == b"BZh":
            with bz2.open(raw) as stream:
                apply_layer(cast(BinaryIO, stream), dest, whiteouts="delete")
        elif head == b"\xfd7zXZ\x00":
            with lzma.open(raw) as stream:
                apply_layer(cast(BinaryIO, stream), dest, whiteouts="delete")
        else:
            apply_layer(raw, dest, whiteouts="delete")


def parse_chown(text: str, rootfs: str | None) -> Owner:
    """`--chown=user[:group]`: numbers, or names from the rootfs' /etc/passwd and
    /etc/group. A user alone gives its own uid as gid (as Docker)."""
    user, _, group = text.partition(":")
    uid = _lookup(user, rootfs, "passwd")
    gid = _lookup(group, rootfs, "group") if group else uid
    return Owner(uid, gid)


def _lookup(name: str, rootfs: str | None, db: str) -> int:
    if name.isdigit():
        return int(name)
    if rootfs is not None:
        path = rootfs_path(rootfs, f"/etc/{db}")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    fields = line.strip().split(":")
                    if len(fields) > 2 and fields[0] == name and fields[2].isdigit():
                        return int(fields[2])
        except OSError:
            pass
    what = "user" if db == "passwd" else "group"
    raise CopyError(
        f"unable to convert uid/gid chown string to host mapping: no such {what}: {name}"
    )


def parse_chmod(text: str) -> int:
    try:
        mode = int(text, 8)
    except ValueError:
        raise CopyError(f"invalid chmod parameter: {text}") from None
    if mode > 0o7777:
        raise CopyError(f"invalid chmod parameter: {text}")
    return mode
