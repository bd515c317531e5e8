"""Image tests on the real store: LocalStore, OverlaySnapshotter, SQLite, overlay mounts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from skiff.images.service import ImageService

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ImageService]:
    svc = ImageService.open(tmp_path / "root")
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A docker-archive of the bootstrapped busybox image, made once per module."""
    root = tmp_path_factory.mktemp("bb")
    svc = ImageService.open(root / "root")
    try:
        svc.bootstrap_busybox()
        path = root / "busybox.tar"
        with open(path, "wb") as f:
            svc.save(["busybox"], f)
    finally:
        svc.close()
    return path
