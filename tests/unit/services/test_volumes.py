"""VolumeService on a temporary root: names, idempotent create, in-use refusal, prune,
filters, resolving binds and mounts, copy-up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.services.volumes import (
    ANONYMOUS_LABEL,
    VolumeFilters,
    VolumeService,
    resolve_binds,
    split_bind,
)


@pytest.fixture
def users() -> dict[str, list[str]]:
    return {}


@pytest.fixture
def volumes(tmp_path: Path, users: dict[str, list[str]]) -> VolumeService:
    svc = VolumeService(tmp_path / "volumes")
    svc.set_in_use(lambda: users)
    return svc


def test_create_inspect_list_remove(volumes: VolumeService) -> None:
    v = volumes.create("data", labels={"a": "b"}, options={"type": "tmpfs"})
    assert v.name == "data"
    assert v.mountpoint == os.path.join(volumes.root, "data", "_data")
    assert os.path.isdir(v.mountpoint)
    assert v.labels == {"a": "b"}
    assert v.options == {"type": "tmpfs"}
    assert v.created_at.endswith("Z")
    assert volumes.get("data") == v
    assert volumes.create("data") == v  # idempotent, as docker
    assert [x.name for x in volumes.list()] == ["data"]
    volumes.remove("data")
    with pytest.raises(NotFound, match="get data: no such volume"):
        volumes.get("data")
    assert not os.path.exists(os.path.join(volumes.root, "data"))


def test_bad_names_and_options(volumes: VolumeService) -> None:
    with pytest.raises(InvalidArgument, match="too short"):
        volumes.create("a")
    with pytest.raises(InvalidArgument, match="includes invalid characters"):
        volumes.create("../etc")
    with pytest.raises(InvalidArgument, match='invalid option key: "bad"'):
        volumes.create("ok", options={"bad": "1"})
    with pytest.raises(NotFound, match="plugin"):
        volumes.create("ok", driver="nfs")
    with pytest.raises(NotFound):
        volumes.get("../x")


def test_anonymous_volume(volumes: VolumeService) -> None:
    v = volumes.create()
    assert len(v.name) == 64
    assert v.anonymous
    assert ANONYMOUS_LABEL in v.labels


def test_in_use_is_refused_even_forced(volumes: VolumeService, users: dict[str, list[str]]) -> None:
    volumes.create("busy")
    users["busy"] = ["c0ffee"]
    with pytest.raises(Conflict, match=r"remove busy: volume is in use - \[c0ffee\]"):
        volumes.remove("busy", force=True)
    volumes.remove("missing", force=True)  # -f: a missing volume is no error
    with pytest.raises(NotFound):
        volumes.remove("missing")


def test_prune_anonymous_only_unless_all(
    volumes: VolumeService, users: dict[str, list[str]]
) -> None:
    named = volumes.create("named")
    anon = volumes.create()
    used = volumes.create()
    users[used.name] = ["c1"]
    with open(os.path.join(anon.mountpoint, "f"), "wb") as f:
        f.write(b"x" * 100)
    deleted, reclaimed = volumes.prune()
    assert deleted == [anon.name]
    assert reclaimed == 100
    deleted, _ = volumes.prune(VolumeFilters(all=True))
    assert deleted == [named.name]
    assert [v.name for v in volumes.list()] == [used.name]


def test_filters(volumes: VolumeService, users: dict[str, list[str]]) -> None:
    volumes.create("alpha", labels={"env": "prod"})
    volumes.create("beta", labels={"env": "dev"})
    users["beta"] = ["c"]

    def names(**kw: object) -> list[str]:
        return [v.name for v in volumes.list(VolumeFilters.from_filters(kw))]  # type: ignore[arg-type]

    assert names(name=["alp"]) == ["alpha"]
    assert names(label=["env=dev"]) == ["beta"]
    assert names(label=["env"]) == ["alpha", "beta"]
    assert names(dangling=["true"]) == ["alpha"]
    assert names(dangling=["false"]) == ["beta"]
    with pytest.raises(InvalidArgument, match="invalid filter 'nope'"):
        VolumeFilters.from_filters({"nope": ["1"]})


def test_disk_usage(volumes: VolumeService, users: dict[str, list[str]]) -> None:
    v = volumes.create("sized")
    with open(os.path.join(v.mountpoint, "f"), "wb") as f:
        f.write(b"y" * 10)
    users["sized"] = ["a", "b"]
    [u] = volumes.disk_usage()
    assert (u.size, u.ref_count) == (10, 2)


def test_split_bind() -> None:
    assert split_bind("data:/x") == ("data", "/x", ())
    assert split_bind("/h:/x:ro") == ("/h", "/x", ("ro",))
    assert split_bind("/x") == ("", "/x", ())
    for bad in ("x", "a:b", "a:/b:bogus", "a:/b:c:d"):
        with pytest.raises(InvalidArgument):
            split_bind(bad)


def test_resolve_binds_makes_missing_volumes(volumes: VolumeService, tmp_path: Path) -> None:
    volumes.create("old")
    mounts = resolve_binds(
        volumes,
        binds=["old:/a", "new:/b:ro", f"{tmp_path}:/c"],
        mounts=[
            {"Type": "volume", "Source": "", "Target": "/d"},
            {"Type": "bind", "Source": "/etc", "Target": "/e", "ReadOnly": True},
            {"Type": "tmpfs", "Target": "/t"},
        ],
        anonymous=["/a", "/f"],
    )
    by_dest = {m.destination: m for m in mounts}
    assert set(by_dest) == {"/a", "/b", "/c", "/d", "/e", "/f"}
    assert by_dest["/a"].volume == "old"
    assert not by_dest["/a"].created
    assert by_dest["/b"].volume == "new"
    assert by_dest["/b"].created
    assert by_dest["/b"].readonly
    assert by_dest["/b"].source == volumes.get("new").mountpoint
    assert by_dest["/c"].source == str(tmp_path)
    assert not by_dest["/c"].volume
    assert by_dest["/d"].created
    assert len(by_dest["/d"].volume) == 64
    assert by_dest["/e"].readonly
    assert by_dest["/e"].source == "/etc"
    assert by_dest["/f"].created
    with pytest.raises(InvalidArgument, match="must be absolute"):
        resolve_binds(volumes, mounts=[{"Type": "bind", "Source": "rel", "Target": "/x"}])


def test_copy_up_only_into_an_empty_volume(volumes: VolumeService, tmp_path: Path) -> None:
    src = tmp_path / "image-dir"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_text("hello")
    os.symlink("/etc/passwd", src / "link")
    v = volumes.create("fill")
    assert volumes.copy_up(v, str(src))
    assert (Path(v.mountpoint) / "sub" / "f").read_text() == "hello"
    assert os.readlink(Path(v.mountpoint) / "link") == "/etc/passwd"
    (src / "sub" / "f").write_text("changed")
    assert not volumes.copy_up(v, str(src))  # not empty any more
    assert not volumes.copy_up(volumes.create("other"), str(tmp_path / "missing"))
