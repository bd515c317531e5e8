"""rootfs setup against the recording fake: option parsing, secure join, mount order."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from skiff.linux.syscalls import (
    MNT_DETACH,
    MS_BIND,
    MS_NOATIME,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_SLAVE,
    MS_STRICTATIME,
    MS_SYNCHRONOUS,
)
from skiff.oci.runtime_spec import RuntimeConfig, parse_config
from skiff.runtime.rootfs import (
    DEFAULT_DEVICES,
    RootfsError,
    cgroup_v1_binds,
    enter_rootfs,
    parse_mount_options,
    parse_mountinfo,
    prepare_rootfs,
    secure_join,
)
from skiff.testing.syscalls import RecordingSyscalls

DEFAULTS = MS_NOSUID | MS_NOEXEC | MS_NODEV

# The cgroup v1 layout of this machine kind (hybrid: v1 controllers + unified cgroup2).
HOST_MOUNTINFO = """\
22 1 0:20 / / rw,relatime - ext4 /dev/vda rw
31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
"""
HOST_CGROUP = """\
9:name=systemd:/
4:memory:/box/c1
2:cpuacct:/
1:cpu:/
7:net_cls,net_prio:/box
0::/
"""


def make_config(**fields: object) -> RuntimeConfig:
    doc: dict[str, object] = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}}
    linux = fields.pop("linux", {})
    doc.update(fields)
    doc["linux"] = {"namespaces": [{"type": "mount"}, {"type": "pid"}], **linux}  # type: ignore[dict-item]
    return parse_config(doc)


@pytest.fixture
def rootfs(tmp_path: Path) -> str:
    root = tmp_path / "rootfs"
    for d in ("bin", "etc", "dev", "proc", "sys", "tmp"):
        (root / d).mkdir(parents=True)
    return os.path.realpath(root)


# ---- options -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "flags", "propagation", "data"),
    [
        ([], 0, [], ""),
        (["ro"], MS_RDONLY, [], ""),
        (["ro", "rw"], 0, [], ""),
        (["rw", "ro"], MS_RDONLY, [], ""),
        (["nosuid", "nodev", "noexec"], DEFAULTS, [], ""),
        (["nosuid", "suid", "nodev", "dev", "noexec", "exec"], 0, [], ""),
        (["sync", "async"], 0, [], ""),
        (["sync"], MS_SYNCHRONOUS, [], ""),
        (["noatime", "atime"], 0, [], ""),
        (["relatime", "strictatime"], MS_RELATIME | MS_STRICTATIME, [], ""),
        (["relatime", "norelatime"], 0, [], ""),
        (["noatime"], MS_NOATIME, [], ""),
        (["bind"], MS_BIND, [], ""),
        (["rbind"], MS_BIND | MS_REC, [], ""),
        (["remount", "ro"], MS_REMOUNT | MS_RDONLY, [], ""),
        (["rprivate"], 0, [MS_PRIVATE | MS_REC], ""),
        (["shared", "rslave"], 0, [MS_SHARED, MS_SLAVE | MS_REC], ""),
        (["mode=755", "size=65536k"], 0, [], "mode=755,size=65536k"),
        (
            ["nosuid", "newinstance", "ptmxmode=0666", "gid=5"],
            MS_NOSUID,
            [],
            "newinstance,ptmxmode=0666,gid=5",
        ),
        (["tmpcopyup", "defaults"], 0, [], ""),
    ],
)
def test_parse_mount_options(
    options: list[str], flags: int, propagation: list[int], data: str
) -> None:
    opts = parse_mount_options(options)
    assert (opts.flags, opts.propagation, opts.data) == (flags, propagation, data)


@pytest.mark.parametrize("option", ["idmap", "rro", "rnosuid"])
def test_mount_setattr_options_are_refused(option: str) -> None:
    with pytest.raises(ValueError, match=option):
        parse_mount_options([option])


# ---- secure join -------------------------------------------------------------


def test_secure_join_plain_and_missing(rootfs: str) -> None:
    assert secure_join(rootfs, "/etc/hosts") == rootfs + "/etc/hosts"
    assert secure_join(rootfs, "no/such/dir") == rootfs + "/no/such/dir"
    assert secure_join(rootfs, "/") == rootfs
    assert secure_join(rootfs, "//etc/./x/") == rootfs + "/etc/x"


def test_secure_join_dotdot_stays_inside(rootfs: str) -> None:
    assert secure_join(rootfs, "/../../etc") == rootfs + "/etc"
    assert secure_join(rootfs, "/tmp/../../../../x") == rootfs + "/x"


def test_secure_join_absolute_symlink_is_rooted(rootfs: str) -> None:
    os.symlink("/etc", rootfs + "/link")
    assert secure_join(rootfs, "/link/passwd") == rootfs + "/etc/passwd"


def test_secure_join_relative_symlink_cannot_climb_out(rootfs: str) -> None:
    os.symlink("../../../../../../root", rootfs + "/tmp/up")
    assert secure_join(rootfs, "/tmp/up/.ssh") == rootfs + "/root/.ssh"


def test_secure_join_chain_and_final_component(rootfs: str) -> None:
    os.symlink("b", rootfs + "/a")
    os.symlink("/tmp/c", rootfs + "/b")
    assert secure_join(rootfs, "/a") == rootfs + "/tmp/c"


def test_secure_join_loop(rootfs: str) -> None:
    os.symlink("loop2", rootfs + "/loop1")
    os.symlink("loop1", rootfs + "/loop2")
    with pytest.raises(OSError, match="too many symlinks") as info:
        secure_join(rootfs, "/loop1/x")
    assert info.value.errno == errno.ELOOP


def test_mount_through_escaping_symlink_lands_inside(rootfs: str, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), rootfs + "/evil")
    os.symlink("../../../../" + str(outside), rootfs + "/evil2")
    config = make_config(
        mounts=[
            {"destination": "/evil/data", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/evil2/more", "type": "tmpfs", "source": "tmpfs"},
        ]
    )
    sys = RecordingSyscalls()
    prepare_rootfs(config, rootfs, sys)
    targets = [m[1] for m in sys.mounts()]
    inside = rootfs + str(outside)
    assert inside + "/data" in targets
    assert inside + "/more" in targets
    assert list(outside.iterdir()) == []
    assert all(str(t).startswith(rootfs) or t == "/" for t in targets)


# ---- prepare_rootfs ----------------------------------------------------------

DOCKERISH_MOUNTS: list[dict[str, object]] = [
    {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
]  # fmt: skip


def test_prepare_mount_order(rootfs: str, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    volume = tmp_path / "vol"
    volume.mkdir()
    mounts = [
        *DOCKERISH_MOUNTS,
        {"destination": "/etc/hosts", "type": "bind", "source": str(hosts), "options": ["rbind", "rprivate", "ro"]},
        {"destination": "/data", "type": "none", "source": str(volume), "options": ["rbind"]},
    ]  # fmt: skip
    config = make_config(mounts=mounts)
    sys = RecordingSyscalls(
        proc_self={"mountinfo": HOST_MOUNTINFO, "cgroup": HOST_CGROUP},
        host_paths={"/proc/kcore"},
    )
    prepare_rootfs(config, rootfs, sys)
    r = rootfs
    cg = r + "/sys/fs/cgroup"
    ro_bind = MS_BIND | MS_REMOUNT | MS_RDONLY | DEFAULTS
    assert sys.mounts() == [
        (None, "/", None, MS_SLAVE | MS_REC, None),
        (r, r, "bind", MS_BIND | MS_REC, None),
        ("proc", r + "/proc", "proc", DEFAULTS, None),
        ("tmpfs", r + "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"),
        ("devpts", r + "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ("sysfs", r + "/sys", "sysfs", DEFAULTS | MS_RDONLY, None),
        ("tmpfs", cg, "tmpfs", DEFAULTS, "mode=755"),
        ("/sys/fs/cgroup/cpu", cg + "/cpu", "bind", MS_BIND | MS_REC, None),
        (None, cg + "/cpu", None, ro_bind, None),
        ("/sys/fs/cgroup/cpuacct", cg + "/cpuacct", "bind", MS_BIND | MS_REC, None),
        (None, cg + "/cpuacct", None, ro_bind, None),
        ("/sys/fs/cgroup/memory/box/c1", cg + "/memory", "bind", MS_BIND | MS_REC, None),
        (None, cg + "/memory", None, ro_bind, None),
        ("/sys/fs/cgroup/systemd", cg + "/systemd", "bind", MS_BIND | MS_REC, None),
        (None, cg + "/systemd", None, ro_bind, None),
        ("/sys/fs/cgroup/net_cls,net_prio/box", cg + "/net_cls,net_prio", "bind", MS_BIND | MS_REC, None),
        (None, cg + "/net_cls,net_prio", None, ro_bind, None),
        (None, cg, None, ro_bind, None),
        ("mqueue", r + "/dev/mqueue", "mqueue", DEFAULTS, None),
        ("shm", r + "/dev/shm", "tmpfs", DEFAULTS, "mode=1777,size=67108864"),
        (str(hosts), r + "/etc/hosts", "bind", MS_BIND | MS_REC, None),
        (None, r + "/etc/hosts", None, MS_PRIVATE | MS_REC, None),
        (None, r + "/etc/hosts", None, MS_BIND | MS_REMOUNT | MS_RDONLY, None),
        (str(volume), r + "/data", "bind", MS_BIND | MS_REC, None),
    ]  # fmt: skip
    # Merged hierarchies get a symlink per controller, as on the host.
    assert os.readlink(cg + "/net_cls") == "net_cls,net_prio"
    assert os.readlink(cg + "/net_prio") == "net_cls,net_prio"
    # The mount point for a file bind is a file.
    assert os.path.isfile(r + "/etc/hosts")
    assert os.path.isdir(r + "/data")
    # Devices: the defaults, then the symlinks.
    nodes = [c[1:] for c in sys.calls if c[0] == "mknod"]
    assert [(p, stat.S_ISCHR(m), m & 0o777, os.major(d), os.minor(d)) for p, m, d in nodes] == [
        (r + "/dev/null", True, 0o666, 1, 3),
        (r + "/dev/zero", True, 0o666, 1, 5),
        (r + "/dev/full", True, 0o666, 1, 7),
        (r + "/dev/tty", True, 0o666, 5, 0),
        (r + "/dev/urandom", True, 0o666, 1, 9),
        (r + "/dev/random", True, 0o666, 1, 8),
    ]
    assert os.readlink(r + "/dev/ptmx") == "pts/ptmx"
    assert os.readlink(r + "/dev/fd") == "/proc/self/fd"
    assert os.readlink(r + "/dev/stdin") == "/proc/self/fd/0"
    assert os.readlink(r + "/dev/stdout") == "/proc/self/fd/1"
    assert os.readlink(r + "/dev/stderr") == "/proc/self/fd/2"
    assert os.readlink(r + "/dev/core") == "/proc/kcore"


def test_cgroup_v1_binds_from_host_layout() -> None:
    binds = cgroup_v1_binds(HOST_CGROUP, HOST_MOUNTINFO)
    assert [(b.name, b.source) for b in binds] == [
        ("cpu", "/sys/fs/cgroup/cpu"),
        ("cpuacct", "/sys/fs/cgroup/cpuacct"),
        ("memory", "/sys/fs/cgroup/memory/box/c1"),
        ("systemd", "/sys/fs/cgroup/systemd"),
        ("net_cls,net_prio", "/sys/fs/cgroup/net_cls,net_prio/box"),
    ]


def test_cgroup_with_cgroupns_mounts_hierarchies(rootfs: str) -> None:
    config = make_config(
        mounts=[{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"}],
        linux={"namespaces": [{"type": "mount"}, {"type": "pid"}, {"type": "cgroup"}]},
    )
    sys = RecordingSyscalls(proc_self={"mountinfo": HOST_MOUNTINFO, "cgroup": HOST_CGROUP})
    prepare_rootfs(config, rootfs, sys)
    cg = rootfs + "/sys/fs/cgroup"
    assert sys.mounts()[2:5] == [
        ("tmpfs", cg, "tmpfs", DEFAULTS, "mode=755"),
        ("cgroup", cg + "/cpu", "cgroup", DEFAULTS, "cpu"),
        ("cgroup", cg + "/cpuacct", "cgroup", DEFAULTS, "cpuacct"),
    ]
    assert ("cgroup", cg + "/systemd", "cgroup", DEFAULTS, "name=systemd") in sys.mounts()


def test_cgroup_v2_host_mounts_cgroup2(rootfs: str) -> None:
    mountinfo = (
        "22 1 0:20 / / rw - ext4 /dev/vda rw\n30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    )
    config = make_config(
        mounts=[{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]}]
    )  # fmt: skip
    sys = RecordingSyscalls(proc_self={"mountinfo": mountinfo, "cgroup": "0::/box\n"})
    prepare_rootfs(config, rootfs, sys)
    assert sys.mounts()[2] == ("cgroup2", rootfs + "/sys/fs/cgroup", "cgroup2", MS_RDONLY, None)
    # Refused without a cgroup namespace: fall back to our own cgroup, bound.
    sys = RecordingSyscalls(proc_self={"mountinfo": mountinfo, "cgroup": "0::/box\n"})
    sys.fail("mount", rootfs + "/sys/fs/cgroup", errno.EPERM, times=1)
    prepare_rootfs(config, rootfs, sys)
    assert sys.mounts()[3] == ("/sys/fs/cgroup/box", rootfs + "/sys/fs/cgroup", "bind", MS_BIND | MS_REC, None)  # fmt: skip


def test_tmpfs_ro_is_remounted_and_dev_ro_is_deferred(rootfs: str) -> None:
    config = make_config(
        mounts=[
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nosuid"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["ro", "nodev"]},
        ]
    )  # fmt: skip
    sys = RecordingSyscalls()
    prepare_rootfs(config, rootfs, sys)
    assert sys.mounts()[2:] == [
        ("tmpfs", rootfs + "/dev", "tmpfs", MS_NOSUID, None),
        ("tmpfs", rootfs + "/run", "tmpfs", MS_NODEV, None),
        (None, rootfs + "/run", "tmpfs", MS_NODEV | MS_RDONLY | MS_REMOUNT, None),
    ]
    sys = RecordingSyscalls()
    enter_rootfs(config, rootfs, sys)
    assert (None, "/dev", None, MS_RDONLY | MS_NOSUID | MS_REMOUNT, None) in sys.mounts()


def test_shared_parent_mount_is_made_private(rootfs: str) -> None:
    mountinfo = f"22 1 0:20 / / rw shared:1 - ext4 /dev/vda rw\n23 22 0:21 / {os.path.dirname(rootfs)} rw shared:7 - tmpfs tmpfs rw\n"  # fmt: skip
    config = make_config(linux={"rootfsPropagation": "rshared"})
    sys = RecordingSyscalls(proc_self={"mountinfo": mountinfo})
    prepare_rootfs(config, rootfs, sys)
    assert sys.mounts()[:3] == [
        (None, "/", None, MS_SHARED | MS_REC, None),
        (None, os.path.dirname(rootfs), None, MS_PRIVATE, None),
        (rootfs, rootfs, "bind", MS_BIND | MS_REC, None),
    ]


def test_linux_devices_mode_owner(rootfs: str) -> None:
    config = make_config(
        linux={
            "devices": [
                {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 7, "gid": 8},
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
                {"path": "/dev/myfifo", "type": "p"},
            ]
        }
    )  # fmt: skip
    sys = RecordingSyscalls()
    prepare_rootfs(config, rootfs, sys)
    nodes = {c[1]: c[2:] for c in sys.calls if c[0] == "mknod"}
    assert nodes[rootfs + "/dev/fuse"] == (stat.S_IFCHR | 0o640, os.makedev(10, 229))
    assert nodes[rootfs + "/dev/null"] == (stat.S_IFCHR | 0o600, os.makedev(1, 3))
    assert nodes[rootfs + "/dev/myfifo"] == (stat.S_IFIFO | 0o666, 0)
    assert ("lchown", rootfs + "/dev/fuse", 7, 8) in sys.calls
    assert len([c for c in sys.calls if c[0] == "mknod"]) == 8  # null given once


def test_mknod_eperm_falls_back_to_bind(rootfs: str) -> None:
    sys = RecordingSyscalls()
    sys.fail("mknod", rootfs + "/dev/zero", errno.EPERM)
    prepare_rootfs(make_config(), rootfs, sys)
    assert ("/dev/zero", rootfs + "/dev/zero", "bind", MS_BIND, None) in sys.mounts()
    assert os.path.isfile(rootfs + "/dev/zero")


def test_user_namespace_binds_every_device(rootfs: str) -> None:
    config = make_config(
        linux={
            "namespaces": [{"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        }
    )
    sys = RecordingSyscalls()
    prepare_rootfs(config, rootfs, sys)
    assert not [c for c in sys.calls if c[0] == "mknod"]
    binds = [m for m in sys.mounts() if m[2] == "bind" and m[0] != rootfs]
    assert [m[0] for m in binds] == [p for p, *_ in DEFAULT_DEVICES]


def test_dev_bind_skips_device_setup(rootfs: str) -> None:
    config = make_config(mounts=[{"destination": "/dev", "type": "bind", "source": "/dev", "options": ["rbind"]}])  # fmt: skip
    sys = RecordingSyscalls()
    prepare_rootfs(config, rootfs, sys)
    assert not [c for c in sys.calls if c[0] == "mknod"]
    assert not os.path.lexists(rootfs + "/dev/ptmx")


def test_console_is_bound(rootfs: str) -> None:
    sys = RecordingSyscalls()
    prepare_rootfs(make_config(), rootfs, sys, console_slave="/dev/null")
    assert sys.mounts()[-1] == ("/dev/null", rootfs + "/dev/console", "bind", MS_BIND, None)
    assert os.path.isfile(rootfs + "/dev/console")


def test_relative_bind_source_needs_bundle(rootfs: str, tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    config = make_config(mounts=[{"destination": "/conf", "source": "conf", "options": ["bind"]}])
    with pytest.raises(RootfsError, match=r"mounts\[0\] \(/conf\): .*relative"):
        prepare_rootfs(config, rootfs, RecordingSyscalls())
    sys = RecordingSyscalls()
    prepare_rootfs(config, rootfs, sys, bundle=str(tmp_path))
    assert (str(tmp_path / "conf"), rootfs + "/conf", "bind", MS_BIND, None) in sys.mounts()


def test_errors_name_the_mount(rootfs: str, tmp_path: Path) -> None:
    config = make_config(
        mounts=[
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/x", "source": str(tmp_path / "missing"), "options": ["rbind"]},
        ]
    )
    with pytest.raises(
        RootfsError, match=r"mounts\[1\] \(/x\): bind source does not exist"
    ) as info:
        prepare_rootfs(config, rootfs, RecordingSyscalls())
    assert info.value.errno == errno.ENOENT
    sys = RecordingSyscalls()
    sys.fail("mount", rootfs + "/proc", errno.EPERM)
    with pytest.raises(RootfsError, match=r"mounts\[0\] \(/proc\): mount proc .*Operation not permitted"):  # fmt: skip
        prepare_rootfs(config, rootfs, sys)


def test_proc_on_a_file_is_refused(rootfs: str) -> None:
    Path(rootfs, "proc").rmdir()
    Path(rootfs, "proc").write_text("")
    config = make_config(mounts=[{"destination": "/proc", "type": "proc", "source": "proc"}])
    with pytest.raises(RootfsError, match=r"mounts\[0\] \(/proc\): proc must be mounted on a directory"):  # fmt: skip
        prepare_rootfs(config, rootfs, RecordingSyscalls())


# ---- enter_rootfs ------------------------------------------------------------


def test_enter_pivots_masks_and_locks(rootfs: str) -> None:
    config = make_config(
        root={"path": "rootfs", "readonly": True},
        linux={
            "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/missing"],
            "readonlyPaths": ["/proc/sys", "/proc/gone"],
            "rootfsPropagation": "shared",
        },
    )
    sys = RecordingSyscalls(statvfs={"/proc/sys": MS_NOSUID | MS_RELATIME, "/": MS_NODEV})
    sys.fail("mount", "/proc/missing", errno.ENOENT)
    sys.fail("mount", "/proc/gone", errno.ENOENT)
    sys.fail("mount", "/proc/acpi", errno.ENOTDIR, times=1)  # a directory
    enter_rootfs(config, rootfs, sys)
    assert sys.calls[:9] == [
        ("open", "/"),
        ("open", rootfs),
        ("fchdir", rootfs),
        ("pivot_root", ".", "."),
        ("fchdir", "/"),
        ("mount", None, ".", None, MS_SLAVE | MS_REC, None),
        ("umount2", ".", MNT_DETACH),
        ("close", rootfs),
        ("close", "/"),
    ]
    assert sys.calls[9] == ("chdir", "/")
    assert sys.mounts()[1:] == [
        ("/dev/null", "/proc/kcore", None, MS_BIND, None),
        ("/dev/null", "/proc/acpi", None, MS_BIND, None),
        ("tmpfs", "/proc/acpi", "tmpfs", MS_RDONLY, None),
        ("/dev/null", "/proc/missing", None, MS_BIND, None),
        ("/proc/sys", "/proc/sys", None, MS_BIND | MS_REC, None),
        ("/proc/sys", "/proc/sys", None, MS_BIND | MS_REMOUNT | MS_RDONLY | DEFAULTS | MS_RELATIME, None),
        ("/proc/gone", "/proc/gone", None, MS_BIND | MS_REC, None),
        (None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NODEV, None),
        (None, "/", None, MS_SHARED, None),
    ]  # fmt: skip


def test_enter_without_options_only_pivots(rootfs: str) -> None:
    sys = RecordingSyscalls()
    enter_rootfs(make_config(), rootfs, sys)
    assert sys.mounts() == [(None, ".", None, MS_SLAVE | MS_REC, None)]


def test_mountinfo_unescapes_paths() -> None:
    (info,) = parse_mountinfo("40 31 0:37 / /mnt/a\\040b rw - tmpfs tmp\\011fs rw,size=1k\n")
    assert info.mountpoint == "/mnt/a b"
    assert info.source == "tmp\tfs"
    assert info.super_options == ["rw", "size=1k"]
