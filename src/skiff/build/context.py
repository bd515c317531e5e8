"""The build context as an index of the client's tar, unpacked only where a COPY needs it.

    tar stream (plain/gzip/bzip2/xz) ─read once─▶ ContextIndex
        entries: path -> type, mode, owner, mtime, link target, size
        regular files: sha256 (computed while receiving) + their bytes, kept in
        memory (or, past MEMORY_LIMIT, in an unlinked spool file)
    a cached COPY: sources resolved and hashed over the index (build/sources.py), no I/O
    a COPY that runs: `materialize(sources)` writes just what it reads into a scratch
        folder, which the copier reads (created lazily, removed by `close`)

Safety: entry names are made relative (a leading `/` dropped, as tarfile's `tar`
filter does); a name with a `..` part is refused; a name whose parent goes through a
symlink is resolved through the index and refused if that leaves the context (as the
`tar` filter's realpath check); a hard link must name an entry inside the context.
Devices and fifos are skipped (the builder never copies them). Nothing is written while
the tar is read, and `materialize` creates each path with O_EXCL/O_NOFOLLOW under a
fresh folder whose parents are all real folders, so a hostile tar writes nothing
outside scratch. The scratch folder's root is 0700 (as a mkdtemp) unless the tar
carries a `.` entry; parents the tar does not list are 0755.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import IO, Any, BinaryIO

from skiff.build.sources import ForbiddenPath, Source, TreeStat, join, needed_paths, resolve
from skiff.build.tarstream import Body, Chunk, Member, TarReader, open_body
from skiff.errors import InvalidArgument

MEMORY_LIMIT = 128 << 20  # bytes of file content kept in memory; the rest is spooled
_CHUNK = 1 << 20


@dataclass
class _Entry:
    mode: int  # st_mode
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    size: int = 0
    digest: str = ""
    data: list[Chunk] | tuple[int, int] = field(default_factory=list)  # memory or spool


class _Spool:
    """File content: in memory up to a limit, then appended to an unlinked file."""

    def __init__(self, folder: str, limit: int) -> None:
        self._folder = folder
        self._limit = limit
        self._in_memory = 0
        self._file: IO[bytes] | None = None

    def keep(self, chunks: list[Chunk], size: int) -> list[Chunk] | tuple[int, int]:
        if self._in_memory + size <= self._limit:
            self._in_memory += size
            return chunks
        if self._file is None:
            os.makedirs(self._folder, mode=0o700, exist_ok=True)
            self._file = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115 (closed by close())
        offset = self._file.seek(0, os.SEEK_END)
        for chunk in chunks:
            self._file.write(chunk)
        return (offset, size)

    def read(self, data: list[Chunk] | tuple[int, int]) -> Iterator[Chunk]:
        if isinstance(data, list):
            yield from data
            return
        assert self._file is not None
        offset, size = data
        self._file.flush()
        while size > 0:
            chunk = os.pread(self._file.fileno(), min(size, _CHUNK), offset)
            if not chunk:
                raise OSError("the build context spool is short")
            offset += len(chunk)
            size -= len(chunk)
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ContextIndex:
    """A SourceTree over the context's tar (see the module docstring)."""

    def __init__(self, scratch_root: str, memory_limit: int = MEMORY_LIMIT) -> None:
        self._scratch_root = scratch_root
        self._spool = _Spool(scratch_root, memory_limit)
        self._entries: dict[str, _Entry] = {"": _Entry(stat.S_IFDIR | 0o700)}
        self._children: dict[str, set[str]] = {"": set()}
        self._folder: str | None = None
        self._written: set[str] = set()
        self._received_ns = time.time_ns()

    # -- SourceTree --------------------------------------------------------------------

    def lstat(self, rel: str) -> TreeStat | None:
        entry = self._entries.get(rel)
        if entry is None:
            return None
        return TreeStat(entry.mode, entry.size, entry.linkname)

    def listdir(self, rel: str) -> list[str]:
        return list(self._children.get(rel, ()))

    def digest(self, rel: str) -> str:
        return self._entries[rel].digest

    # -- reading -----------------------------------------------------------------------

    def read_bytes(self, rel: str) -> bytes:
        entry = self._entries[rel]
        return b"".join(self._spool.read(entry.data))

    def remove(self, rel: str) -> None:
        """Drop an entry (and what is under it)."""
        if not rel or rel not in self._entries:
            return
        parent, _, name = rel.rpartition("/")
        self._children[parent].discard(name)
        stack = [rel]
        while stack:
            path = stack.pop()
            self._entries.pop(path, None)
            stack.extend(join(path, child) for child in self._children.pop(path, ()))

    def add_tar(self, body: Body | BinaryIO) -> None:
        """Read the client's tar (plain, gzip, bzip2 or xz)."""
        try:
            for member in TarReader(open_body(body)):
                self._add_member(member)
        except (tarfile.TarError, EOFError, OSError, ValueError) as e:
            raise InvalidArgument(f"failed to read the build context: {e}") from None

    def _add_member(self, member: Member) -> None:
        name = member.name.lstrip("/")
        if "\0" in name or "\0" in member.linkname:
            raise InvalidArgument(f"failed to read the build context: a NUL in {name!r}")
        parts = [p for p in name.split("/") if p and p != "."]
        if ".." in parts:
            raise ForbiddenPath(member.name)
        if not parts:  # the context's root itself
            if member.isdir():
                mode = stat.S_IFDIR | (member.mode & 0o7777)
                self._entries[""] = replace(self._entries[""], mode=mode, **self._attrs(member))
            return
        parent = self._parent_folder(member.name, parts[:-1])
        rel = join(parent, parts[-1])
        if member.isreg():
            entry = self._read_file(member)
        elif member.isdir():
            entry = _Entry(stat.S_IFDIR | (member.mode & 0o7777), **self._attrs(member))
        elif member.issym():
            entry = _Entry(stat.S_IFLNK | 0o777, linkname=member.linkname, **self._attrs(member))
        elif member.islnk():
            entry = self._hard_link(member)
        else:
            return  # devices and fifos: never copied
        old = self._entries.get(rel)
        if old is not None and stat.S_ISDIR(old.mode) and stat.S_ISDIR(entry.mode):
            self._entries[rel] = entry  # a folder listed again: new attributes, same contents
            return
        self.remove(rel)
        self._entries[rel] = entry
        self._children[parent].add(parts[-1])
        if stat.S_ISDIR(entry.mode):
            self._children[rel] = set()

    @staticmethod
    def _attrs(member: Member) -> dict[str, Any]:
        return {"uid": member.uid, "gid": member.gid, "mtime_ns": int(member.mtime * 1e9)}

    def _parent_folder(self, name: str, parts: list[str]) -> str:
        """The folder a member goes in: followed through the context's symlinks (refused
        if that leaves it), created (0755) where the tar did not list it."""
        parent = resolve(self, "/".join(parts)) if parts else ""
        current = ""
        for part in parent.split("/") if parent else []:
            current = join(current, part)
            entry = self._entries.get(current)
            if entry is None:
                self._entries[current] = _Entry(stat.S_IFDIR | 0o755, mtime_ns=self._received_ns)
                self._children[current] = set()
                self._children[current.rpartition("/")[0]].add(part)
            elif not stat.S_ISDIR(entry.mode):
                raise InvalidArgument(
                    f"failed to read the build context: {name}: a parent is not a folder"
                )
        return parent

    def _read_file(self, member: Member) -> _Entry:
        h = hashlib.sha256()
        chunks: list[Chunk] = []
        size = 0
        for chunk in member.chunks():
            h.update(chunk)
            chunks.append(_own(chunk))
            size += len(chunk)
        return _Entry(
            stat.S_IFREG | (member.mode & 0o7777),
            size=size,
            digest=h.hexdigest(),
            data=self._spool.keep(chunks, size),
            **self._attrs(member),
        )

    def _hard_link(self, member: Member) -> _Entry:
        """A hard link becomes its own entry with the target's content (the copier copies
        files one by one anyway)."""
        if member.linkname.startswith("/"):
            raise ForbiddenPath(member.linkname)
        target = resolve(self, member.linkname, follow_last=False)
        entry = self._entries.get(target)
        if entry is None or stat.S_ISDIR(entry.mode):
            raise InvalidArgument(
                f"failed to read the build context: {member.name}: "
                f"hard link to a missing file {member.linkname}"
            )
        mode = stat.S_IFMT(entry.mode) | (member.mode & 0o7777)
        return replace(entry, mode=mode, **self._attrs(member))

    # -- on disk -----------------------------------------------------------------------

    def materialize(self, sources: list[Source]) -> str:
        """Write what copying `sources` reads into the scratch folder; return it."""
        return self.write_paths(needed_paths(self, sources))

    def write_paths(self, paths: Iterable[str]) -> str:
        """Write these entries (their parents first) into the scratch folder; return it."""
        if self._folder is None:
            os.makedirs(self._scratch_root, mode=0o700, exist_ok=True)
            self._folder = tempfile.mkdtemp(prefix="build-", dir=self._scratch_root)
        folder = self._folder
        todo = sorted(p for p in set(paths) if p not in self._written and p in self._entries)
        for rel in todo:  # sorted: a folder comes before what is in it
            self._write(folder, rel, self._entries[rel])
            self._written.add(rel)
        # folders last, deepest first: writing into a folder changes its mtime
        for rel in sorted((p for p in self._written if self._is_dir(p)), reverse=True):
            entry = self._entries[rel]
            path = os.path.join(folder, rel) if rel else folder
            os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
        return folder

    def _is_dir(self, rel: str) -> bool:
        entry = self._entries.get(rel)
        return entry is not None and stat.S_ISDIR(entry.mode)

    def _write(self, folder: str, rel: str, entry: _Entry) -> None:
        path = os.path.join(folder, rel) if rel else folder
        kind = stat.S_IFMT(entry.mode)
        if kind == stat.S_IFDIR:
            if rel:
                os.mkdir(path, 0o700)
        elif kind == stat.S_IFLNK:
            os.symlink(entry.linkname, path)
            os.chown(path, entry.uid, entry.gid, follow_symlinks=False)
            return
        else:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(path, flags, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in self._spool.read(entry.data):
                    out.write(chunk)
        os.chown(path, entry.uid, entry.gid, follow_symlinks=False)
        os.chmod(path, stat.S_IMODE(entry.mode))  # no link: made just now, O_NOFOLLOW
        os.utime(path, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)

    def close(self) -> None:
        import shutil

        self._spool.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
            self._written.clear()


def _own(chunk: Chunk) -> Chunk:
    """A view of a received buffer is kept as is (no copy) unless it is a small part of
    it: then the bytes are copied, so a context of many small files does not hold on to
    every buffer they came in (what is kept stays within twice the files' bytes)."""
    if isinstance(chunk, memoryview) and len(chunk) * 2 < memoryview(chunk.obj).nbytes:
        return bytes(chunk)
    return chunk


def read_context(body: Body | BinaryIO, scratch_root: str) -> ContextIndex:
    """The client's context tar as an index (an empty body is an empty context)."""
    index = ContextIndex(scratch_root)
    try:
        index.add_tar(body)
    except BaseException:
        index.close()
        raise
    return index
