"""`skiff cp [-a] [-L] [-q] SRC DEST`: copy files between a container and the host, as
docker cp: one side is `CONTAINER:PATH`, the other a local path or `-` (a tar on stdin
or stdout).

    skiff cp web:/etc/passwd ./passwd       a file out (renamed when ./passwd is new)
    skiff cp ./conf web:/etc/app/           into an existing folder, keeping the name
    skiff cp web:/var/log/. ./logs          a folder's contents (`/.`)
    tar c x | skiff cp - web:/tmp           a tar from stdin, extracted in /tmp

Copies to the host belong to the caller; copies into the container belong to root
unless -a keeps the host's owners (copyUIDGID)."""

from __future__ import annotations

import os
import sys
import tarfile
from typing import Any

from skiff.cli.args import parser
from skiff.cli.context import CliContext

GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27


class CpError(Exception):
    pass


def split_arg(arg: str) -> tuple[str, str]:
    """("container", "path") for `c:/path`; ("", path) for a local path or `-`
    (docker's rule: an absolute or ./ path is local even with a colon in it)."""
    if arg == "-" or os.path.isabs(arg) or arg.startswith("."):
        return "", arg
    container, sep, path = arg.partition(":")
    if not sep:
        return "", arg
    return container, path


def run(ctx: CliContext, argv: list[str], prog: str = "cp") -> int:
    p = parser(prog, "Copy files/folders between a container and the local filesystem")
    p.add_argument("src", metavar="SRC_PATH")
    p.add_argument("dest", metavar="DEST_PATH")
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("-L", "--follow-link", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    ns = p.parse_args(argv)
    src_container, src_path = split_arg(ns.src)
    dest_container, dest_path = split_arg(ns.dest)
    if src_container and dest_container:
        print("copying between containers is not supported", file=sys.stderr)
        return 1
    if not src_container and not dest_container:
        print("must specify at least one container source", file=sys.stderr)
        return 1
    from skiff.client.extras import Extras

    extras = Extras(ctx.client())
    try:
        if src_container:
            if not src_path:
                raise CpError("filesystem path cannot be empty")
            size = copy_from(extras, src_container, src_path, dest_path, ns.follow_link)
            where = dest_path
        else:
            if not dest_path:
                raise CpError("filesystem path cannot be empty")
            size = copy_to(extras, src_path, dest_container, dest_path, ns)
            where = f"{dest_container}:{dest_path}"
    except CpError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if not ns.quiet and where != "-" and ns.src != "-" and sys.stderr.isatty():
        from skiff.cli.output import human_size

        print(f"Successfully copied {human_size(size)} to {where}", file=sys.stderr)
    return 0


# -- from the container ------------------------------------------------------------------


class _IterReader:
    """A read()-able file over the response's chunks, counting the bytes."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = iter(chunks)
        self._buf = b""
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buf += chunk
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        self.total += len(data)
        return data


def copy_from(extras: Any, container: str, path: str, dest: str, follow: bool) -> int:
    if follow:
        info = extras.stat_path(container, path)
        if info.get("mode", 0) & GO_SYMLINK and info.get("linkTarget"):
            path = info["linkTarget"]
    chunks = extras.get_archive(container, path)
    if dest == "-":
        total = 0
        out = sys.stdout.buffer
        for chunk in chunks:
            out.write(chunk)
            total += len(chunk)
        out.flush()
        return total
    contents = path.endswith("/.")
    rename = ""
    target_dir = dest
    if os.path.isdir(dest):
        pass  # into it, keeping the name (or the contents, for `/.`)
    else:
        parent = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(parent):
            raise CpError(f"no such directory: {parent}")
        if dest.endswith("/") and not os.path.exists(dest):
            info = extras.stat_path(container, path)
            if not info.get("mode", 0) & GO_DIR:
                raise CpError(f"destination directory {dest!r} must exist")
        target_dir = parent
        rename = os.path.basename(os.path.abspath(dest))
        if contents:
            os.makedirs(dest, exist_ok=True)
            target_dir, rename = dest, ""
        elif os.path.exists(dest) and extras.stat_path(container, path).get("mode", 0) & GO_DIR:
            raise CpError(f"cannot copy a directory to a file: {dest}")
    reader = _IterReader(chunks)
    _extract(reader, target_dir, rename)
    return reader.total


def _extract(stream: Any, target: str, rename: str) -> None:
    uid, gid = os.getuid(), os.getgid()

    def owned(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        checked = tarfile.tar_filter(member, dest)  # refuses absolute or escaping names
        return checked.replace(mode=member.mode, uid=uid, gid=gid, uname="", gname="")

    with tarfile.open(fileobj=stream, mode="r|*") as tf:
        top = ""
        for member in tf:
            name = member.name
            while name.startswith("./"):
                name = name[2:]
            if name in ("", "."):
                if not rename:
                    continue
                name = rename
            elif rename:
                first, sep, rest = name.partition("/")
                top = top or first
                if first == top:
                    name = rename + sep + rest
            member.name = name
            if member.islnk() and rename and top:
                first, sep, rest = member.linkname.partition("/")
                if first == top:
                    member.linkname = rename + sep + rest
            tf.extract(member, target, filter=owned)


# -- into the container ------------------------------------------------------------------


def copy_to(extras: Any, src: str, container: str, dest: str, ns: Any) -> int:
    from skiff.client import ApiError

    if src == "-":
        reader = _CountingReader(sys.stdin.buffer)
        extras.put_archive(container, dest, reader, True, ns.archive)
        return reader.total
    if ns.follow_link:
        src = os.path.realpath(src) if not src.endswith("/.") else src
    if not os.path.lexists(src):
        raise CpError(f"lstat {os.path.abspath(src)}: no such file or directory")
    src_is_dir = os.path.isdir(src) and not os.path.islink(src)
    contents = src.endswith("/.")
    try:
        info = extras.stat_path(container, dest)
    except ApiError as exc:
        if exc.status != 404:
            raise
        info = None
    if info is not None and info.get("mode", 0) & GO_SYMLINK and info.get("linkTarget"):
        dest = info["linkTarget"]
        try:
            info = extras.stat_path(container, dest)
        except ApiError as exc:
            if exc.status != 404:
                raise
            info = None
    if info is not None and info.get("mode", 0) & GO_DIR:
        target_dir, name = dest, ("." if contents else os.path.basename(os.path.abspath(src)))
    elif info is not None:
        if src_is_dir:
            raise CpError(f'cannot overwrite non-directory "{dest}" with directory "{src}"')
        target_dir, name = os.path.dirname(dest) or "/", os.path.basename(dest)
    else:
        if dest.endswith("/") and not src_is_dir:
            raise CpError(f'destination "{container}:{dest}" must be a directory')
        stripped = dest.rstrip("/")
        target_dir, name = os.path.dirname(stripped) or "/", os.path.basename(stripped)
    import tempfile

    total = 0
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tf:

            def owner(info: tarfile.TarInfo) -> tarfile.TarInfo:
                nonlocal total
                total += info.size
                if not ns.archive:
                    info.uid = info.gid = 0
                    info.uname = info.gname = "root"
                return info

            tf.add(src, arcname=name, recursive=True, filter=owner)
        spool.seek(0)
        extras.put_archive(container, target_dir, spool, True, ns.archive)
    return total


class _CountingReader:
    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(n)
        self.total += len(data)
        return data
