"""docker-archive load/save and OCI layouts, including refusing hostile input whole."""

from __future__ import annotations

import io
import json
import tarfile
from typing import TYPE_CHECKING

import pytest

from skiff.errors import InvalidArgument, NotFound
from tests.unit.images.conftest import layer, legacy_archive, make_service, sha, tar_of

if TYPE_CHECKING:
    from pathlib import Path

    from skiff.images.service import ImageService

BASE = layer({"bin": None, "bin/sh": b"#!fake\n"})
TOP = layer({"etc": None, "etc/motd": b"hi\n"})


def _visible(svc: ImageService) -> tuple[list[str], list[str], list[str]]:
    return (
        [i.id for i in svc.list(all=True)],
        sorted(str(b.digest) for b in svc.store.walk()),
        sorted(s.name for s in svc.snapshotter.walk()),
    )


def test_load_legacy_archive_with_symlinked_layer(svc: ImageService) -> None:
    data = legacy_archive([BASE, TOP, BASE], ["app:1", "app:latest"], symlink_dup=True)
    lines = svc.load(io.BytesIO(data))
    assert lines == ["Loaded image: app:1", "Loaded image: app:latest"]
    img = svc.get("app:1")
    assert img.repo_tags == ["app:1", "app:latest"]
    assert img.diff_ids == [sha(BASE), sha(TOP), sha(BASE)]
    assert img.created == "2024-01-02T03:04:05.123456789Z"
    assert img.config.cmd == ["sh"]
    assert [h.created_by for h in svc.history("app:1")] == ["step 2", "step 1", "step 0"]
    # The stray files of the archive (VERSION, manifest.json) were garbage.
    svc.gc()
    blobs = _visible(svc)[1]
    assert len(blobs) == 4  # config, manifest, two distinct layers


def test_load_untagged_and_retag_progress(svc: ImageService) -> None:
    assert svc.load(io.BytesIO(legacy_archive([BASE], []))) == [
        f"Loaded image ID: {svc.list()[0].id}"
    ]
    first = svc.load(io.BytesIO(legacy_archive([BASE], ["x:1"])))
    assert first == ["Loaded image: x:1"]
    messages: list[str] = []
    old = svc.get("x:1").id
    svc.load(io.BytesIO(legacy_archive([TOP], ["x:1"])), messages.append)
    assert messages[0] == (
        f"The image x:1 already exists, renaming the old one with ID {old} to empty string"
    )
    assert messages[-1] == "Loaded image: x:1"


def test_save_load_round_trip(svc: ImageService, tmp_path: Path) -> None:
    svc.load(io.BytesIO(legacy_archive([BASE, TOP], ["app:1"])))
    svc.tag("app:1", "app", "2")
    out = io.BytesIO()
    svc.save(["app"], out)  # a bare name saves every tag of the repository
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        names = set(tf.getnames())
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
        repos = json.load(tf.extractfile("repositories"))  # type: ignore[arg-type]
    img = svc.get("app:1")
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names
    assert manifest == [
        {
            "Config": f"blobs/sha256/{img.id[7:]}",
            "RepoTags": ["app:1", "app:2"],
            "Layers": [f"blobs/sha256/{d[7:]}" for d in img.diff_ids],
        }
    ]
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "1",
        "2",
    ]
    assert index["manifests"][0]["digest"] == img.manifest_digest
    assert repos == {"app": {"1": img.diff_ids[-1][7:], "2": img.diff_ids[-1][7:]}}

    other = make_service(tmp_path / "other")
    assert other.load(io.BytesIO(out.getvalue())) == ["Loaded image: app:1", "Loaded image: app:2"]
    copy = other.get("app:2")
    assert (copy.id, copy.manifest_digest, copy.size) == (img.id, img.manifest_digest, img.size)
    # By id: no RepoTags.
    out2 = io.BytesIO()
    svc.save([img.id[7:19]], out2)
    with tarfile.open(fileobj=io.BytesIO(out2.getvalue())) as tf:
        assert json.load(tf.extractfile("manifest.json"))[0]["RepoTags"] is None  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        svc.save(["nope"], io.BytesIO())


