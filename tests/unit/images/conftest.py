"""An ImageService over the in-memory content store and snapshotter (real folders for
the snapshots, so layers really apply), and builders of layer tars and archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import TYPE_CHECKING

import pytest

from skiff.images.service import ImageService
from skiff.metadata.db import MetadataStore
from skiff.testing.content import MemoryStore
from skiff.testing.snapshots import MemorySnapshotter

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def make_service(root: Path) -> ImageService:
    return ImageService(
        MemoryStore(), MemorySnapshotter(root / "snapshots"), MetadataStore(root / "metadata.db")
    )


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ImageService]:
    s = make_service(tmp_path)
    yield s
    s.close()


def layer(files: dict[str, bytes | None], *, mtime: int = 1_700_000_000) -> bytes:
    """A layer tar: name -> content (None: a folder)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def legacy_archive(
    layers: list[bytes],
    tags: list[str],
    *,
    symlink_dup: bool = False,
    config_extra: dict[str, object] | None = None,
) -> bytes:
    """A docker-archive as dockerd 20.10 writes it: <id>.json, <v1>/layer.tar, manifest.json."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05.123456789Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "history": [
            {"created": "2024-01-02T03:04:05Z", "created_by": f"step {i}"}
            for i in range(len(layers))
        ],
        "rootfs": {"type": "layers", "diff_ids": [sha(la) for la in layers]},
        **(config_extra or {}),
    }
    config_bytes = json.dumps(config).encode()
    config_hex = sha(config_bytes)[7:]
    files: list[tuple[str, bytes | str]] = [(f"{config_hex}.json", config_bytes)]
    paths = []
    for i, data in enumerate(layers):
        v1 = hashlib.sha256(f"{i}{sha(data)}".encode()).hexdigest()
        path = f"{v1}/layer.tar"
        earlier = [p for p, d in zip(paths, layers, strict=False) if d == data]
        if symlink_dup and earlier:
            files.append((path, "../" + earlier[0]))
        else:
            files.append((path, data))
        files.append((f"{v1}/VERSION", b"1.0"))
        paths.append(path)
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": tags, "Layers": paths}]
    files.append(("manifest.json", json.dumps(manifest).encode()))
    return tar_of(files)


def tar_of(files: list[tuple[str, bytes | str]]) -> bytes:
    """Regular files (bytes) and symlinks (str targets)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()
