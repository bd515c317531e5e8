"""The v2 backend against a fake root: files, conversions, delegation, freezer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skiff.cgroups import CgroupError
from skiff.cgroups.fake import fake_v2_root, populate, populate_v2_leaf
from skiff.cgroups.v2 import V2Manager, blkio_weight_to_io_weight, shares_to_weight, swap_to_v2
from skiff.oci.runtime_spec import Resources
from skiff.oci.spec_reader import Reader


def res(doc: dict[str, object]) -> Resources:
    return Resources(Reader(doc, "linux.resources"))


class Env:
    def __init__(self, root: Path) -> None:
        self.root = fake_v2_root(str(root))
        self.path = f"{self.root}/box/c1"
        self.trace: list[tuple[str, str]] = []
        self.mgr = V2Manager(self.path, trace=self.trace)

    def ready(self) -> Env:
        populate_v2_leaf(f"{self.root}/box")
        self.mgr.create()
        populate_v2_leaf(self.path)
        self.trace.clear()
        return self

    def read(self, name: str) -> str:
        return Path(self.path, name).read_text()

    def apply(self, doc: dict[str, object]) -> list[tuple[str, str]]:
        self.trace.clear()
        self.mgr.apply(res(doc))
        return [(os.path.relpath(p, self.path), v) for p, v in self.trace]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path).ready()


@pytest.mark.parametrize(
    ("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (0, 1), (10**9, 10000)]
)
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(10, 1), (500, 4950), (1000, 10000)])
def test_blkio_weight_to_io_weight(blkio: int, io: int) -> None:
    assert blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize(
    ("swap", "memory", "v2"),
    [(0, 0, 0), (0, -1, -1), (-1, 100, -1), (300, 100, 200), (100, 100, 0), (0, 100, 0)],
)
def test_swap_conversion(swap: int, memory: int, v2: int) -> None:
    assert swap_to_v2(swap, memory) == v2


@pytest.mark.parametrize(("swap", "memory"), [(100, 0), (100, -1), (50, 100)])
def test_swap_conversion_rejects(swap: int, memory: int) -> None:
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swap"):
        swap_to_v2(swap, memory)


def test_create_enables_controllers_in_every_ancestor(tmp_path: Path) -> None:
    e = Env(tmp_path)
    populate(f"{e.root}/box", {"cgroup.controllers": "cpu memory", "cgroup.subtree_control": ""})
    e.mgr.create()
    assert os.path.isdir(e.path)
    assert Path(e.root, "cgroup.subtree_control").read_text() == (
        "+cpuset +cpu +io +memory +hugetlb +pids"
    )
    assert Path(e.root, "box/cgroup.subtree_control").read_text() == "+cpu +memory"
    assert not os.path.exists(f"{e.path}/cgroup.subtree_control")  # the leaf delegates nothing


def test_create_can_limit_which_controllers(tmp_path: Path) -> None:
    root = fake_v2_root(str(tmp_path))
    V2Manager(f"{root}/c1", controllers=("pids",)).create()
    assert Path(root, "cgroup.subtree_control").read_text() == "+pids"
    V2Manager(f"{root}/c2", controllers=()).create()
    assert os.path.isdir(f"{root}/c2")


def test_mount_root_found_by_walking_up(tmp_path: Path) -> None:
    e = Env(tmp_path)
    populate(f"{e.root}/box", {"cgroup.controllers": "", "cgroup.subtree_control": ""})
    e.mgr.create()  # root= not given: found from the path
    assert Path(e.root, "cgroup.subtree_control").read_text() != ""


def test_apply_everything(env: Env) -> None:
    populate(env.path, {"io.bfq.weight": "default 100", "hugetlb.2MB.rsvd.max": "max"})
    writes = env.apply(
        {
            "memory": {"limit": 100 << 20, "reservation": 50 << 20, "swap": 300 << 20},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10, "idle": 0},
            "pids": {"limit": -1},
            "blockIO": {
                "weight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 90}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 30}],
            "devices": [{"allow": False, "access": "rwm"}],
            "unified": {"memory.high": str(90 << 20), "io.max": "8:0 wbps=1\n8:16 riops=2"},
        }
    )
    assert writes == [
        ("memory.swap.max", str(200 << 20)),
        ("memory.max", str(100 << 20)),
        ("memory.low", str(50 << 20)),
        ("cpu.idle", "0"),
        ("cpu.weight", "39"),
        ("cpu.max.burst", "10"),
        ("cpu.max", "50000 100000"),
        ("pids.max", "max"),
        ("io.bfq.weight", "300"),
        ("io.bfq.weight", "8:0 500"),
        ("io.max", "8:0 rbps=600"),
        ("io.max", "8:16 wiops=90"),
        ("hugetlb.2MB.max", str(1 << 30)),
        ("hugetlb.2MB.rsvd.max", str(1 << 30)),
        # devices: no write (needs eBPF); unified last, one write per line
        ("memory.high", str(90 << 20)),
        ("io.max", "8:0 wbps=1"),
        ("io.max", "8:16 riops=2"),
    ]


def test_io_weight_without_bfq_is_converted(env: Env) -> None:
    assert env.apply({"blockIO": {"weight": 500}}) == [("io.weight", "4950")]


@pytest.mark.parametrize(
    ("cpu", "value"),
    [({"quota": -1}, "max"), ({"period": 50000}, "max 50000"), ({"quota": 20000}, "20000")],
)
def test_cpu_max(env: Env, cpu: dict[str, int], value: str) -> None:
    assert env.apply({"cpu": cpu}) == [("cpu.max", value)]


def test_memory_unlimited_and_equal_swap(env: Env) -> None:
    assert env.apply({"memory": {"limit": -1}}) == [
        ("memory.swap.max", "max"),
        ("memory.max", "max"),
    ]
    assert env.apply({"memory": {"limit": 100, "swap": 100}}) == [
        ("memory.swap.max", "0"),
        ("memory.max", "100"),
    ]


def test_memory_swap_file_missing_is_fine_for_max_or_zero(env: Env) -> None:
    os.unlink(f"{env.path}/memory.swap.max")
    assert env.apply({"memory": {"limit": -1}}) == [
        ("memory.swap.max", "max"),
        ("memory.max", "max"),
    ]
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swap"):
        env.apply({"memory": {"limit": 100, "swap": 200}})


def test_check_before_update(env: Env) -> None:
    with pytest.raises(CgroupError, match="current usage 4096"):
        env.apply({"memory": {"limit": 4096, "checkBeforeUpdate": True}})
    env.apply({"memory": {"limit": 8192, "checkBeforeUpdate": True}})
    assert env.read("memory.max") == "8192"


@pytest.mark.parametrize("key", ["../cgroup.procs", "a/b", "..", ""])
def test_unified_rejects_paths(env: Env, key: str) -> None:
    with pytest.raises(CgroupError, match=r"linux\.resources\.unified"):
        env.apply({"unified": {key: "1"}})


def test_unified_names_a_missing_controller(env: Env) -> None:
    with pytest.raises(CgroupError, match="controller 'rdma' is not enabled"):
        env.apply({"unified": {"rdma.max": "x"}})


def test_realtime_is_an_error(env: Env) -> None:
    with pytest.raises(CgroupError, match=r"linux\.resources\.cpu\.realtime"):
        env.apply({"cpu": {"realtimeRuntime": 5}})


def test_v1_only_knobs_are_ignored(env: Env) -> None:
    doc = {"memory": {"swappiness": 5, "disableOOMKiller": True}, "network": {"classID": 3}}
    assert env.apply(doc) == []


def test_freeze_waits_for_events(env: Env) -> None:
    populate(env.path, {"cgroup.events": "populated 1\nfrozen 1\n"})
    env.mgr.freeze()
    assert env.read("cgroup.freeze") == "1"
    assert env.mgr.state() == "frozen"
    env.mgr.thaw()
    assert env.read("cgroup.freeze") == "0"
    assert env.mgr.state() == "thawed"


def test_pids_add_stats_destroy(env: Env) -> None:
    env.mgr.add(99)
    populate(f"{env.path}/sub", {"cgroup.procs": "5\n"})
    assert sorted(env.mgr.pids()) == [5, 99]
    assert env.mgr.stats() == {
        "memory": {
            "usage": 4096,
            "max_usage": 8192,
            "limit": None,
            "stat": {"anon": 20, "file": 10, "inactive_file": 5},
        },
        "cpu": {
            "usage_ns": 5000,
            "user_ns": 3000,
            "system_ns": 2000,
            "percpu_ns": [],
            "periods": 7,
            "throttled_periods": 2,
            "throttled_ns": 3000,
        },
        "pids": {"current": 3, "limit": None},
    }
    for d in (env.path, f"{env.path}/sub"):
        for f in os.listdir(d):
            if os.path.isfile(f"{d}/{f}"):
                os.unlink(f"{d}/{f}")  # a fake leaf's files; cgroupfs has no such step
    env.mgr.destroy()
    assert not os.path.exists(env.path)
    assert os.path.isdir(f"{env.root}/box")
    env.mgr.destroy()
