"""Apply an OCI layer tar to a folder, never writing outside it.

The folder is normally the upper (fs) folder of an active overlay snapshot, so
whiteouts become what overlayfs understands (`whiteouts="overlay"`):

    .wh.NAME        -> NAME as a 0/0 character device
    .wh..wh..opq    -> trusted.overlay.opaque=y on the folder holding it

With `whiteouts="delete"` they delete from the folder instead (a plain rootfs).

Safety: we read headers with tarfile but extract with our own loop. Every
path is split into components; `..` and absolute paths are refused. Each
parent folder is opened component by component with O_NOFOLLOW from a file
descriptor of the destination; a symlink met on the way (planted earlier in
the same tar) is resolved as if the destination were `/` (chroot semantics,
as Docker does), so `a -> /etc` then `a/passwd` writes dest/etc/passwd. The
last component is never followed: an existing entry is removed and the new
one created with O_EXCL. Hardlink targets resolve the same way and must
already exist in the destination. `trusted.overlay.*` xattrs from the tar are
dropped, since they would steer overlayfs.

A truncated or corrupt stream raises CorruptLayer. The caller applies into a
folder that becomes visible only on success (see `archive.unpack`).
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from skiff.archive.compression import NONE, DecompressingReader, HashingReader, detect
from skiff.archive.errors import CorruptLayer, LayerError, UnsafeLayer

if TYPE_CHECKING:
    from skiff.oci.digest import Digest

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_MAX_SYMLINK_HOPS = 40
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class AppliedLayer:
    size: int  # bytes of regular file content written (Docker's layer size)
    diff_id: Digest  # digest of the uncompressed tar
    tar_size: int
    digest: Digest  # digest of the stream as read (compressed)
    compressed_size: int
    compression: str  # "gzip", "zstd" or "" (none)


# Private in tarfile (no stubs); they tell a zero block from a cut-off header.
_EOFHeaderError: type[Exception] = tarfile.EOFHeaderError  # type: ignore[attr-defined]
_EmptyHeaderError: type[Exception] = tarfile.EmptyHeaderError  # type: ignore[attr-defined]
_TruncatedHeaderError: type[Exception] = tarfile.TruncatedHeaderError  # type: ignore[attr-defined]


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile treats a truncated or corrupt header after the first member as
    the end of the archive; for a layer that would silently drop files."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> _StrictTarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except _EOFHeaderError:
            raise  # a zero block: the real end of the archive
        except (_EmptyHeaderError, _TruncatedHeaderError):
            raise CorruptLayer("layer tar is truncated (no end-of-archive marker)") from None
        except tarfile.HeaderError as e:
            raise CorruptLayer(f"layer tar has a corrupt header: {e}") from None


def apply_layer(
    stream: BinaryIO | io.RawIOBase,
    dest: str | os.PathLike[str],
    *,
    whiteouts: str = "overlay",
    devices: bool | None = None,
) -> AppliedLayer:
    """Apply a layer (gzip, zstd or plain tar, detected) to the folder `dest`.

    `devices`: create block and character devices (default: when root).
    Raises CorruptLayer, UnsafeLayer or LayerError; `dest` is then partly
    written and should be thrown away.
    """
    if whiteouts not in ("overlay", "delete"):
        raise ValueError(f"whiteouts must be 'overlay' or 'delete', not {whiteouts!r}")
    raw = HashingReader(stream)
    buffered = io.BufferedReader(raw, _CHUNK)
    compression = detect(buffered.peek(8)[:8])
    tar_stream = HashingReader(
        buffered if compression == NONE else DecompressingReader(buffered, compression)
    )
    root_fd = os.open(dest, _DIR_FLAGS)
    try:
        applier = _Applier(root_fd, whiteouts, os.geteuid() == 0 if devices is None else devices)
        try:
            with tarfile.open(
                fileobj=tar_stream,
                mode="r|",
                tarinfo=_StrictTarInfo,
                encoding="utf-8",
                errors="surrogateescape",
            ) as tf:
                while (member := tf.next()) is not None:
                    applier.apply(member, tf)
                    tf.members.clear()  # type: ignore[attr-defined]  # no index of past members
        except tarfile.ReadError as e:
            raise CorruptLayer(f"layer tar is corrupt or truncated: {e}") from None
        applier.finish()
        tar_stream.drain()  # the diffID covers the end-of-archive blocks too
        while buffered.read(_CHUNK):  # and the digest the whole blob
            pass
    finally:
        os.close(root_fd)
    return AppliedLayer(
        size=applier.size,
        diff_id=tar_stream.digest(),
        tar_size=tar_stream.size,
        digest=raw.digest(),
        compressed_size=raw.size,
        compression=compression,
    )


def split_member_path(name: str) -> list[str]:
    """Components of a member name; refuses absolute paths, `..` and NUL."""
    if "\0" in name:
        raise UnsafeLayer(f"NUL byte in layer path {name!r}")
    if name.startswith("/"):
        raise UnsafeLayer(f"absolute path in layer: {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"path escapes the layer root: {name!r}")
    return parts


def _normalize(parts: list[str]) -> list[str]:
    """Lexically clean a path, clamping `..` at the root (chroot semantics)."""
    out: list[str] = []
    for p in parts:
        if p in ("", "."):
            continue
        if p == "..":
            if out:
                out.pop()
            continue
        out.append(p)
    return out


class _Applier:
    def __init__(self, root_fd: int, whiteouts: str, devices: bool) -> None:
        self.root_fd = root_fd
        self.overlay = whiteouts == "overlay"
        self.devices = devices
        self.as_root = os.geteuid() == 0
        self.size = 0
        self.created: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int]] = []

    # Path resolution

    def open_dir(self, parts: list[str], *, create: bool) -> tuple[int, tuple[str, ...]]:
        """Open dest/parts as a folder, resolving symlinks inside dest only.

        Returns a new fd (the caller closes it) and the resolved components."""
        pending = list(parts)
        resolved: list[str] = []
        fd = os.dup(self.root_fd)
        hops = 0
        try:
            while pending:
                comp = pending.pop(0)
                try:
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(comp, 0o755, dir_fd=fd)  # implicit parent, as Docker makes it
                    self.created.add((*resolved, comp))
                    nfd = os.open(comp, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    st = os.stat(comp, dir_fd=fd, follow_symlinks=False)
                    if not stat.S_ISLNK(st.st_mode):
                        raise LayerError(
                            f"{'/'.join((*resolved, comp))} is not a folder but the layer "
                            "puts files under it"
                        ) from None
                    hops += 1
                    if hops > _MAX_SYMLINK_HOPS:
                        raise UnsafeLayer("too many levels of symbolic links in layer") from None
                    target = os.readlink(comp, dir_fd=fd)
                    base = [] if target.startswith("/") else resolved
                    pending = _normalize([*base, *target.split("/"), *pending])
                    resolved = []
                    os.close(fd)
                    fd = os.dup(self.root_fd)
                    continue
                os.close(fd)
                fd = nfd
                resolved.append(comp)
        except BaseException:
            os.close(fd)
            raise
        return fd, tuple(resolved)

    # Entries

    def apply(self, member: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        parts = split_member_path(member.name)
        if not parts:
            if not member.isdir():
                raise LayerError("the layer root entry is not a folder")
            self._set_attrs(self.root_fd, None, member, is_dir=True)
            self.dir_times.append(((), int(member.mtime)))
            return
        parent_fd, parent = self.open_dir(parts[:-1], create=True)
        try:
            name = parts[-1]
            if name.startswith(WHITEOUT_PREFIX):
                self._whiteout(parent_fd, parent, name)
            else:
                self._create(parent_fd, parent, name, member, tf)
        finally:
            os.close(parent_fd)

    def _whiteout(self, parent_fd: int, parent: tuple[str, ...], name: str) -> None:
        if name == OPAQUE_WHITEOUT:
            if self.overlay:
                os.setxattr(parent_fd, OVERLAY_OPAQUE_XATTR, b"y")
            else:
                for child in os.listdir(parent_fd):
                    if (*parent, child) not in self.created:
                        _remove(parent_fd, child)
            return
        if name.startswith(WHITEOUT_META_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk and the like): not content
        target = name[len(WHITEOUT_PREFIX) :]
        if not target or target in (".", ".."):
            raise LayerError(f"invalid whiteout entry {name!r}")
        st = _lstat(parent_fd, target)
        if st is not None and (*parent, target) in self.created:
            # Same-layer content survives its own whiteout; only lower layers are hidden.
            if self.overlay and stat.S_ISDIR(st.st_mode):
                fd = os.open(target, _DIR_FLAGS, dir_fd=parent_fd)
                try:
                    os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
                finally:
                    os.close(fd)
            return
        if st is not None:
            _remove(parent_fd, target)
        if self.overlay:
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent_fd)

    def _create(
        self,
        parent_fd: int,
        parent: tuple[str, ...],
        name: str,
        member: tarfile.TarInfo,
        tf: tarfile.TarFile,
    ) -> None:
        path = (*parent, name)
        existing = _lstat(parent_fd, name)
        if member.isdir():
            if existing is not None and stat.S_ISDIR(existing.st_mode):
                self._dir_attrs(parent_fd, name, member)
            else:
                opaque = existing is not None and self.overlay and _is_whiteout(existing)
                if existing is not None:
                    _remove(parent_fd, name)
                os.mkdir(name, 0o700, dir_fd=parent_fd)
                self._dir_attrs(parent_fd, name, member, opaque=opaque)
            self.created.add(path)
            self.dir_times.append((path, int(member.mtime)))
            return
        if member.islnk():
            self._hardlink(parent_fd, name, existing, member)
            self.created.add(path)
            return
        if existing is not None:
            _remove(parent_fd, name)
        if member.isreg():
            self._regular(parent_fd, name, member, tf)
        elif member.issym():
            os.symlink(member.linkname, name, dir_fd=parent_fd)
            if self.as_root:
                os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
            _utime(parent_fd, name, member.mtime, follow=False)
        elif member.ischr() or member.isblk():
            if not self.devices:
                return
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            try:
                os.mknod(
                    name,
                    kind | (member.mode & 0o7777),
                    os.makedev(member.devmajor, member.devminor),
                    dir_fd=parent_fd,
                )
            except PermissionError:
                return  # no CAP_MKNOD (user namespace): skip, as Docker does
            self._other_attrs(parent_fd, name, member)
        elif member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=parent_fd)
            self._other_attrs(parent_fd, name, member)
        else:
            raise LayerError(f"unsupported tar entry type {member.type!r} for {member.name!r}")
        self.created.add(path)

    def _regular(
        self, parent_fd: int, name: str, member: tarfile.TarInfo, tf: tarfile.TarFile
    ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=parent_fd)
        try:
            src = tf.extractfile(member)
            if src is not None:
                while chunk := src.read(_CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view) :]
            self.size += member.size
            self._set_attrs(fd, None, member, is_dir=False)
            _futime(fd, member.mtime)
        finally:
            os.close(fd)

    def _hardlink(
        self,
        parent_fd: int,
        name: str,
        existing: os.stat_result | None,
        member: tarfile.TarInfo,
    ) -> None:
        tparts = split_member_path(member.linkname)
        if not tparts:
            raise LayerError(f"hardlink {member.name!r} points at the layer root")
        try:
            tfd, _ = self.open_dir(tparts[:-1], create=False)
        except (FileNotFoundError, LayerError):
            raise LayerError(
                f"hardlink {member.name!r} -> {member.linkname!r}: target not in layer"
            ) from None
        try:
            target = _lstat(tfd, tparts[-1])
            if target is None or stat.S_ISDIR(target.st_mode) or _is_whiteout(target):
                raise LayerError(
                    f"hardlink {member.name!r} -> {member.linkname!r}: target not in layer"
                )
            if existing is not None:
                if (existing.st_dev, existing.st_ino) == (target.st_dev, target.st_ino):
                    return  # a duplicate entry: already linked
                _remove(parent_fd, name)
            os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=parent_fd, follow_symlinks=False)
        finally:
            os.close(tfd)

    # Attributes: chown before chmod (chown clears set-id bits), xattrs after
    # chown (it clears security.capability), times last.

    def _dir_attrs(
        self, parent_fd: int, name: str, member: tarfile.TarInfo, *, opaque: bool = False
    ) -> None:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        try:
            self._set_attrs(fd, None, member, is_dir=True)
            if opaque:
                os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def _other_attrs(self, parent_fd: int, name: str, member: tarfile.TarInfo) -> None:
        if self.as_root:
            os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
        os.chmod(name, member.mode & 0o7777, dir_fd=parent_fd)  # we just made it: no symlink
        _utime(parent_fd, name, member.mtime, follow=False)

    def _set_attrs(self, fd: int, _: None, member: tarfile.TarInfo, *, is_dir: bool) -> None:
        if self.as_root:
            os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            attr = key[len("SCHILY.xattr.") :]
            if attr.startswith("trusted.overlay."):
                continue  # would steer overlayfs (redirects, opaque): never from a tar
            try:
                os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise

    def finish(self) -> None:
        """Set folder times last: creating their children changed them."""
        for path, mtime in reversed(self.dir_times):
            try:
                fd, _ = self.open_dir(list(path), create=False)
            except (FileNotFoundError, LayerError):
                continue  # replaced later in the layer
            try:
                os.utime(fd, ns=(mtime * 10**9, mtime * 10**9))
            finally:
                os.close(fd)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _remove(dir_fd: int, name: str) -> None:
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based, does not follow symlinks
    else:
        os.unlink(name, dir_fd=dir_fd)


def _futime(fd: int, mtime: float) -> None:
    ns = int(mtime) * 10**9
    os.utime(fd, ns=(ns, ns))


def _utime(dir_fd: int, name: str, mtime: float, *, follow: bool) -> None:
    ns = int(mtime) * 10**9
    os.utime(name, ns=(ns, ns), dir_fd=dir_fd, follow_symlinks=follow)
