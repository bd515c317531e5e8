"""BuildService: a build context stream + options -> an image, and the build cache's prune.

    tar (plain/gzip/bzip2/xz) ─read once─▶ ContextIndex (build/context.py): entries,
      content hashes, the bytes kept for a COPY that misses the cache; written to
      <data root>/tmp/build-*/ only where such a COPY needs them (removed after)
      Dockerfile read from it (query `dockerfile`), .dockerignore'd build files dropped
      ─▶ Builder over an Executor ─▶ image id, JSON messages to `emit`

Synchronous: the API runs it in a worker thread. The Dockerfile is parsed before the
first message goes out (`prepare`), so a syntax error is an HTTP 400 as from dockerd.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from skiff.build.builder import BuildCache, Builder, BuildOptions, Emit
from skiff.build.context import ContextIndex, read_context
from skiff.build.dockerfile import parse
from skiff.build.dockerignore import PatternMatcher, clean, read_dockerignore
from skiff.build.executor import Executor
from skiff.build.sources import ForbiddenPath, resolve
from skiff.build.tarstream import Body
from skiff.errors import InvalidArgument


class ImagePruner(Protocol):
    """Removes an untagged image nobody uses; returns bytes freed (0 if it stayed)."""

    def __call__(self, image_id: str) -> int: ...


@dataclass
class PreparedBuild:
    context: ContextIndex
    dockerfile: str

    def close(self) -> None:
        self.context.close()


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

    def prepare(self, body: Body | BinaryIO, dockerfile: str = "Dockerfile") -> PreparedBuild:
        """Read the context and its Dockerfile (and parse it)."""
        context = read_context(body, self.tmp_root)
        try:
            name = dockerfile or "Dockerfile"
            rel = clean(name)
            if rel.startswith("../") or rel == "..":
                raise ForbiddenPath(name)
            rel = resolve(context, rel)  # a link to a Dockerfile, inside the context
            if not _is_file(context, rel):
                # dockerd also accepts the lower-case name for the default
                if name == "Dockerfile" and _is_file(context, "dockerfile"):
                    rel = "dockerfile"
                else:
                    raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")
            text = context.read_bytes(rel).decode("utf-8", errors="replace")
            if not text:
                raise InvalidArgument(f"the Dockerfile ({name}) cannot be empty")
            parse(text)
            remove_ignored_build_files(context, rel)
        except BaseException:
            context.close()
            raise
        return PreparedBuild(context, text)

    def build(self, prepared: PreparedBuild, options: BuildOptions, emit: Emit) -> str:
        try:
            return self.builder.build(prepared.dockerfile, prepared.context, options, emit)
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


def _is_file(context: ContextIndex, rel: str) -> bool:
    st = context.lstat(rel)
    return st is not None and stat.S_ISREG(st.mode)


def remove_ignored_build_files(context: ContextIndex, dockerfile: str) -> None:
    """Drop the Dockerfile and .dockerignore when .dockerignore names them (the client
    had to send them)."""
    if not _is_file(context, ".dockerignore"):
        return
    text = context.read_bytes(".dockerignore").decode("utf-8", errors="replace")
    matcher = PatternMatcher(read_dockerignore(text))
    for name in (".dockerignore", dockerfile):
        rel = clean(name)
        if rel.startswith(("..", "/")):
            continue
        st = context.lstat(rel)
        if st is not None and not stat.S_ISDIR(st.mode) and matcher.matches(rel):
            context.remove(rel)
