"""ImageService behaviours against Docker's: lookup, tag, rmi, list filters, history."""

from __future__ import annotations

import gzip
import io
from typing import TYPE_CHECKING

import pytest

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.services.images import MISSING, ImageFilters, ImageUser
from tests.unit.images.conftest import layer, sha

if TYPE_CHECKING:
    from skiff.images.service import ImageService

ROOTFS = layer({"bin": None, "bin/hello": b"hello\n", "etc": None, "etc/os": b"skiff\n"})


def test_import_plain_and_gzip(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "demo:1", ["CMD /bin/hello", "ENV A=1"], "")
    assert img.repo_tags == ["demo:1"]
    assert img.diff_ids == [sha(ROOTFS)]
    assert img.config.cmd == ["/bin/sh", "-c", "/bin/hello"]
    assert img.config.env == ["A=1"]
    assert img.comment == "Imported from -"
    assert img.size == len(b"hello\n") + len(b"skiff\n")
    assert img.chain_id == sha(ROOTFS)
    assert img.manifest_media_type == "application/vnd.oci.image.manifest.v1+json"
    # The id is the digest of the config blob.
    with svc.store.open_blob(__import__("skiff.oci.digest").oci.digest.Digest.parse(img.id)) as f:
        assert sha(f.read()) == img.id
    # gzip input: same layer (stored uncompressed), so the same diffID and chain id.
    img2 = svc.import_rootfs(io.BytesIO(gzip.compress(ROOTFS)), None, [], "by gzip", "linux/arm64")
    assert img2.diff_ids == img.diff_ids
    assert img2.repo_tags == []
    assert img2.architecture == "arm64"
    assert img2.comment == "by gzip"


def test_lookup(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "busybox")
    hexid = img.id[7:]
    for name in (
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        img.id,
        hexid,
        hexid[:12],
        "sha256:" + hexid[:8],
    ):
        assert svc.get(name).id == img.id, name
    with pytest.raises(NotFound, match=r"^No such image: nope:latest$"):
        svc.get("nope")
    with pytest.raises(NotFound, match=r"^No such image: busybox:2$"):
        svc.get("busybox:2")
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        svc.get("Bad Name")


def test_tag_moves_and_validates(svc: ImageService) -> None:
    a = svc.import_rootfs(io.BytesIO(ROOTFS), "a")
    b = svc.import_rootfs(io.BytesIO(layer({"x": b"x"})), "b")
    svc.tag("a", "shared", "v1")
    svc.tag("b", "shared", "v1")
    assert svc.get("shared:v1").id == b.id
    assert svc.get(a.id).repo_tags == ["a:latest"]
    svc.tag(a.id, "localhost:5000/team/app", "")
    assert "localhost:5000/team/app:latest" in svc.get("a").repo_tags
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        svc.tag("a", "Upper", "x")
    with pytest.raises(InvalidArgument, match="invalid tag format"):
        svc.tag("a", "ok", "-x")
    with pytest.raises(NotFound):
        svc.tag("missing", "ok", "x")


def test_rmi_untag_then_delete(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "one")
    svc.tag("one", "two", "latest")
    assert svc.remove("one") == [("Untagged", "one:latest")]
    assert svc.remove("two") == [("Untagged", "two:latest"), ("Deleted", img.id)]
    with pytest.raises(NotFound):
        svc.get(img.id)


def test_rmi_by_id_with_tags_in_two_repositories(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "one")
    svc.tag("one", "two", "latest")
    with pytest.raises(Conflict) as e:
        svc.remove(img.id[7:19])
    assert str(e.value) == (
        f"conflict: unable to delete {img.id[7:19]} (must be forced) - "
        "image is referenced in multiple repositories"
    )
    items = svc.remove(img.id[7:19], force=True)
    assert items == [("Untagged", "one:latest"), ("Untagged", "two:latest"), ("Deleted", img.id)]


def test_rmi_by_id_single_repository(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "one")
    assert svc.remove(img.id) == [("Untagged", "one:latest"), ("Deleted", img.id)]


def test_rmi_refused_while_a_container_uses_it(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "busybox")
    users = [ImageUser("3f2a1b0c9d8e7f6a", img.id, running=False)]
    svc.set_in_use(lambda: users)
    with pytest.raises(Conflict) as e:
        svc.remove("busybox")
    assert str(e.value) == (
        'conflict: unable to remove repository reference "busybox" (must force) - '
        f"container 3f2a1b0c9d8e is using its referenced image {img.id[7:19]}"
    )
    with pytest.raises(Conflict, match="image is being used by stopped container 3f2a1b0c9d8e"):
        svc.remove(img.id)
    # Running: even a forced removal by id is refused; forced by name only untags.
    users[0] = ImageUser("3f2a1b0c9d8e7f6a", img.id, running=True)
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running"):
        svc.remove(img.id, force=True)
    assert svc.remove("busybox", force=True) == [("Untagged", "busybox:latest")]
    assert svc.get(img.id).repo_tags == []
    # Stopped, with plain image ids from the hook: forced removal deletes (as Docker:
    # the container keeps its snapshot, whose parents the snapshotter protects).
    svc.set_in_use(lambda: {img.id})
    with pytest.raises(Conflict, match="must be forced"):
        svc.remove(img.id)
    assert svc.remove(img.id, force=True) == [("Deleted", img.id)]


