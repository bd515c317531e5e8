"""cgroupsPath resolution, own-cgroup parsing and version detection."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skiff.cgroups import CgroupError, load_manager, open_manager
from skiff.cgroups.fake import fake_v1_root, fake_v2_root
from skiff.cgroups.paths import (
    clean_path,
    detect_version,
    expand_slice,
    inner_path,
    own_cgroups,
    systemd_path,
    v1_paths,
    v2_path,
)
from skiff.cgroups.v1 import V1Manager
from skiff.cgroups.v2 import V2Manager


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        ("", ""),
        ("/a/b/", "/a/b"),
        ("/a/../../b", "/b"),
        ("//a//b", "/a/b"),
        ("a/b", "a/b"),
        ("../../x", "x"),
        ("a/../..", ""),
        (".", ""),
    ],
)
def test_clean_path_never_climbs_out(given: str, cleaned: str) -> None:
    assert clean_path(given) == cleaned


def test_inner_path_rules() -> None:
    assert inner_path("/docker/abc", "abc", systemd=False) == "/docker/abc"
    assert inner_path("mine/abc", "abc", systemd=False) == "mine/abc"
    assert inner_path("", "abc", systemd=False) == "abc"  # runc: Name = id, relative
    with pytest.raises(CgroupError, match=r"linux\.cgroupsPath"):
        inner_path("/", "abc", systemd=False)


@pytest.mark.parametrize(
    ("slice_name", "path"),
    [
        ("system.slice", "/system.slice"),
        ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
        ("-.slice", "/"),
    ],
)
def test_expand_slice(slice_name: str, path: str) -> None:
    assert expand_slice(slice_name) == path


@pytest.mark.parametrize("bad", ["system", ".slice", "a--b.slice", "-a.slice", "a/b.slice"])
def test_expand_slice_rejects(bad: str) -> None:
    with pytest.raises(CgroupError):
        expand_slice(bad)


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("system.slice:docker:abc", "/system.slice/docker-abc.scope"),
        ("kubepods-besteffort.slice:cri-containerd:abc", None),
        (":docker:abc", "/system.slice/docker-abc.scope"),
        ("machine.slice::abc", "/machine.slice/abc.scope"),
        ("system.slice:x:sub.slice", "/system.slice/sub.slice"),
        ("", "/system.slice/runc-cid.scope"),
    ],
)
def test_systemd_paths(spec: str, path: str | None) -> None:
    if path is None:
        path = "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-abc.scope"
    assert systemd_path(spec, "cid") == path
    assert inner_path(spec, "cid", systemd=True) == path


def test_systemd_path_needs_three_parts() -> None:
    with pytest.raises(CgroupError, match="slice:prefix:name"):
        systemd_path("/docker/abc", "abc")


def test_own_cgroups_v1_and_v2_with_mount_roots() -> None:
    proc = "4:memory:/process_api/x\n3:cpu,cpuacct:/user/1\n1:name=systemd:/\n0::/init.scope\n"
    mountinfo = (
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "36 31 0:33 /user /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    own = own_cgroups(proc, mountinfo)
    assert own["memory"] == "/process_api/x"
    assert own["cpu"] == own["cpuacct"] == "/1"  # bind-mounted from /user
    assert own[""] == "/init.scope"


def test_v1_paths_absolute_relative_and_comounted(tmp_path: Path) -> None:
    root = fake_v1_root(str(tmp_path), ("memory", "cpuset"))
    os.makedirs(tmp_path / "cpu,cpuacct")
    os.symlink("cpu,cpuacct", tmp_path / "cpu")
    os.symlink("cpu,cpuacct", tmp_path / "cpuacct")
    assert v1_paths(root, "/docker/c1") == {
        "cpuset": f"{root}/cpuset/docker/c1",
        "cpu": f"{root}/cpu,cpuacct/docker/c1",
        "cpuacct": f"{root}/cpu,cpuacct/docker/c1",
        "memory": f"{root}/memory/docker/c1",
    }
    own = {"memory": "/process_api/x", "cpu": "/", "cpuacct": "/", "cpuset": "/"}
    rel = v1_paths(root, "c1", own)
    assert rel["memory"] == f"{root}/memory/process_api/x/c1"
    assert rel["cpuset"] == f"{root}/cpuset/c1"


def test_v2_path_relative_uses_parent_of_own_cgroup(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert v2_path(root, "/docker/c1") == f"{root}/docker/c1"
    assert v2_path(root, "c1", {"": "/user.slice/session-1.scope"}) == f"{root}/user.slice/c1"
    assert v2_path(root, "c1", {"": "/"}) == f"{root}/c1"


def test_detect_version_on_fake_roots(tmp_path: Path) -> None:
    assert detect_version(fake_v1_root(str(tmp_path / "v1"))) == 1
    assert detect_version(fake_v2_root(str(tmp_path / "v2"))) == 2


def test_open_and_load_round_trip(tmp_path: Path) -> None:
    v1 = open_manager("/c1", "c1", root=fake_v1_root(str(tmp_path / "v1")))
    assert isinstance(v1, V1Manager)
    assert v1.paths()["memory"] == f"{tmp_path}/v1/memory/c1"
    again = load_manager(v1.paths())
    assert isinstance(again, V1Manager)
    assert again.paths() == v1.paths()

    v2 = open_manager("", "c2", root=fake_v2_root(str(tmp_path / "v2")), own={"": "/a/b"})
    assert isinstance(v2, V2Manager)
    assert v2.paths() == {"": f"{tmp_path}/v2/a/c2"}
    again = load_manager(v2.paths())
    assert isinstance(again, V2Manager)
    assert again.paths() == v2.paths()

    with pytest.raises(CgroupError):
        load_manager({})
