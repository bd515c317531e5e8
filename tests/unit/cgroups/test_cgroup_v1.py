"""The v1 backend against a fake root: every file written, in order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skiff.cgroups import CgroupError
from skiff.cgroups.fake import FakeManager, fake_v1_root, populate, populate_v1_leaf
from skiff.cgroups.paths import v1_paths
from skiff.cgroups.v1 import V1Manager, device_rule
from skiff.oci.runtime_spec import DeviceRule, Resources
from skiff.oci.spec_reader import Reader


def res(doc: dict[str, object]) -> Resources:
    return Resources(Reader(doc, "linux.resources"))


class Env:
    def __init__(self, root: Path, controllers: tuple[str, ...] | None = None) -> None:
        self.root = fake_v1_root(str(root), controllers)
        self.trace: list[tuple[str, str]] = []
        self.mgr = V1Manager(v1_paths(self.root, "/box/c1"), trace=self.trace)
        self.mgr.create()
        populate_v1_leaf(self.mgr.paths())  # what the kernel would do on mkdir
        self.trace.clear()

    def read(self, controller: str, name: str) -> str:
        return Path(self.mgr.paths()[controller], name).read_text()

    def writes(self) -> list[tuple[str, str]]:
        return [(os.path.relpath(p, self.root), v) for p, v in self.trace]

    def apply(self, doc: dict[str, object]) -> list[tuple[str, str]]:
        self.trace.clear()
        self.mgr.apply(res(doc))
        return self.writes()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_create_makes_every_hierarchy(tmp_path: Path) -> None:
    root = fake_v1_root(str(tmp_path))
    mgr = V1Manager(v1_paths(root, "/a/b"))
    mgr.create()
    mgr.create()  # idempotent
    for d in mgr.paths().values():
        assert os.path.isdir(d)


def test_create_copies_cpuset_into_empty_levels(tmp_path: Path) -> None:
    root = fake_v1_root(str(tmp_path), ("cpuset",))
    populate(f"{root}/cpuset/parent", {"cpuset.cpus": "", "cpuset.mems": ""})
    trace: list[tuple[str, str]] = []
    V1Manager(v1_paths(root, "/parent/c1"), trace=trace).create()
    assert Path(root, "cpuset/parent/cpuset.cpus").read_text() == "0-3"
    assert Path(root, "cpuset/parent/cpuset.mems").read_text() == "0"
    assert os.path.isdir(f"{root}/cpuset/parent/c1")


def test_apply_everything_writes_runc_files_in_order(env: Env) -> None:
    writes = env.apply(
        {
            "memory": {
                "limit": 100 << 20,
                "reservation": 50 << 20,
                "swap": 200 << 20,
                "kernel": 64 << 20,
                "kernelTCP": 16 << 20,
                "swappiness": 10,
                "disableOOMKiller": True,
            },
            "cpu": {
                "shares": 512,
                "quota": 50000,
                "period": 100000,
                "burst": 1000,
                "realtimeRuntime": 950,
                "realtimePeriod": 1000,
                "cpus": "0-1",
                "mems": "0",
                "idle": 1,
            },
            "pids": {"limit": 64},
            "blockIO": {
                "weight": 300,
                "leafWeight": 200,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 700}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 80}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 90}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 30}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "access": "rw"},
                {"allow": False, "type": "b", "major": 8, "minor": 0, "access": "w"},
            ],
        }
    )
    m, c, s, b = "memory/box/c1/", "cpu/box/c1/", "cpuset/box/c1/", "blkio/box/c1/"
    assert writes == [
        # current limit (unlimited) is above the new memsw: limit first
        (m + "memory.limit_in_bytes", str(100 << 20)),
        (m + "memory.memsw.limit_in_bytes", str(200 << 20)),
        (m + "memory.kmem.limit_in_bytes", str(64 << 20)),
        (m + "memory.kmem.tcp.limit_in_bytes", str(16 << 20)),
        (m + "memory.soft_limit_in_bytes", str(50 << 20)),
        (m + "memory.oom_control", "1"),
        (m + "memory.swappiness", "10"),
        (c + "cpu.shares", "512"),
        (c + "cpu.cfs_period_us", "100000"),
        (c + "cpu.cfs_burst_us", "1000"),
        (c + "cpu.cfs_quota_us", "50000"),
        (c + "cpu.idle", "1"),
        (c + "cpu.rt_period_us", "1000"),
        (c + "cpu.rt_runtime_us", "950"),
        (s + "cpuset.cpus", "0-1"),
        (s + "cpuset.mems", "0"),
        ("pids/box/c1/pids.max", "64"),
        (b + "blkio.weight", "300"),
        (b + "blkio.leaf_weight", "200"),
        (b + "blkio.weight_device", "8:0 500"),
        (b + "blkio.leaf_weight_device", "8:0 300"),
        (b + "blkio.throttle.read_bps_device", "8:0 600"),
        (b + "blkio.throttle.write_bps_device", "8:0 700"),
        (b + "blkio.throttle.read_iops_device", "8:16 80"),
        (b + "blkio.throttle.write_iops_device", "8:16 90"),
        ("hugetlb/box/c1/hugetlb.2MB.limit_in_bytes", str(1 << 30)),
        ("net_cls/box/c1/net_cls.classid", "1048577"),
        ("net_prio/box/c1/net_prio.ifpriomap", "eth0 5"),
        ("devices/box/c1/devices.deny", "a"),
        ("devices/box/c1/devices.allow", "c 1:3 rwm"),
        ("devices/box/c1/devices.allow", "c 136:* rw"),
        ("devices/box/c1/devices.deny", "b 8:0 w"),
    ]
    assert env.read("memory", "memory.limit_in_bytes") == str(100 << 20)
    assert env.read("pids", "pids.max") == "64"


def test_memory_raise_writes_memsw_first(env: Env) -> None:
    env.apply({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    writes = env.apply({"memory": {"limit": 300 << 20, "swap": 400 << 20}})
    assert [w[0].rsplit("/", 1)[1] for w in writes] == [
        "memory.memsw.limit_in_bytes",
        "memory.limit_in_bytes",
    ]
    writes = env.apply({"memory": {"limit": 50 << 20, "swap": 80 << 20}})
    assert [w[0].rsplit("/", 1)[1] for w in writes] == [
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
    ]


def test_memory_unlimited_also_unlimits_swap(env: Env) -> None:
    writes = env.apply({"memory": {"limit": -1}})
    assert [(w[0].rsplit("/", 1)[1], w[1]) for w in writes] == [
        ("memory.memsw.limit_in_bytes", "-1"),
        ("memory.limit_in_bytes", "-1"),
    ]


def test_memory_swap_skipped_without_swap_accounting(env: Env) -> None:
    os.unlink(os.path.join(env.mgr.paths()["memory"], "memory.memsw.limit_in_bytes"))
    writes = env.apply({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    assert [w[0].rsplit("/", 1)[1] for w in writes] == ["memory.limit_in_bytes"]


def test_zero_means_unset_except_for_pids(env: Env) -> None:
    assert env.apply({"memory": {"limit": 0, "reservation": 0}, "cpu": {"shares": 0}}) == []
    assert env.apply({"pids": {"limit": 0}}) == [("pids/box/c1/pids.max", "0")]
    assert env.apply({"pids": {"limit": -1}}) == [("pids/box/c1/pids.max", "max")]


def test_bfq_weight_files_when_no_cfq(env: Env) -> None:
    d = env.mgr.paths()["blkio"]
    os.unlink(os.path.join(d, "blkio.weight"))
    populate(d, {"blkio.bfq.weight": "100", "blkio.bfq.weight_device": ""})
    writes = env.apply(
        {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 50}]}}
    )
    assert writes == [
        ("blkio/box/c1/blkio.bfq.weight", "300"),
        ("blkio/box/c1/blkio.bfq.weight_device", "8:0 50"),
    ]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
        ({"hugepageLimits": [{"pageSize": "1GB", "limit": 1}]}, "hugepageLimits[0]"),
        ({"unified": {"memory.high": "1"}}, "linux.resources.unified"),
    ],
)
def test_errors_name_the_field(env: Env, doc: dict[str, object], field: str) -> None:
    with pytest.raises(CgroupError) as info:
        env.mgr.apply(res(doc))
    assert field in info.value.field


def test_missing_file_error_names_field(env: Env) -> None:
    os.unlink(os.path.join(env.mgr.paths()["pids"], "pids.max"))
    with pytest.raises(CgroupError, match=r"^linux\.resources\.pids\.limit: writing '5'"):
        env.mgr.apply(res({"pids": {"limit": 5}}))


def test_unmounted_controller_is_an_error_only_when_used(tmp_path: Path) -> None:
    e = Env(tmp_path, ("memory", "devices", "freezer"))
    e.mgr.apply(res({"memory": {"limit": 1 << 20}}))
    with pytest.raises(CgroupError, match="pids cgroup controller is not mounted"):
        e.mgr.apply(res({"pids": {"limit": 5}}))


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        ({"allow": False}, "a"),
        ({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}, "c 1:3 r"),
        ({"allow": True, "type": "b", "minor": 3}, "b *:3 rwm"),
        ({"allow": True, "type": "c", "major": -1, "minor": -1, "access": "m"}, "c *:* m"),
    ],
)
def test_device_rule_lines(rule: dict[str, object], line: str) -> None:
    assert device_rule(DeviceRule(Reader(rule))) == line


def test_add_writes_every_distinct_hierarchy_and_pids_recurse(env: Env) -> None:
    env.mgr.add(4242)
    assert env.read("memory", "cgroup.procs") == "4242"
    assert all(Path(d, "cgroup.procs").read_text() == "4242" for d in env.mgr.paths().values())
    child = os.path.join(env.mgr.paths()["devices"], "sub")
    populate(child, {"cgroup.procs": "7\n8\n"})
    assert sorted(env.mgr.pids()) == [7, 8, 4242]


def test_freeze_thaw_state(env: Env) -> None:
    assert env.mgr.state() == "thawed"
    env.mgr.freeze()
    assert env.read("freezer", "freezer.state") == "FROZEN"
    populate(env.mgr.paths()["freezer"], {"freezer.self_freezing": "1"})
    assert env.mgr.state() == "frozen"
    populate(env.mgr.paths()["freezer"], {"freezer.self_freezing": "0"})
    assert env.mgr.state() == "thawed"  # frozen only through an ancestor
    env.mgr.thaw()
    assert env.read("freezer", "freezer.state") == "THAWED"


def test_stats(env: Env) -> None:
    assert env.mgr.stats() == {
        "memory": {
            "usage": 4096,
            "max_usage": 8192,
            "limit": None,
            "stat": {"cache": 10, "rss": 20, "total_inactive_file": 5},
        },
        "cpu": {
            "usage_ns": 5000,
            "user_ns": 3000,
            "system_ns": 2000,
            "percpu_ns": [4000, 1000],
            "periods": 7,
            "throttled_periods": 2,
            "throttled_ns": 300,
        },
        "pids": {"current": 3, "limit": None},
    }


def test_destroy_removes_leaf_and_children_only(tmp_path: Path) -> None:
    root = fake_v1_root(str(tmp_path))
    mgr = V1Manager(v1_paths(root, "/box/c1"))
    mgr.create()
    os.makedirs(os.path.join(mgr.paths()["memory"], "child/grandchild"))
    mgr.destroy()
    for d in mgr.paths().values():
        assert not os.path.exists(d)
        assert os.path.isdir(os.path.dirname(d))  # /box stays, as with runc
    mgr.destroy()  # gone already: fine


def test_cpus_and_mems_need_only_cpuset(tmp_path: Path) -> None:
    e = Env(tmp_path, ("cpuset", "memory"))
    assert e.apply({"cpu": {"cpus": "1", "mems": "0"}}) == [
        ("cpuset/box/c1/cpuset.cpus", "1"),
        ("cpuset/box/c1/cpuset.mems", "0"),
    ]


def test_fake_manager_records() -> None:
    fake = FakeManager()
    fake.create()
    fake.add(5)
    fake.freeze()
    assert fake.state() == "frozen"
    assert fake.pids() == [5]
    assert [c[0] for c in fake.calls] == ["create", "add", "freeze"]
