"""What the builder needs from the engine, as one small protocol.

    resolve_image   a reference -> image id (pulling it if asked or missing)
    image_config    image id -> its config JSON (Docker's image config, as stored)
    create          a working container on an image (or scratch): id + rootfs path;
                    with a RunSpec it is a real container that will run that command,
                    without one a writable root for files (COPY, ADD, WORKDIR)
    run             the container's command, output streamed, exit code back
    commit          config (+ the container's changes as a layer) -> new image id
    remove          the container and its mounts, always (success or not)
    tag             a reference -> image id

The builder writes into `Container.rootfs` itself for COPY/ADD/WORKDIR (it is a
mounted, writable root while the container exists). The fake in
skiff.testing.build implements this over plain folders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Container:
    id: str
    rootfs: str


@dataclass(frozen=True)
class RunSpec:
    argv: Sequence[str]
    env: Sequence[str]  # KEY=value, the image's plus the build args in effect
    user: str
    workdir: str


class Executor(Protocol):
    def resolve_image(self, ref: str, *, pull: bool, platform: str) -> str: ...

    def image_config(self, image_id: str) -> dict[str, Any]: ...

    def image_exists(self, image_id: str) -> bool: ...

    def create(self, image_id: str, spec: RunSpec | None = None) -> Container: ...  # "": scratch

    def run(self, container: Container, output: Callable[[bytes], None]) -> int: ...

    def commit(
        self, container: Container | None, parent: str, config: Mapping[str, Any]
    ) -> str: ...

    def remove(self, container: Container) -> None: ...

    def tag(self, image_id: str, ref: str) -> None: ...
