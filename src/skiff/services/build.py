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
            unpack_context(body, folder)
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
        return PreparedBuild(folder, text)

    def build(self, prepared: PreparedBuild, options: BuildOptions, emit: Emit) -> str:
        try:
            return self.builder.build(prepared.dockerfile, prepared.context_dir, options, emit)
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


def unpack_context(body: BinaryIO, dest: str) -> None:
    """The client's tar (plain, gzip, bzip2 or xz) into `dest`, never outside it.

    tarfile's `tar` filter refuses absolute names and anything that would land outside
    `dest` (through `..` or a symlink extracted earlier); unlike it, modes are kept
    whole, as Docker keeps them. No digests and no fsync: the context is scratch."""
    import tarfile

    def keep_inside(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        try:
            checked = tarfile.tar_filter(member, path)
        except tarfile.FilterError as e:
            raise ForbiddenPath(member.name) from e
        if member.isdev() or member.isfifo():
            return None  # type: ignore[return-value]  # skipped, as the builder never copies them
        return checked.replace(mode=member.mode, deep=False)

    buffered = body if isinstance(body, io.BufferedReader) else io.BufferedReader(cast(Any, body))
    if not buffered.peek(1):
        return  # an empty body: an empty context
    try:
        with tarfile.open(fileobj=buffered, mode="r|*") as tar:
            tar.copybufsize = 1 << 20  # type: ignore[attr-defined]
            tar.extractall(dest, numeric_owner=True, filter=keep_inside)
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, ForbiddenPath):
            raise
        raise InvalidArgument(f"failed to read the build context: {e}") from None
