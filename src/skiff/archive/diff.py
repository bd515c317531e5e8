"""Make layer tars: from an overlay upper folder (`diff_layer`) or a whole tree (`tar_dir`).

Output is deterministic: entries depth-first, a folder before its contents,
whiteouts before other siblings, siblings in byte order of their names; no
user or group names, whole-second times, PAX format. Files with more than one
link become tar hardlinks to the first path seen. `trusted.overlay.*` xattrs
are overlayfs bookkeeping and are never copied into a layer.

In an upper folder, overlayfs records a deletion as a 0/0 character device and
a replaced folder as `trusted.overlay.opaque=y`; these become `.wh.NAME` and
`.wh..wh..opq`. The overlay must be mounted without redirect_dir and metacopy
(the snapshotter's mounts are), or renames and chmods would hide in xattrs.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import TYPE_CHECKING, BinaryIO

from skiff.archive.apply import OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX
from skiff.archive.compression import GZIP, LayerDigests, LayerWriter

if TYPE_CHECKING:
    import io
    from collections.abc import Sequence


def diff_layer(
    lower_dirs: Sequence[str | os.PathLike[str]],
    upper_dir: str | os.PathLike[str],
    out: BinaryIO | io.RawIOBase,
    *,
    compression: str = GZIP,
    level: int | None = None,
) -> LayerDigests:
    """Write the changes recorded in an overlay upper folder to `out` as a layer.

    `lower_dirs` (top first) drop whiteouts that hide nothing below."""
    writer = LayerWriter(out, compression, level)
    _Tarrer(os.fspath(upper_dir), [os.fspath(d) for d in lower_dirs], overlay=True).write(writer)
    return writer.finish()


def tar_dir(
    root: str | os.PathLike[str],
    out: BinaryIO | io.RawIOBase,
    *,
    compression: str = GZIP,
    level: int | None = None,
) -> LayerDigests:
    """Write a whole tree to `out` as a layer (import, bootstrap): no whiteouts."""
    writer = LayerWriter(out, compression, level)
    _Tarrer(os.fspath(root), [], overlay=False).write(writer)
    return writer.finish()


class _Tarrer:
    def __init__(self, root: str, lowers: list[str], *, overlay: bool) -> None:
        self.root = root
        self.lowers = lowers
        self.overlay = overlay
        self.links: dict[tuple[int, int], str] = {}

    def write(self, writer: LayerWriter) -> None:
        with tarfile.open(
            fileobj=writer,
            mode="w|",
            format=tarfile.PAX_FORMAT,
            encoding="utf-8",
            errors="surrogateescape",
        ) as tf:
            self._walk(tf, "")

    def _walk(self, tf: tarfile.TarFile, rel: str) -> None:
        folder = os.path.join(self.root, rel) if rel else self.root
        entries = sorted(os.scandir(folder), key=lambda e: os.fsencode(e.name))
        whiteouts, others = [], []
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if self.overlay and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                whiteouts.append((entry.name, st))
            else:
                others.append((entry.name, st))
        for name, st in whiteouts:
            path = _join(rel, name)
            if self.lowers and not any(os.path.lexists(os.path.join(d, path)) for d in self.lowers):
                continue  # hides nothing
            tf.addfile(self._marker(_join(rel, WHITEOUT_PREFIX + name), st))
        for name, st in others:
            self._add(tf, _join(rel, name), st)

    def _add(self, tf: tarfile.TarFile, path: str, st: os.stat_result) -> None:
        full = os.path.join(self.root, path)
        info = tarfile.TarInfo(path)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        info.pax_headers = self._xattrs(full)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            info.type = tarfile.DIRTYPE
            opaque = self.overlay and _getxattr(full, OVERLAY_OPAQUE_XATTR) == b"y"
            tf.addfile(info)
            if opaque:
                tf.addfile(self._marker(_join(path, OPAQUE_WHITEOUT), st))
            self._walk(tf, path)
            return
        if not stat.S_ISLNK(mode) and st.st_nlink > 1:
            first = self.links.setdefault((st.st_dev, st.st_ino), path)
            if first != path:
                info.type, info.linkname = tarfile.LNKTYPE, first
                tf.addfile(info)
                return
        if stat.S_ISREG(mode):
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                fst = os.fstat(fd)
                if not stat.S_ISREG(fst.st_mode):
                    raise OSError(f"{full} changed while making the layer")
                info.size = fst.st_size
                tf.addfile(info, f)
            return
        if stat.S_ISLNK(mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info.type = tarfile.FIFOTYPE
        else:
            return  # sockets do not belong in layers (Docker skips them too)
        tf.addfile(info)

    def _marker(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode = 0o600
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        return info

    def _xattrs(self, full: str) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            names = os.listxattr(full, follow_symlinks=False)
        except OSError:
            return out
        for attr in sorted(names):
            if attr.startswith("trusted.overlay."):
                continue
            value = _getxattr(full, attr)
            if value is not None:
                out["SCHILY.xattr." + attr] = value.decode("utf-8", "surrogateescape")
        return out


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _getxattr(path: str, attr: str) -> bytes | None:
    try:
        return os.getxattr(path, attr, follow_symlinks=False)
    except OSError:
        return None
