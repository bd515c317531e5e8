"""BuildService: a build context stream + options -> an image, and the build cache's prune.

    tar (plain/gzip/bzip2/xz) ─unpack safely─▶ <data root>/tmp/build-*/  (removed after)
      Dockerfile read from it (query `dockerfile`), .dockerignore'd build files dropped
      ─▶ Builder over an Executor ─▶ image id, JSON messages to `emit`

Synchronous: the API runs it in a worker thread. The Dockerfile is parsed before the
first message goes out (`prepare`), so a syntax error is an HTTP 400 as from dockerd.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, cast

from skiff.build.builder import BuildCache, Builder, BuildOptions, Emit
from skiff.build.dockerfile import parse
from skiff.build.dockerignore import ForbiddenPath, clean, remove_ignored_build_files
from skiff.build.executor import Executor
from skiff.errors import InvalidArgument


class ImagePruner(Protocol):
    """Removes an untagged image nobody uses; returns bytes freed (0 if it stayed)."""

    def __call__(self, image_id: str) -> int: ...


@dataclass
class PreparedBuild:
    context_dir: str
    dockerfile: str
    digests: dict[str, tuple[int, int, str]]  # of the context's files, made while unpacking

    def close(self) -> None:
        shutil.rmtree(self.context_dir, ignore_errors=True)


class BuildService:
    def __init__(
        self,
        executor: Executor,
        cache: BuildCache,
        tmp_root: str,
        prune_image: ImagePruner | None = None,
    ) -> None:
        self.builder = Builder(executor, cache)
        self.cache = cache
        self.tmp_root = tmp_root
        self._prune_image = prune_image

    def prepare(self, body: BinaryIO, dockerfile: str = "Dockerfile") -> PreparedBuild:
        """Unpack the context and read (and parse) its Dockerfile."""
        os.makedirs(self.tmp_root, mode=0o700, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="build-", dir=self.tmp_root)
        try:
            digests = unpack_context(body, folder)
            name = dockerfile or "Dockerfile"
            rel = clean(name)
            if rel.startswith("../") or rel == "..":
                raise ForbiddenPath(name)
            path = os.path.join(folder, rel.lstrip("/"))
            if not os.path.isfile(path):
                # dockerd also accepts the lower-case name for the default
                alt = os.path.join(folder, "dockerfile")
                if name == "Dockerfile" and os.path.isfile(alt):
                    path = alt
                else:
                    raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            if not text:
                raise InvalidArgument(f"the Dockerfile ({name}) cannot be empty")
            parse(text)
            remove_ignored_build_files(folder, rel)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return PreparedBuild(folder, text, digests)

    def build(self, prepared: PreparedBuild, options: BuildOptions, emit: Emit) -> str:
        try:
            return self.builder.build(
                prepared.dockerfile, prepared.context_dir, options, emit, prepared.digests
            )
        finally:
            prepared.close()

    def prune(self) -> tuple[list[str], int]:
        ids = self.cache.prune()
        deleted: list[str] = []
        reclaimed = 0
        if self._prune_image is not None:
            for image_id in reversed(ids):  # children before parents
                freed = self._prune_image(image_id)
                if freed >= 0:
                    deleted.append(image_id)
                    reclaimed += freed
        else:
            deleted = ids
        return deleted, reclaimed


def unpack_context(body: BinaryIO, dest: str) -> dict[str, tuple[int, int, str]]:
    """The client's tar (plain, gzip, bzip2 or xz) into `dest`, never outside it; returns
    {path: (size, mtime_ns, sha256)} of the regular files, hashed as they were written
    (so a cached COPY does not read its sources again).

    tarfile's `tar` filter refuses absolute names and anything that would land outside
    `dest` (through `..` or a symlink extracted earlier); unlike it, modes are kept
    whole, as Docker keeps them. No fsync: the context is scratch."""
    import tarfile

    def keep_inside(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        try:
            checked = tarfile.tar_filter(member, path)
        except tarfile.FilterError as e:
            raise ForbiddenPath(member.name) from e
        if member.isdev() or member.isfifo():
            return None  # skipped: the builder never copies them
        if member.islnk():  # a hard link must name a file inside the context
            target = os.path.realpath(os.path.join(path, member.linkname))
            if os.path.commonpath([target, os.path.realpath(path)]) != os.path.realpath(path):
                raise ForbiddenPath(member.linkname)
        return checked.replace(mode=member.mode, deep=False)

    digests: dict[str, tuple[int, int, str]] = {}
    buffered = body if isinstance(body, io.BufferedReader) else io.BufferedReader(cast(Any, body))
    if not buffered.peek(1):
        return digests  # an empty body: an empty context
    try:
        with tarfile.open(fileobj=buffered, mode="r|*", bufsize=1 << 20) as tar:
            for member in tar:
                checked = keep_inside(member, dest)
                if checked is None:
                    continue
                if checked.isreg():
                    digests.update(_write_file(tar, checked, dest))
                else:
                    tar.extract(checked, dest, numeric_owner=True, filter="fully_trusted")
                tar.members.clear()  # type: ignore[attr-defined]  # no index of past members
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InvalidArgument(f"failed to read the build context: {e}") from None
    return digests


def _write_file(tar: Any, member: Any, dest: str) -> dict[str, tuple[int, int, str]]:
    """One regular file, hashed while written (the filter already checked its path)."""
    import hashlib

    path = os.path.join(dest, member.name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):  # replaced, never written through (it may be a hard link)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    source = tar.extractfile(member)
    h = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(1 << 20):
            h.update(chunk)
            out.write(chunk)
    os.chown(path, member.uid, member.gid)
    os.chmod(path, member.mode & 0o7777)
    mtime_ns = int(member.mtime * 1_000_000_000)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return {path: (member.size, os.lstat(path).st_mtime_ns, h.hexdigest())}
