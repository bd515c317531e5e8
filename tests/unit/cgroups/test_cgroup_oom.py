"""Finding a process's OOM-kill counter from fake /proc files (v1, v2, hybrid)."""

from __future__ import annotations

from pathlib import Path

from skiff.cgroups import oom

V1_MOUNTS = """\
25 30 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
40 25 0:36 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
41 25 0:37 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
"""
V2_MOUNTS = "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n"


def fake_proc(tmp: Path, cgroup: str, mountinfo: str) -> str:
    (tmp / "7").mkdir(parents=True)
    (tmp / "7" / "cgroup").write_text(cgroup)
    (tmp / "self").mkdir()
    (tmp / "self" / "mountinfo").write_text(mountinfo)
    return str(tmp)


def test_v1_memory_hierarchy(tmp_path: Path) -> None:
    cgroup = "5:cpu,cpuacct:/skiff/abc\n4:memory:/skiff/abc\n0::/skiff/abc\n"
    proc = fake_proc(tmp_path, cgroup, V1_MOUNTS)
    want = "/sys/fs/cgroup/memory/skiff/abc/memory.oom_control"
    assert oom.counter_file(7, proc) == want


def test_v2_memory_events(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, "0::/skiff/abc\n", V2_MOUNTS)
    assert oom.counter_file(7, proc) == "/sys/fs/cgroup/skiff/abc/memory.events"


def test_no_process_no_file(tmp_path: Path) -> None:
    assert oom.counter_file(8, str(tmp_path)) == ""
    assert oom.oom_kills("") == 0
    assert oom.oom_kills(str(tmp_path / "missing")) == 0


def test_counts(tmp_path: Path) -> None:
    v1 = tmp_path / "memory.oom_control"
    v1.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    v2 = tmp_path / "memory.events"
    v2.write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n")
    old = tmp_path / "old.oom_control"  # kernels before 4.13 have no oom_kill line
    old.write_text("oom_kill_disable 0\nunder_oom 0\n")
    assert [oom.oom_kills(str(f)) for f in (v1, v2, old)] == [3, 2, 0]