def test_list_filters(svc: ImageService) -> None:
    a = svc.import_rootfs(io.BytesIO(ROOTFS), "busybox:1", ["LABEL tier=base"])
    b = svc.import_rootfs(io.BytesIO(layer({"x": b"x"})), "alpine:3")
    c = svc.import_rootfs(io.BytesIO(layer({"y": b"y"})), None)
    assert {i.id for i in svc.list()} == {a.id, b.id, c.id}
    assert [i.id for i in svc.list(filters=ImageFilters(dangling=True))] == [c.id]
    assert {i.id for i in svc.list(filters=ImageFilters(dangling=False))} == {a.id, b.id}
    assert [i.id for i in svc.list(filters=ImageFilters(label=("tier=base",)))] == [a.id]
    assert [i.id for i in svc.list(filters=ImageFilters(label=("tier",)))] == [a.id]
    assert [i.id for i in svc.list(filters=ImageFilters(reference=("busy*",)))] == [a.id]
    assert [i.id for i in svc.list(filters=ImageFilters(reference=("alpine:3",)))] == [b.id]
    assert svc.list(filters=ImageFilters(reference=("*/*",))) == []
    flt = ImageFilters.from_filters({"dangling": ["true"], "label": ["a=b"], "reference": ["x"]})
    assert flt.dangling is True
    assert flt.label == ("a=b",)
    assert flt.reference == ("x",)
    with pytest.raises(InvalidArgument, match="invalid filter 'bogus'"):
        ImageFilters.from_filters({"bogus": ["1"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        ImageFilters.from_filters({"dangling": ["maybe"]})
    with pytest.raises(InvalidArgument, match="failed to parse"):
        svc.list(filters=ImageFilters(until="soon"))
    assert len(svc.list(filters=ImageFilters(until="1h"))) == 0


def test_history(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "h", [], "first import")
    (entry,) = svc.history("h")
    assert entry.id == img.id
    assert entry.tags == ["h:latest"]
    assert entry.comment == "first import"
    assert entry.size == img.size
    assert entry.created == img.created_unix > 0
    assert MISSING == "<missing>"


def test_prune_dangling_and_all(svc: ImageService) -> None:
    keep = svc.import_rootfs(io.BytesIO(ROOTFS), "keep")
    dangling = svc.import_rootfs(io.BytesIO(layer({"d": b"d" * 100})), None)
    used = svc.import_rootfs(io.BytesIO(layer({"u": b"u"})), "used")
    svc.set_in_use(lambda: {used.id})
    deleted, reclaimed = svc.prune()
    assert deleted == [("Deleted", dangling.id)]
    assert reclaimed == 100
    deleted, _ = svc.prune(all=True)
    assert ("Untagged", "keep:latest") in deleted
    assert ("Deleted", keep.id) in deleted
    assert [i.id for i in svc.list()] == [used.id]
    with pytest.raises(InvalidArgument, match="invalid filter 'before'"):
        svc.prune(filters=ImageFilters(before="x"))


def test_disk_usage_shared_size(svc: ImageService) -> None:
    a = svc.import_rootfs(io.BytesIO(ROOTFS), "a", ["CMD a"])
    b = svc.import_rootfs(io.BytesIO(ROOTFS), "b", ["CMD b"])
    assert a.id != b.id
    assert a.chain_id == b.chain_id
    usage = {i.id: i for i in svc.disk_usage()}
    assert usage[a.id].shared_size == a.size == usage[b.id].shared_size
    assert usage[a.id].containers == 0


def test_gc_sweeps_what_nothing_refers_to(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "a")
    blobs = {str(i.digest) for i in svc.store.walk()}
    assert {img.id, img.manifest_digest, img.diff_ids[0]} <= blobs
    assert svc.gc() == (0, 0)
    svc.remove("a")  # deleting the last image that had them sweeps its blobs at once
    assert list(svc.store.walk()) == []
    assert list(svc.snapshotter.walk()) == []


def test_snapshot_parent_reunpacks(svc: ImageService) -> None:
    img = svc.import_rootfs(io.BytesIO(ROOTFS), "a")
    svc.snapshotter.remove(img.chain_id)
    assert svc.snapshot_parent(img) == img.chain_id
    assert svc.snapshotter.stat(img.chain_id).name == img.chain_id
