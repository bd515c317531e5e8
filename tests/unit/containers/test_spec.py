"""build_spec, field by field, against what dockerd 20.10 + containerd wrote for the same
`docker run` flags on this machine kind (see tests/root/containers/test_dockerd_spec.py for
the live comparison)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from skiff.api.container_create import parse_create
from skiff.containers.devices import HostDevice
from skiff.containers.spec import (
    DEFAULT_CAPABILITIES,
    ContainerFiles,
    build_spec,
    container_env,
    join_namespaces,
    process_args,
    stop_signal,
    volume_targets,
)
from skiff.errors import InvalidArgument
from skiff.oci.image import ImageConfig
from skiff.services.container_types import ContainerConfig
from skiff.testing.containers import make_image, pinned_host

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FILES = ContainerFiles(hostname="/c/hostname", hosts="/c/hosts", resolv_conf="/c/resolv.conf")
ID = "f16a7731c534786421d3a1cf26ee1f79afe7d0b7e6d0a7df3d81951294bdf07c"
IMAGE = make_image(cmd=["sleep", "100"], env=[PATH, "FOO=img"], working_dir="/w")


@pytest.fixture
def rootfs(tmp_path: Path) -> str:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        "alice:x:1000:1000::/home/alice:/bin/sh\n"
    )
    (etc / "group").write_text(
        "root:x:0:\nnobody:x:65534:\nwheel:x:10:alice,nobody\nalice:x:1000:\nstaff:x:50:alice\n"
    )
    return str(tmp_path)


def spec(rootfs: str, image: Any = IMAGE, host: Any = None, **kw: Any) -> dict[str, Any]:
    """build_spec for a body made of Config `kw` (HostConfig under "HostConfig")."""
    b = {"Image": "busybox", **kw}
    create = parse_create(b, ncpus=2)
    extra = {k: kw.pop(k) for k in ("volumes", "namespaces", "shm_path") if k in kw}
    return build_spec(
        create, image, rootfs, FILES, container_id=ID, host=host or pinned_host(), **extra
    )


def mounts(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["destination"]: m for m in s["mounts"]}


def test_plain_run_matches_dockerd(rootfs: str) -> None:
    s = spec(rootfs)
    p = s["process"]
    assert p["args"] == ["sleep", "100"]
    assert p["env"] == [PATH, "HOSTNAME=f16a7731c534", "FOO=img"]
    assert p["cwd"] == "/w"
    assert p["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert p["capabilities"] == {
        k: list(DEFAULT_CAPABILITIES) for k in ("bounding", "effective", "permitted")
    }
    assert p["oomScoreAdj"] == 0
    assert "terminal" not in p
    assert "noNewPrivileges" not in p
    assert s["hostname"] == "f16a7731c534"
    assert s["root"] == {"path": rootfs}
    assert os.path.isdir(os.path.join(rootfs, "w"))  # the working directory is made
    assert [(m["destination"], m["type"], m["source"], m["options"]) for m in s["mounts"]] == [
        ("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        ("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        ("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
        ("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        ("/sys/fs/cgroup", "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"]),
        ("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        ("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]),
        ("/etc/resolv.conf", "bind", "/c/resolv.conf", ["rbind", "rprivate"]),
        ("/etc/hostname", "bind", "/c/hostname", ["rbind", "rprivate"]),
        ("/etc/hosts", "bind", "/c/hosts", ["rbind", "rprivate"]),
    ]  # fmt: skip
    linux = s["linux"]
    assert linux["sysctl"] == {
        "net.ipv4.ip_unprivileged_port_start": "0",
        "net.ipv4.ping_group_range": "0 2147483647",
    }
    assert linux["namespaces"] == [{"type": t} for t in ("mount", "network", "uts", "pid", "ipc")]
    assert linux["cgroupsPath"] == "/skiff/" + ID
    assert linux["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert len(linux["resources"]["devices"]) == 8
    assert linux["resources"]["memory"] == {}
    assert linux["resources"]["cpu"] == {"shares": 0}
    assert "/proc/kcore" in linux["maskedPaths"]
    assert "/sys/firmware" in linux["maskedPaths"]
    assert linux["readonlyPaths"] == [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ]
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert linux["seccomp"]["architectures"][0] == "SCMP_ARCH_X86_64"


def test_tty_and_console(rootfs: str) -> None:
    s = spec(rootfs, Tty=True, HostConfig={"ConsoleSize": [30, 90]})
    assert s["process"]["terminal"] is True
    assert s["process"]["consoleSize"] == {"height": 30, "width": 90}
    assert s["process"]["env"] == [PATH, "HOSTNAME=f16a7731c534", "TERM=xterm", "FOO=img"]


def test_env_overrides_in_place(rootfs: str) -> None:
    s = spec(rootfs, Env=["FOO=bar", "PATH=/x:/bin", "HOSTNAME"], Hostname="myhost")
    assert s["process"]["env"] == ["PATH=/x:/bin", "FOO=bar"]
    assert s["hostname"] == "myhost"


@pytest.mark.parametrize(
    ("user", "group_add", "want"),
    [
        ("nobody", ["10", "staff"], (65534, 65534, [65534, 10, 10, 50])),
        ("alice", [], (1000, 1000, [1000, 10, 50])),
        ("1000:1000", [], (1000, 1000, [1000])),
        ("1234", [], (1234, 0, [0])),
        ("alice:wheel", [], (1000, 10, [10])),
        ("alice", ["12345"], (1000, 1000, [1000, 10, 50, 12345])),
    ],
)
def test_users_as_dockerd(
    rootfs: str, user: str, group_add: list[str], want: tuple[int, int, list[int]]
) -> None:
    s = spec(rootfs, User=user, HostConfig={"GroupAdd": group_add})
    u = s["process"]["user"]
    assert (u["uid"], u["gid"], u["additionalGids"]) == want
    assert set(s["process"]["capabilities"]) == {"bounding"}  # non-root: no effective set


def test_unknown_user_and_group(rootfs: str) -> None:
    with pytest.raises(
        InvalidArgument, match="unable to find user bob: no matching entries in passwd file"
    ):
        spec(rootfs, User="bob")
    with pytest.raises(
        InvalidArgument, match="Unable to find group nope: no matching entries in group file"
    ):
        spec(rootfs, HostConfig={"GroupAdd": ["nope"]})


def test_image_user_and_entrypoint(rootfs: str) -> None:
    image = make_image(cmd=["sleep", "100"], entrypoint=["/bin/sh", "-c"], user="alice")
    s = spec(rootfs, image=image)
    assert s["process"]["args"] == ["/bin/sh", "-c", "sleep", "100"]
    assert s["process"]["cwd"] == "/"
    assert s["process"]["user"]["uid"] == 1000


def test_process_args_merge() -> None:
    img = ImageConfig(cmd=["sleep", "100"], entrypoint=["/bin/sh", "-c"])
    cfg = ContainerConfig
    assert process_args(cfg("i"), img) == ["/bin/sh", "-c", "sleep", "100"]
    assert process_args(cfg("i", cmd=("ls",)), img) == ["/bin/sh", "-c", "ls"]
    assert process_args(cfg("i", entrypoint=("echo",)), img) == ["echo"]  # cmd not inherited
    assert process_args(cfg("i", entrypoint=("",), cmd=("ls",)), img) == ["ls"]
    assert process_args(cfg("i", entrypoint=(), cmd=None), img) == ["sleep", "100"]
    with pytest.raises(InvalidArgument, match="No command specified"):
        process_args(cfg("i", entrypoint=("",)), img)
    with pytest.raises(InvalidArgument, match="No command specified"):
        process_args(cfg("i"), ImageConfig())


def test_env_without_request_env() -> None:
    env = container_env(ContainerConfig("i"), ImageConfig(env=["A=1"]), "h")
    assert env == [PATH, "HOSTNAME=h", "A=1"]


def test_capabilities(rootfs: str) -> None:
    def caps(**hc: Any) -> list[str]:
        bounding: list[str] = spec(rootfs, HostConfig=hc)["process"]["capabilities"]["bounding"]
        return bounding

    added = caps(CapAdd=["SYS_ADMIN"], CapDrop=["CHOWN", "net_raw"])
    assert added == [c for c in DEFAULT_CAPABILITIES if c not in ("CAP_CHOWN", "CAP_NET_RAW")] + [
        "CAP_SYS_ADMIN"
    ]
    assert caps(CapDrop=["ALL"], CapAdd=["KILL"]) == ["CAP_KILL"]
    every = caps(CapAdd=["ALL"], CapDrop=["MKNOD"])
    assert "CAP_MKNOD" not in every
    assert "CAP_SYS_ADMIN" in every
    assert every[0] == "CAP_CHOWN"
    host = pinned_host(all_capabilities=("CAP_CHOWN", "CAP_KILL"))
    assert spec(rootfs, host=host, HostConfig={"CapAdd": ["ALL"]})["process"]["capabilities"][
        "bounding"
    ] == ["CAP_CHOWN", "CAP_KILL"]


def test_privileged(rootfs: str) -> None:
    devs = [HostDevice("/dev/kvm", "c", 10, 232, 0o600, 0, 0)]
    host = pinned_host(host_devices=lambda: devs)
    s = spec(rootfs, host=host, HostConfig={"Privileged": True})
    linux = s["linux"]
    assert "seccomp" not in linux
    assert "maskedPaths" not in linux
    assert "readonlyPaths" not in linux
    assert linux["devices"] == [
        {
            "path": "/dev/kvm",
            "type": "c",
            "major": 10,
            "minor": 232,
            "fileMode": 0o600,
            "uid": 0,
            "gid": 0,
        }
    ]
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    m = mounts(s)
    assert "ro" not in m["/sys"]["options"]
    assert "ro" not in m["/sys/fs/cgroup"]["options"]
    assert len(s["process"]["capabilities"]["bounding"]) == len(host.all_capabilities)


def test_resources(rootfs: str) -> None:
    hc = {
        "Memory": 64 << 20, "MemorySwap": 128 << 20, "MemoryReservation": 32 << 20,
        "NanoCpus": 1_500_000_000, "CpuShares": 512, "CpusetCpus": "0", "CpusetMems": "0",
        "PidsLimit": 100, "BlkioWeight": 300, "OomKillDisable": True, "OomScoreAdj": 100,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}, {"Name": "core", "Soft": -1, "Hard": -1}],
    }  # fmt: skip
    s = spec(rootfs, HostConfig=hc)
    r = s["linux"]["resources"]
    assert r["memory"] == {
        "limit": 67108864,
        "reservation": 33554432,
        "swap": 134217728,
        "disableOOMKiller": True,
    }
    assert r["cpu"] == {"shares": 512, "cpus": "0", "mems": "0", "period": 100000, "quota": 150000}
    assert r["pids"] == {"limit": 100}
    assert r["blockIO"] == {"weight": 300}
    assert s["process"]["oomScoreAdj"] == 100
    assert s["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024},
        {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 2**64 - 1},
    ]
    only_memory = spec(rootfs, HostConfig={"Memory": 64 << 20})["linux"]["resources"]["memory"]
    assert only_memory == {"limit": 64 << 20, "swap": 128 << 20}
    unlimited = spec(rootfs, HostConfig={"Memory": 64 << 20, "MemorySwap": -1, "PidsLimit": -1})
    assert "swap" not in unlimited["linux"]["resources"]["memory"]
    assert "pids" not in unlimited["linux"]["resources"]
    period = spec(rootfs, HostConfig={"CpuPeriod": 50000, "CpuQuota": 20000})["linux"]["resources"][
        "cpu"
    ]
    assert (period["period"], period["quota"]) == (50000, 20000)


def test_misc_flags(rootfs: str) -> None:
    s = spec(
        rootfs,
        Hostname="myhost",
        Domainname="example.com",
        HostConfig={
            "ReadonlyRootfs": True, "ShmSize": 128 << 20, "Sysctls": {"kernel.msgmax": "65536"},
            "SecurityOpt": ["no-new-privileges"], "Annotations": {"a": "b"}, "Tmpfs": {"/run": ""},
        },
    )  # fmt: skip
    assert s["root"]["readonly"] is True
    assert s["process"]["noNewPrivileges"] is True
    assert s["linux"]["sysctl"]["kernel.domainname"] == "example.com"
    assert s["linux"]["sysctl"]["kernel.msgmax"] == "65536"
    assert s["annotations"] == {"a": "b"}
    m = mounts(s)
    assert m["/dev/shm"]["options"][-1] == "size=134217728"
    for f in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf"):
        assert m[f]["options"] == ["rbind", "ro", "rprivate"]
    assert m["/run"]["options"] == ["noexec", "nosuid", "nodev", "rprivate"]


def test_seccomp_choices(rootfs: str) -> None:
    assert (
        "seccomp" not in spec(rootfs, HostConfig={"SecurityOpt": ["seccomp=unconfined"]})["linux"]
    )
    custom = '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}}]}'
    s = spec(rootfs, HostConfig={"SecurityOpt": ["seccomp=" + custom]})
    assert s["linux"]["seccomp"]["syscalls"] == [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]
    admin = spec(rootfs, HostConfig={"CapAdd": ["SYS_ADMIN"]})["linux"]["seccomp"]
    assert "mount" in admin["syscalls"][0]["names"]


def test_network_modes(rootfs: str) -> None:
    def ns(s: dict[str, Any]) -> list[dict[str, str]]:
        return list(s["linux"]["namespaces"])

    host = spec(rootfs, HostConfig={"NetworkMode": "host"})
    assert {"type": "network"} not in ns(host)
    assert "sysctl" not in host["linux"]
    assert host["hostname"] == "hosty"
    none = spec(rootfs, HostConfig={"NetworkMode": "none"})
    assert {"type": "network"} in ns(none)
    joined = spec(
        rootfs,
        HostConfig={"NetworkMode": "container:web"},
        namespaces={"network": "/proc/42/ns/net"},
    )
    assert {"type": "network", "path": "/proc/42/ns/net"} in ns(joined)
    assert "sysctl" not in joined["linux"]
    # Without a path yet: the service finds the other container's at each start.
    unjoined = spec(rootfs, HostConfig={"NetworkMode": "container:web"})
    assert {"type": "network"} in ns(unjoined)
    assert join_namespaces(unjoined, {"network": "/proc/7/ns/net", "pid": "/proc/7/ns/pid"})
    assert {"type": "network", "path": "/proc/7/ns/net"} in ns(unjoined)
    assert {"type": "pid", "path": "/proc/7/ns/pid"} in ns(unjoined)
    assert not join_namespaces(unjoined, {"network": "/proc/7/ns/net"})


def test_ipc_pid_uts_cgroupns(rootfs: str) -> None:
    s = spec(rootfs, HostConfig={"IpcMode": "host", "PidMode": "host", "UTSMode": "host"})
    assert s["linux"]["namespaces"] == [{"type": "mount"}, {"type": "network"}]
    assert "hostname" not in s
    assert mounts(s)["/dev/shm"] == {
        "destination": "/dev/shm",
        "type": "bind",
        "source": "/dev/shm",
        "options": ["rbind", "rprivate"],
    }
    assert "/dev/shm" not in mounts(spec(rootfs, HostConfig={"IpcMode": "none"}))
    shared = spec(rootfs, HostConfig={"IpcMode": "shareable"}, shm_path="/c/shm")
    assert mounts(shared)["/dev/shm"]["source"] == "/c/shm"
    pid = spec(
        rootfs, HostConfig={"PidMode": "container:web"}, namespaces={"pid": "/proc/9/ns/pid"}
    )
    assert {"type": "pid", "path": "/proc/9/ns/pid"} in pid["linux"]["namespaces"]
    assert {"type": "cgroup"} in spec(rootfs, HostConfig={"CgroupnsMode": "private"})["linux"][
        "namespaces"
    ]
    v2 = spec(rootfs, host=pinned_host(cgroup_v2=True))
    assert v2["linux"]["namespaces"][-1] == {"type": "cgroup"}


def test_init(rootfs: str) -> None:
    s = spec(rootfs, HostConfig={"Init": True})
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "100"]
    names = [m["destination"] for m in s["mounts"]]
    assert names.index("/sbin/docker-init") == names.index("/dev/shm") + 1
    assert mounts(s)["/sbin/docker-init"] == {
        "destination": "/sbin/docker-init",
        "type": "bind",
        "source": "/usr/bin/tini-static",
        "options": ["bind", "ro"],
    }


def test_user_mounts_sorted_by_depth(rootfs: str, tmp_path: Path) -> None:
    src = str(tmp_path)
    hc = {
        "Binds": [f"{src}:/b:ro", f"{src}:/c:z", "vol1:/v", f"{src}:/etc/hosts"],
        "Tmpfs": {"/run": "rw,size=10m,noexec"},
        "Mounts": [
            {"Type": "bind", "Source": src, "Target": "/d", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}},
            {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1777}},
            {"Type": "bind", "Source": src, "Target": "/e", "BindOptions": {"NonRecursive": True}},
        ],
    }  # fmt: skip
    image = make_image(cmd=["sleep"], volumes={"/anon": {}, "/v": {}})
    create = parse_create({"Image": "x", "HostConfig": hc})
    assert [m.target for m in volume_targets(create, image)] == ["/v", "/anon"]
    s = spec(rootfs, image=image, HostConfig=hc, volumes={"/v": "/vol/v", "/anon": "/vol/anon"})
    user = [(m["destination"], m["source"], m["options"]) for m in s["mounts"][7:]]
    assert user == [
        ("/b", src, ["rbind", "ro", "rprivate"]),
        ("/c", src, ["rbind", "rprivate"]),
        ("/v", "/vol/v", ["rbind"]),
        ("/d", src, ["rbind", "ro", "rslave"]),
        ("/e", src, ["bind", "rprivate"]),
        ("/anon", "/vol/anon", ["rbind"]),
        ("/run", "tmpfs", ["nosuid", "nodev", "rprivate", "rw", "size=10m", "noexec"]),
        ("/t", "tmpfs", ["noexec", "nosuid", "nodev", "rprivate", "mode=1777", "size=1m"]),
        ("/etc/hosts", src, ["rbind", "rprivate"]),
        ("/etc/resolv.conf", "/c/resolv.conf", ["rbind", "rprivate"]),
        ("/etc/hostname", "/c/hostname", ["rbind", "rprivate"]),
    ]
    assert s["linux"]["rootfsPropagation"] == "rslave"


def test_devices(rootfs: str) -> None:
    null = HostDevice("/dev/null", "c", 1, 3, 0o666, 0, 0)

    def lookup(host_path: str, container_path: str) -> list[HostDevice]:
        assert host_path == "/dev/null"
        return [HostDevice(container_path, "c", 1, 3, 0o666, 0, 0)]

    hc = {
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}],
        "DeviceCgroupRules": ["c 42:* rmw"],
    }  # fmt: skip
    s = spec(rootfs, host=pinned_host(device_lookup=lookup), HostConfig=hc)
    assert s["linux"]["devices"] == [{**null.to_spec(), "path": "/dev/mynull"}]
    assert s["linux"]["resources"]["devices"][-2:] == [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": True, "type": "c", "major": 42, "minor": -1, "access": "rmw"},
    ]


def test_stop_signal() -> None:
    create = parse_create({"Image": "x"})
    assert stop_signal(create, make_image()) == 15
    assert stop_signal(create, make_image(stop_signal="SIGQUIT")) == 3
    assert stop_signal(parse_create({"Image": "x", "StopSignal": "USR1"}), make_image()) == 10


def test_workdir_symlink_stays_in_rootfs(rootfs: str, tmp_path: Path) -> None:
    outside = tmp_path.parent / (tmp_path.name + "-outside")
    os.symlink(str(outside), os.path.join(rootfs, "w"))
    spec(rootfs)
    assert not outside.exists()
    assert os.path.isdir(os.path.join(rootfs, str(outside).lstrip("/")))
