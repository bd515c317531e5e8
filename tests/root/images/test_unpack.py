"""Unpacked images mount as overlays: busybox runs, whiteouts hide, snapshots are shared."""

from __future__ import annotations

import io
import os
import subprocess
from typing import TYPE_CHECKING

import pytest

from skiff.snapshots.mount import mount_all, unmount
from tests.unit.images.conftest import layer, legacy_archive

if TYPE_CHECKING:
    from pathlib import Path

    from skiff.images.service import ImageService

pytestmark = pytest.mark.root


def _whiteout_layer(name: str) -> bytes:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(os.path.join(os.path.dirname(name), ".wh." + os.path.basename(name)))
        tf.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


def test_bootstrap_busybox_runs_from_its_snapshot(store: ImageService, tmp_path: Path) -> None:
    img = store.bootstrap_busybox()
    assert img.repo_tags == ["busybox:latest"]
    assert img.config.cmd == ["sh"]
    again = store.bootstrap_busybox()
    assert again.id == img.id  # deterministic: same host binary, same image
    parent = store.snapshot_parent(img)
    assert parent == img.chain_id
    mounts = store.snapshotter.prepare("ctr-1", parent)
    target = tmp_path / "rootfs"
    target.mkdir()
    mount_all(mounts, target)
    try:
        out = subprocess.run(
            ["chroot", str(target), "/bin/sh", "-c", "echo hi from $(basename $0); ls /etc"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "hi from sh" in out.stdout
        assert "passwd" in out.stdout
    finally:
        unmount(target)
        store.snapshotter.remove("ctr-1")


def test_whiteouts_and_shared_layers(store: ImageService, tmp_path: Path) -> None:
    base = layer({"etc": None, "etc/a": b"a", "etc/b": b"b"})
    store.load(io.BytesIO(legacy_archive([base, _whiteout_layer("etc/a")], ["wh:1"])))
    store.load(io.BytesIO(legacy_archive([base], ["base:1"])))
    img, plain = store.get("wh:1"), store.get("base:1")
    assert plain.chain_id == img.diff_ids[0]  # the base layer is one snapshot, shared
    names = {s.name for s in store.snapshotter.walk()}
    assert names == {plain.chain_id, img.chain_id}
    mounts = store.snapshotter.view("view-1", store.snapshot_parent(img))
    target = tmp_path / "view"
    target.mkdir()
    mount_all(mounts, target)
    try:
        assert sorted(os.listdir(target / "etc")) == ["b"]
    finally:
        unmount(target)
        store.snapshotter.remove("view-1")
    # Removing one image keeps the shared layer for the other.
    store.remove("wh:1")
    assert {s.name for s in store.snapshotter.walk()} == {plain.chain_id}


def test_reopen_sweeps_abandoned_work(tmp_path: Path) -> None:
    from skiff.images.service import ImageService

    svc = ImageService.open(tmp_path / "root")
    svc.snapshotter.prepare("extract-dead-beef", None)
    with svc.store.writer("skiff-op-dead-1") as w:
        w.write(b"half a blob")
    svc.close()
    svc = ImageService.open(tmp_path / "root")
    try:
        assert list(svc.snapshotter.walk()) == []
        assert svc.store.statuses() == []
    finally:
        svc.close()
