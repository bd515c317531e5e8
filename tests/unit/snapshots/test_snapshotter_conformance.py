"""One contract, two snapshotters: OverlaySnapshotter (no mounting here) and the fake."""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

import pytest

from skiff.archive import CorruptLayer
from skiff.archive.unpack import unpack_layer
from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.oci.digest import Digest
from skiff.snapshots import Kind, Snapshotter, lower_dirs, upper_dir
from skiff.snapshots.overlay import OverlaySnapshotter
from skiff.testing.snapshots import MemorySnapshotter

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(params=["overlay", "memory"])
def sn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Snapshotter]:
    if request.param == "overlay":
        s = OverlaySnapshotter(tmp_path / "snapshots")
        yield s
        s.close()
    else:
        yield MemorySnapshotter(tmp_path / "fake")


def chain(sn: Snapshotter, *names: str) -> None:
    parent = None
    for name in names:
        sn.prepare(f"k-{name}", parent)
        sn.commit(name, f"k-{name}")
        parent = name


def test_prepare_without_parent_is_a_writable_bind(sn: Snapshotter) -> None:
    [m] = sn.prepare("c1", labels={"a": "b"})
    assert (m.type, m.readonly) == ("bind", False)
    info = sn.stat("c1")
    assert (info.name, info.kind, info.parent, info.labels) == ("c1", Kind.ACTIVE, None, {"a": "b"})
    assert sn.mounts("c1") == [m]


def test_commit_renames_key_to_name(sn: Snapshotter) -> None:
    sn.prepare("k")
    sn.commit("base", "k", labels={"x": "1"})
    assert sn.stat("base").kind == Kind.COMMITTED
    assert sn.stat("base").labels == {"x": "1"}
    with pytest.raises(NotFound):
        sn.stat("k")
    with pytest.raises(InvalidArgument):
        sn.mounts("base")


def test_active_on_chain_is_overlay_top_first(sn: Snapshotter) -> None:
    chain(sn, "l1", "l2", "l3")
    mounts = sn.prepare("ctr", "l3")
    [m] = mounts
    assert m.type == "overlay"
    lowers = lower_dirs(mounts)
    assert len(lowers) == 3
    assert upper_dir(mounts) not in lowers
    assert sn.stat("ctr").parent == "l3"
    assert sn.stat("l2").parent == "l1"
    # lowers are the parents' upper folders, top first
    assert len(set(lowers)) == 3
    assert "index=off" in m.options


def test_views(sn: Snapshotter) -> None:
    [m] = sn.view("v0")
    assert (m.type, m.readonly) == ("bind", True)
    chain(sn, "l1", "l2")
    [one] = sn.view("v1", "l1")
    assert (one.type, one.readonly) == ("bind", True)
    [two] = sn.view("v2", "l2")
    assert two.type == "overlay"
    assert two.option("upperdir") is None
    assert len(lower_dirs([two])) == 2
    assert one.source == lower_dirs([two])[1]
    with pytest.raises(InvalidArgument):
        sn.commit("nope", "v2")
    with pytest.raises(InvalidArgument):
        upper_dir([one])


def test_errors(sn: Snapshotter) -> None:
    sn.prepare("a")
    with pytest.raises(Conflict):
        sn.prepare("a")
    with pytest.raises(NotFound):
        sn.prepare("b", "missing")
    with pytest.raises(InvalidArgument, match="not a committed"):
        sn.prepare("b", "a")
    with pytest.raises(InvalidArgument):
        sn.prepare("")
    sn.commit("base", "a")
    with pytest.raises(NotFound):
        sn.commit("x", "a")
    sn.prepare("c", "base")
    with pytest.raises(Conflict):
        sn.commit("base", "c")
    with pytest.raises(Conflict, match="children"):
        sn.remove("base")
    with pytest.raises(NotFound):
        sn.remove("missing")
    with pytest.raises(NotFound):
        sn.mounts("missing")


def test_remove_and_reuse_key(sn: Snapshotter) -> None:
    chain(sn, "base")
    sn.prepare("c", "base")
    sn.remove("c")
    sn.remove("base")
    assert list(sn.walk()) == []
    sn.prepare("c")
    assert [i.name for i in sn.walk()] == ["c"]


def test_walk_and_usage(sn: Snapshotter) -> None:
    chain(sn, "l1")
    sn.prepare("c", "l1")
    assert [(i.name, i.kind) for i in sn.walk()] == [("l1", Kind.COMMITTED), ("c", Kind.ACTIVE)]
    assert sn.usage("l1").size >= 0
    assert sn.usage("c").inodes >= 0


def _tar(**files: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_unpack_layer_commits_only_on_success(sn: Snapshotter) -> None:
    good = _tar(a=b"1")
    applied = unpack_layer(sn, io.BytesIO(good), "l1", expected_diff_id=Digest.from_bytes(good))
    assert applied.size == 1
    assert sn.stat("l1").kind == Kind.COMMITTED
    with pytest.raises(CorruptLayer):
        unpack_layer(sn, io.BytesIO(_tar(b=b"2")[:600]), "l2", "l1")
    with pytest.raises(CorruptLayer, match="diffID"):
        unpack_layer(sn, io.BytesIO(good), "l3", "l1", expected_diff_id=Digest.from_bytes(b""))
    assert [i.name for i in sn.walk()] == ["l1"]
