"""cgroups on this machine's real hierarchies (root only).

v1: /sys/fs/cgroup/<controller>; v2: the controller-less cgroup2 at
/sys/fs/cgroup/unified (hybrid hosts), where procs, freeze and cpu.stat work.
Every test uses its own cgroup name and removes it (and kills only the child
it started, by pid) even when it fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.cgroups import load_manager, open_manager
from skiff.cgroups.files import remove_tree
from skiff.cgroups.paths import detect_version
from skiff.cgroups.v2 import V2Manager
from skiff.oci.runtime_spec import Resources
from skiff.oci.spec_reader import Reader

pytestmark = pytest.mark.root

ROOT = "/sys/fs/cgroup"
UNIFIED = "/sys/fs/cgroup/unified"
IS_V1 = os.path.isdir(ROOT) and detect_version(ROOT) == 1


def res(doc: dict[str, object]) -> Resources:
    return Resources(Reader(doc, "linux.resources"))


def read(directory: str, name: str) -> str:
    return Path(directory, name).read_text().strip()


def block_device() -> tuple[int, int] | None:
    for name in sorted(os.listdir("/sys/block")):
        if not name.startswith(("loop", "zram", "ram")):
            major, minor = Path(f"/sys/block/{name}/dev").read_text().split(":")
            return int(major), int(minor)
    return None


@pytest.fixture
def unique() -> str:
    return f"skiff-cgtest-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "300"])
    try:
        yield child
    finally:
        os.kill(child.pid, signal.SIGKILL)  # our own child, by pid (thawed first below)
        child.wait()


def cleanup(dirs: list[str], child: subprocess.Popen[bytes] | None = None) -> None:
    """Undo a test, whatever state it stopped in: thaw (a frozen process cannot
    die), kill our own child by pid and reap it, then rmdir leaf-first."""
    for d in dirs:
        if os.path.exists(f"{d}/freezer.state"):
            Path(d, "freezer.state").write_text("THAWED")
        if os.path.exists(f"{d}/cgroup.freeze"):
            Path(d, "cgroup.freeze").write_text("0")
    if child is not None and child.returncode is None:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    for d in dirs:
        if os.path.exists(d):
            remove_tree(d)


@pytest.mark.skipif(not IS_V1, reason="needs a cgroup v1 host")
@pytest.mark.parametrize("absolute", [False, True])
def test_v1_full_lifecycle(unique: str, absolute: bool) -> None:
    cgroups_path = f"/{unique}/c1" if absolute else f"{unique}/c1"
    mgr = open_manager(cgroups_path, "c1")
    paths = mgr.paths()
    parents = [os.path.dirname(p) for p in paths.values()]
    child: subprocess.Popen[bytes] | None = None
    try:
        assert mgr.version == 1
        if not absolute:  # relative: below our own cgroup (memory is nested here)
            own = Path("/proc/self/cgroup").read_text()
            mem_own = next(line.split(":")[2] for line in own.splitlines() if ":memory:" in line)
            assert paths["memory"] == f"{ROOT}/memory{mem_own.rstrip('/')}/{unique}/c1"
        else:
            assert paths["memory"] == f"{ROOT}/memory/{unique}/c1"
        mgr.create()
        assert all(os.path.isdir(p) for p in paths.values())
        cpuset = paths["cpuset"]
        assert read(cpuset, "cpuset.cpus") == read(f"{ROOT}/cpuset", "cpuset.cpus")
        assert read(cpuset, "cpuset.mems") == read(f"{ROOT}/cpuset", "cpuset.mems")

        swap = os.path.exists(f"{paths['memory']}/memory.memsw.limit_in_bytes")
        doc: dict[str, object] = {
            "memory": {
                "limit": 64 << 20,
                "reservation": 32 << 20,
                "swappiness": 10,
                "kernel": 64 << 20,
                "kernelTCP": 16 << 20,
                **({"swap": 128 << 20} if swap else {}),
            },
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 32},
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "access": "rwm"},
            ],
        }
        dev = block_device()
        if dev:
            doc["blockIO"] = {
                "throttleReadBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": 1 << 20}],
                "throttleWriteIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 100}],
            }
        mgr.apply(res(doc))
        mem = paths["memory"]
        assert read(mem, "memory.limit_in_bytes") == str(64 << 20)
        assert read(mem, "memory.soft_limit_in_bytes") == str(32 << 20)
        assert read(mem, "memory.swappiness") == "10"
        if swap:
            assert read(mem, "memory.memsw.limit_in_bytes") == str(128 << 20)
        cpu = paths["cpu"]
        assert read(cpu, "cpu.shares") == "512"
        assert read(cpu, "cpu.cfs_quota_us") == "50000"
        assert read(cpu, "cpu.cfs_period_us") == "100000"
        assert read(cpuset, "cpuset.cpus") == "0"
        assert read(paths["pids"], "pids.max") == "32"
        assert read(paths["devices"], "devices.list").splitlines() == ["c 1:3 rwm", "c 136:* rwm"]
        if dev:
            assert read(paths["blkio"], "blkio.throttle.read_bps_device") == (
                f"{dev[0]}:{dev[1]} {1 << 20}"
            )

        # raise then lower again: memsw/limit ordering must satisfy the kernel both ways
        if swap:
            mgr.apply(res({"memory": {"limit": 256 << 20, "swap": 512 << 20}}))
            mgr.apply(res({"memory": {"limit": 32 << 20, "swap": 48 << 20}}))
            assert read(mem, "memory.limit_in_bytes") == str(32 << 20)
            assert read(mem, "memory.memsw.limit_in_bytes") == str(48 << 20)

        # the device rules hold: /dev/null is allowed, /dev/zero is not
        again = load_manager(paths)
        probe = subprocess.run(
            ["sh", "-c", "echo hi > /dev/null && ! head -c1 /dev/zero"],
            preexec_fn=lambda: again.add(os.getpid()),
            capture_output=True,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr

        child = subprocess.Popen(["sleep", "300"])
        again.add(child.pid)
        assert again.pids() == [child.pid]
        assert (
            f":memory:{mem[len(ROOT) + len('/memory') :]}"
            in Path(f"/proc/{child.pid}/cgroup").read_text()
        )

        again.freeze()
        assert again.state() == "frozen"
        assert read(paths["freezer"], "freezer.state") == "FROZEN"
        again.thaw()
        assert again.state() == "thawed"

        stats = again.stats()
        assert stats["pids"] == {"current": 1, "limit": 32}
        assert stats["memory"]["limit"] == ((32 << 20) if swap else (64 << 20))
        assert stats["memory"]["usage"] > 0
        assert stats["cpu"]["usage_ns"] >= 0
        assert "rss" in stats["memory"]["stat"] or "anon" in stats["memory"]["stat"]

        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        again.destroy()
        assert not any(os.path.exists(p) for p in paths.values())
    finally:
        cleanup(list(paths.values()) + list(dict.fromkeys(parents)), child)
    assert not any(os.path.exists(p) for p in parents + list(paths.values()))


@pytest.mark.skipif(not IS_V1, reason="needs a cgroup v1 host")
def test_v1_error_names_field(unique: str) -> None:
    mgr = open_manager(f"/{unique}", unique)
    try:
        mgr.create()
        with pytest.raises(Exception, match=r"^linux\.resources\.cpu\.shares: "):
            mgr.apply(res({"cpu": {"shares": 1 << 30}}))
        with pytest.raises(Exception, match=r"^linux\.resources\.cpu\.cpus: "):
            mgr.apply(res({"cpu": {"cpus": "4096"}}))
    finally:
        cleanup(list(mgr.paths().values()))
    assert not any(os.path.exists(p) for p in mgr.paths().values())


@pytest.mark.skipif(
    not os.path.exists(f"{UNIFIED}/cgroup.procs"), reason="no cgroup2 at /sys/fs/cgroup/unified"
)
def test_v2_procs_freeze_stats_on_unified(unique: str, sleeper: subprocess.Popen[bytes]) -> None:
    path = f"{UNIFIED}/{unique}/c1"
    # controllers=(): enable nothing, so the host's root subtree_control is untouched
    mgr = V2Manager(path, root=UNIFIED, controllers=())
    try:
        mgr.create()
        assert os.path.isdir(path)
        mgr.add(sleeper.pid)
        again = load_manager(mgr.paths())
        assert again.pids() == [sleeper.pid]
        assert f"0::/{unique}/c1" in Path(f"/proc/{sleeper.pid}/cgroup").read_text()
        again.freeze()
        assert again.state() == "frozen"
        assert "frozen 1" in read(path, "cgroup.events")
        again.thaw()
        assert again.state() == "thawed"
        assert "cpu" in again.stats()
        # move the child back out, then destroy
        Path(UNIFIED, "cgroup.procs").write_text(str(sleeper.pid))
        again.destroy()
        assert not os.path.exists(path)
    finally:
        if os.path.exists(path):
            for pid in read(path, "cgroup.procs").split():
                Path(UNIFIED, "cgroup.procs").write_text(pid)
        cleanup([path, f"{UNIFIED}/{unique}"])
    assert not os.path.exists(f"{UNIFIED}/{unique}")
