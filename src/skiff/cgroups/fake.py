"""Test doubles that ship with the package (as trio.testing does).

- `FakeManager`: a CgroupManager that records calls and keeps state in memory,
  for tests of code that drives cgroups (the runtime) without root.
- `fake_v1_root` / `fake_v2_root` / `populate_*_leaf`: plain directories with
  the control files a kernel would show, so the real backends run against a
  tmp dir. Regular files keep the last value written; pass a backend a
  `trace` list to see every write in order. The kernel populates a new cgroup
  directory itself; with a fake root, call `populate_*_leaf` after create().
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ~15 ms at import; mypy treats this name as True

if TYPE_CHECKING:
    from typing import Any

    from skiff.oci.runtime_spec import Resources


class FakeManager:
    version = 2

    def __init__(self, path: str = "/sys/fs/cgroup/fake") -> None:
        self.path = path
        self.calls: list[tuple[str, object]] = []
        self.members: list[int] = []
        self.applied: list[Resources] = []
        self.frozen = False
        self.exists = False

    def create(self) -> None:
        self.calls.append(("create", None))
        self.exists = True

    def add(self, pid: int) -> None:
        self.calls.append(("add", pid))
        self.members.append(pid)

    def join(self) -> None:
        self.add(os.getpid())

    def apply(self, resources: Resources) -> None:
        self.calls.append(("apply", resources))
        self.applied.append(resources)

    def pids(self) -> list[int]:
        return list(self.members)

    def freeze(self) -> None:
        self.calls.append(("freeze", None))
        self.frozen = True

    def thaw(self) -> None:
        self.calls.append(("thaw", None))
        self.frozen = False

    def state(self) -> str:
        return "frozen" if self.frozen else "thawed"

    def destroy(self) -> None:
        self.calls.append(("destroy", None))
        self.exists = False

    def paths(self) -> dict[str, str]:
        return {"": self.path}

    def stats(self) -> dict[str, Any]:
        return {"pids": {"current": len(self.members), "limit": None}}


UNLIMITED = "9223372036854771712"

V1_FILES: dict[str, dict[str, str]] = {
    "memory": {
        "memory.limit_in_bytes": UNLIMITED,
        "memory.memsw.limit_in_bytes": UNLIMITED,
        "memory.soft_limit_in_bytes": UNLIMITED,
        "memory.kmem.limit_in_bytes": UNLIMITED,
        "memory.kmem.tcp.limit_in_bytes": UNLIMITED,
        "memory.swappiness": "60",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n",
        "memory.usage_in_bytes": "4096",
        "memory.max_usage_in_bytes": "8192",
        "memory.stat": "cache 10\nrss 20\ntotal_inactive_file 5\n",
    },
    "cpu": {
        "cpu.shares": "1024",
        "cpu.cfs_period_us": "100000",
        "cpu.cfs_quota_us": "-1",
        "cpu.cfs_burst_us": "0",
        "cpu.idle": "0",
        "cpu.rt_period_us": "1000000",
        "cpu.rt_runtime_us": "0",
        "cpu.stat": "nr_periods 7\nnr_throttled 2\nthrottled_time 300\n",
    },
    "cpuacct": {
        "cpuacct.usage": "5000",
        "cpuacct.usage_user": "3000",
        "cpuacct.usage_sys": "2000",
        "cpuacct.usage_percpu": "4000 1000 \n",
    },
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
    "freezer": {"freezer.state": "THAWED", "freezer.self_freezing": "0"},
    "blkio": {
        "blkio.weight": "500",
        "blkio.weight_device": "",
        "blkio.leaf_weight": "500",
        "blkio.leaf_weight_device": "",
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
    },
    "pids": {"pids.max": "max", "pids.current": "3"},
    "hugetlb": {"hugetlb.2MB.limit_in_bytes": UNLIMITED},
    "net_cls": {"net_cls.classid": "0"},
    "net_prio": {"net_prio.ifpriomap": ""},
}

V2_FILES: dict[str, str] = {
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids",
    "cgroup.subtree_control": "",
    "cgroup.freeze": "0",
    "cgroup.events": "populated 1\nfrozen 0\n",
    "memory.max": "max",
    "memory.low": "0",
    "memory.high": "max",
    "memory.swap.max": "max",
    "memory.current": "4096",
    "memory.peak": "8192",
    "memory.stat": "anon 20\nfile 10\ninactive_file 5\n",
    "cpu.weight": "100",
    "cpu.max": "max 100000",
    "cpu.max.burst": "0",
    "cpu.idle": "0",
    "cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 7\n"
    "nr_throttled 2\nthrottled_usec 3\n",
    "cpuset.cpus": "",
    "cpuset.mems": "",
    "pids.max": "max",
    "pids.current": "3",
    "io.weight": "default 100",
    "io.max": "",
    "hugetlb.2MB.max": "max",
}


def populate(directory: str, contents: dict[str, str]) -> None:
    os.makedirs(directory, exist_ok=True)
    for name, text in contents.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)


def fake_v1_root(root: str, controllers: tuple[str, ...] | None = None) -> str:
    """A v1 layout under `root`: a directory per controller with its control files."""
    for name, contents in V1_FILES.items():
        if controllers is None or name in controllers:
            populate(os.path.join(root, name), contents)
    if controllers is None or "cpuset" in controllers:
        populate(os.path.join(root, "cpuset"), {"cpuset.cpus": "0-3", "cpuset.mems": "0"})
    return root


def fake_v2_root(root: str) -> str:
    """A v2 layout: `root` is the unified hierarchy's root (no limits of its own)."""
    populate(root, {k: V2_FILES[k] for k in ("cgroup.controllers", "cgroup.subtree_control")})
    populate(root, {"cgroup.procs": "", "cpu.stat": V2_FILES["cpu.stat"]})
    return root


def populate_v2_leaf(path: str) -> None:
    populate(path, V2_FILES | {"cgroup.procs": ""})


def populate_v1_leaf(paths: dict[str, str]) -> None:
    """What the kernel shows in a new cgroup directory, for each controller."""
    for controller, directory in paths.items():
        populate(directory, V1_FILES.get(controller, {}) | {"cgroup.procs": ""})


if TYPE_CHECKING:
    from skiff.cgroups.manager import CgroupManager

    _conforms: CgroupManager = FakeManager()  # mypy checks the fake keeps up with the protocol