def test_oci_archive_without_manifest_json(svc: ImageService, tmp_path: Path) -> None:
    svc.load(io.BytesIO(legacy_archive([BASE], ["src:1"])))
    out = io.BytesIO()
    svc.save(["src:1"], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        files = [
            (m.name, tf.extractfile(m).read())  # type: ignore[union-attr]
            for m in tf.getmembers()
            if m.isfile() and m.name not in ("manifest.json", "repositories")
        ]
    other = make_service(tmp_path / "other")
    assert other.load(io.BytesIO(tar_of(list(files)))) == ["Loaded image: src:1"]
    assert other.get("src:1").id == svc.get("src:1").id


def test_oci_layout_round_trip(svc: ImageService, tmp_path: Path) -> None:
    svc.load(io.BytesIO(legacy_archive([BASE, TOP], ["app:1"])))
    svc.load(io.BytesIO(legacy_archive([TOP], ["app:2"])))
    dest = tmp_path / "layout"
    svc.export_oci_layout("app:1", dest)
    svc.export_oci_layout("app:2", dest)
    svc.export_oci_layout("app:2", dest)  # the tag is replaced, not duplicated
    index = json.loads((dest / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "1",
        "2",
    ]
    assert json.loads((dest / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    other = make_service(tmp_path / "other")
    images = other.import_oci_layout(dest)
    assert sorted(i.repo_tags[0] for i in images) == ["app:1", "app:2"]
    third = make_service(tmp_path / "third")
    (only,) = third.import_oci_layout(dest, "mine:2")
    assert only.repo_tags == ["mine:2"]
    assert only.id == svc.get("app:2").id
    with pytest.raises(InvalidArgument, match="not an OCI image layout"):
        other.import_oci_layout(tmp_path)


def test_corrupt_blob_in_layout_is_refused(svc: ImageService, tmp_path: Path) -> None:
    svc.load(io.BytesIO(legacy_archive([BASE], ["app:1"])))
    dest = tmp_path / "layout"
    svc.export_oci_layout("app:1", dest)
    victim = dest / "blobs" / "sha256" / sha(BASE)[7:]
    victim.chmod(0o644)
    victim.write_bytes(TOP)
    other = make_service(tmp_path / "other")
    with pytest.raises(InvalidArgument):
        other.import_oci_layout(dest)
    assert _visible(other) == ([], [], [])


HOSTILE = [
    ("dotdot", layer({"../escape": b"x"})),
    ("absolute-symlink-then-write", None),
    ("truncated", BASE[:700]),
]


def _planted() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        link = tarfile.TarInfo("evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/"
        tf.addfile(link)
        hard = tarfile.TarInfo("hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "../../../etc/passwd"
        tf.addfile(hard)
    return buf.getvalue()


@pytest.mark.parametrize("case", ["dotdot", "hardlink-out", "truncated", "diffid-mismatch"])
def test_hostile_layer_in_archive_leaves_nothing(
    svc: ImageService, tmp_path: Path, case: str
) -> None:
    svc.load(io.BytesIO(legacy_archive([BASE], ["good:1"])))
    before = _visible(svc)
    if case == "dotdot":
        data = legacy_archive([BASE, layer({"../escape": b"x"})], ["evil:1"])
    elif case == "hardlink-out":
        data = legacy_archive([BASE, _planted()], ["evil:1"])
    elif case == "truncated":
        data = legacy_archive([TOP[:1000]], ["evil:1"])
    else:
        good = legacy_archive([TOP], ["evil:1"])
        data = good.replace(TOP, TOP.replace(b"hi\n", b"ho\n"))
    with pytest.raises(InvalidArgument):
        svc.load(io.BytesIO(data))
    assert _visible(svc) == before
    assert not (tmp_path / "escape").exists()
    # And the store still works: a good load afterwards succeeds.
    assert svc.load(io.BytesIO(legacy_archive([TOP], ["evil:1"]))) == ["Loaded image: evil:1"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a tar at all" * 100, "invalid tar archive"),
        (tar_of([("hello.txt", b"x")]), "no manifest.json or index.json"),
        (tar_of([("manifest.json", b"{")]), "manifest.json: invalid JSON"),
        (tar_of([("manifest.json", b"[{}]")]), "expected an object with Config"),
        (
            tar_of([("manifest.json", b'[{"Config": "nope.json"}]')]),
            "the archive has no file nope.json",
        ),
        (tar_of([("repositories", b"{}")]), "legacy v1 image archives"),
    ],
)
def test_bad_archives(svc: ImageService, data: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        svc.load(io.BytesIO(data))
    assert _visible(svc) == ([], [], [])


def test_bad_tag_in_archive(svc: ImageService) -> None:
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        svc.load(io.BytesIO(legacy_archive([BASE], ["Bad:1"])))
    assert _visible(svc) == ([], [], [])
