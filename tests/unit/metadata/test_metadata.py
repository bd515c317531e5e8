"""The SQLite metadata: records, references, leases, and the tricolor collector."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from skiff.content.types import write_blob
from skiff.errors import NotFound
from skiff.metadata.db import CONTENT, SNAPSHOT, ImageRecord, LayerRecord, MetadataStore
from skiff.metadata.gc import collect, tricolor
from skiff.oci.digest import Digest
from skiff.testing.content import MemoryStore
from skiff.testing.snapshots import MemorySnapshotter

if TYPE_CHECKING:
    from pathlib import Path


def _record(image_id: str, layers: list[tuple[str, str]], parent: str = "") -> ImageRecord:
    return ImageRecord(
        id=image_id,
        manifest_digest="sha256:" + "0" * 64,
        manifest_media_type="application/vnd.oci.image.manifest.v1+json",
        parent=parent,
        size=1,
        created_at=0,
        layers=tuple(LayerRecord(d, "t", d, c, 1) for d, c in layers),
    )


def test_images_refs_and_transactions(tmp_path: Path) -> None:
    meta = MetadataStore(tmp_path / "m.db")
    a = "sha256:" + "a" * 64
    meta.put_image(_record(a, [("sha256:" + "1" * 64, "sha256:" + "1" * 64)]), ["r:1", "r:2"])
    assert meta.refs_of(a) == ["r:1", "r:2"]
    assert meta.image_ids_with_prefix("aaa") == [a]
    assert meta.layer_size("sha256:" + "1" * 64) == 1
    b = "sha256:" + "b" * 64
    meta.put_image(_record(b, [], parent=a))
    assert meta.set_ref("r:1", b) == a
    assert meta.children(a) == [b]

    def delete_then_fail() -> None:
        with meta.transaction():
            meta.delete_image(a)
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        delete_then_fail()
    assert meta.get_image(a).id == a
    meta.delete_image(b)
    with pytest.raises(NotFound):
        meta.get_image(b)
    assert meta.get_ref("r:1") is None
    meta.close()
    again = MetadataStore(tmp_path / "m.db")
    assert again.refs_of(a) == ["r:2"]


def test_lease_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    meta = MetadataStore(tmp_path / "m.db")
    mine = meta.create_lease()
    meta.add_lease_resource(mine, CONTENT, "sha256:x")
    # A lease made by a process that has exited (a kill -9 mid-load).
    code = (
        "from skiff.metadata.db import MetadataStore as M;"
        f"m = M({str(tmp_path / 'm.db')!r}); lid = m.create_lease();"
        "m.add_lease_resource(lid, 'snapshot', 'sha256:y')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})
    assert meta.leased() == {(CONTENT, "sha256:x")}
    assert meta.live_leases() == [mine]
    expired = meta.create_lease(ttl=-1)
    assert expired not in meta.live_leases()


def test_tricolor() -> None:
    edges = {"a": ["b"], "b": ["c", "a"], "c": [], "d": ["c"]}
    marked = tricolor([("n", "a")], lambda n: [("n", x) for x in edges[n[1]]])
    assert marked == {("n", "a"), ("n", "b"), ("n", "c")}


def test_collect_keeps_roots_and_leases(tmp_path: Path) -> None:
    meta = MetadataStore(tmp_path / "m.db")
    store = MemoryStore()
    snaps = MemorySnapshotter()
    blobs = [write_blob(store, f"r{i}", [f"blob{i}".encode()]) for i in range(5)]
    for name, parent in (("sha256:l1", None), ("sha256:l2", "sha256:l1"), ("sha256:o1", None)):
        snaps.prepare("k", parent)
        snaps.commit(name, "k")
    snaps.prepare("container-1", "sha256:o1")  # a container's snapshot keeps its parent
    snaps.prepare("extract-123-x", None)  # an abandoned unpack
    image = ImageRecord(
        id=str(blobs[0]),
        manifest_digest=str(blobs[1]),
        manifest_media_type="m",
        parent="",
        size=0,
        created_at=0,
        layers=(LayerRecord(str(blobs[2]), "t", "d", "sha256:l1", 0),),
    )
    meta.put_image(image)
    lease = meta.create_lease()
    meta.add_lease_resource(lease, CONTENT, str(blobs[3]))
    meta.add_lease_resource(lease, SNAPSHOT, "sha256:l2")
    done = collect(meta, store, snaps)
    assert done.blobs == [str(blobs[4])]
    assert done.snapshots == []  # the live lease also protects extract-* snapshots
    meta.delete_lease(lease)
    done = collect(meta, store, snaps)
    assert sorted(done.blobs) == [str(blobs[3])]
    assert sorted(done.snapshots) == ["extract-123-x", "sha256:l2"]
    assert {i.name for i in snaps.walk()} == {"sha256:l1", "sha256:o1", "container-1"}
    assert {i.digest for i in store.walk()} == {blobs[0], blobs[1], blobs[2]}
    assert Digest.parse(image.id) == blobs[0]


def test_collect_sweeps_an_init_layer_once_no_container_is_on_it(tmp_path: Path) -> None:
    """A containers' init layer ("init-<chain id>") is kept by the containers on it,
    and swept with the image's layers once none is."""
    meta = MetadataStore(tmp_path / "m.db")
    snaps = MemorySnapshotter()
    snaps.prepare("k", None)
    snaps.commit("sha256:top", "k")
    snaps.prepare("k", "sha256:top")
    snaps.commit("init-sha256:top", "k")
    snaps.prepare("container-1", "init-sha256:top")
    assert collect(meta, MemoryStore(), snaps).snapshots == []
    snaps.remove("container-1")
    done = collect(meta, MemoryStore(), snaps)
    assert done.snapshots == ["init-sha256:top", "sha256:top"]  # the child first
    assert list(snaps.walk()) == []
