"""rootfs setup for real: a forked child in new mount and pid namespaces builds a
busybox container filesystem, pivots into it, looks around and reports through a
pipe. The child's mount namespace dies with it; the host's mount table must not
change."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from skiff.linux.syscalls import CLONE_NEWNS, CLONE_NEWPID, Syscalls, unshare
from skiff.oci.runtime_spec import parse_config
from skiff.runtime.rootfs import enter_rootfs, prepare_rootfs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.root

BUSYBOX = shutil.which("busybox") or "/bin/busybox"


def host_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split(" ")[4] for line in f]


@pytest.fixture(autouse=True)
def no_mounts_left(tmp_path: Path) -> Iterator[None]:
    # Only the test's own folder is checked: other processes on the machine
    # (a dockerd under test, say) may mount and unmount elsewhere meanwhile.
    yield
    assert [m for m in host_mounts() if m.startswith(str(tmp_path))] == []


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    subprocess.run([BUSYBOX, "--install", "-s", str(rootfs / "bin")], check=True)
    # The links point at the host's busybox path (e.g. /usr/bin/busybox): make them ours.
    for link in (rootfs / "bin").iterdir():
        if link.is_symlink():
            link.unlink()
            link.symlink_to("busybox")
    for d in ("etc", "proc", "sys", "dev", "tmp"):
        (rootfs / d).mkdir()
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return tmp_path


def run_container(
    doc: dict[str, object],
    bundle: Path,
    look: Callable[[], object],
    console_slave: str | None = None,
) -> dict[str, object]:
    """Set up doc's rootfs in a child (pid 1 of a new pid ns), run `look` inside it."""
    config = parse_config(doc)
    rootfs = str(bundle / "rootfs")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(r)
            unshare(CLONE_NEWNS | CLONE_NEWPID)
            init = os.fork()  # only children enter the new pid namespace
            if init == 0:
                result: dict[str, object]
                try:
                    sys = Syscalls()
                    prepare_rootfs(config, rootfs, sys, console_slave, bundle=str(bundle))
                    enter_rootfs(config, rootfs, sys)
                    result = {"ok": look()}
                except BaseException as e:
                    result = {"error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()}
                os.write(w, json.dumps(result).encode())
                os._exit(0)
            _, status = os.waitpid(init, 0)
            code = os.waitstatus_to_exitcode(status)
        except BaseException:
            os.write(w, json.dumps({"error": traceback.format_exc()}).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result: dict[str, object] = json.loads(b"".join(chunks) or b"{}")
    return result


def base_doc(**extra: object) -> dict[str, object]:
    linux = extra.pop("linux", {})
    doc: dict[str, object] = {
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], **linux},  # type: ignore[dict-item]
    }  # fmt: skip
    mounts = doc["mounts"]
    assert isinstance(mounts, list)
    mounts.extend(extra.pop("mounts", []))  # type: ignore[arg-type]
    doc.update(extra)
    return doc


def mount_table() -> dict[str, tuple[str, list[str]]]:
    """mountpoint -> (fstype, per-mount options) as seen from inside."""
    table = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split(" ")
            table[fields[4]] = (right.split(" ")[0], fields[5].split(","))
    return table


def dev_info(path: str) -> list[int]:
    st = os.lstat(path)
    return [stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, os.major(st.st_rdev), os.minor(st.st_rdev), st.st_uid, st.st_gid]  # fmt: skip


def test_docker_like_container(bundle: Path) -> None:
    hosts = bundle / "hosts"
    hosts.write_text("127.0.0.1 localhost box\n")
    volume = bundle / "volume"
    volume.mkdir()
    (volume / "data.txt").write_text("payload")
    doc = base_doc(
        root={"path": "rootfs", "readonly": True},
        mounts=[
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/etc/hosts", "type": "bind", "source": str(hosts), "options": ["rbind", "rprivate", "ro"]},
            {"destination": "/data", "type": "none", "source": "volume", "options": ["rbind", "nosuid"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
        ],
        linux={
            "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o640, "uid": 7, "gid": 8}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/acpi", "/proc/nonexistent", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/bus", "/proc/nonexistent"],
        },
    )  # fmt: skip

    def look() -> object:
        out: dict[str, object] = {"pid": os.getpid(), "mounts": mount_table()}
        out["procs"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        out["devs"] = {p: dev_info(p) for p in ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/random", "/dev/urandom", "/dev/fuse")}  # fmt: skip
        out["links"] = {p: os.readlink(p) for p in ("/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr")}  # fmt: skip
        out["core"] = os.path.lexists("/dev/core")
        with open("/dev/null", "w") as f:
            f.write("x")
        out["keys"] = open("/proc/keys").read()  # noqa: SIM115
        out["timer_list"] = open("/proc/timer_list").read()  # noqa: SIM115
        out["acpi"] = os.listdir("/proc/acpi")
        out["firmware"] = os.listdir("/sys/firmware")
        out["proc_sys_ro"] = bool(os.statvfs("/proc/sys").f_flag & os.ST_RDONLY)
        out["hosts"] = open("/etc/hosts").read()  # noqa: SIM115
        out["data"] = open("/data/data.txt").read()  # noqa: SIM115
        try:
            open("/etc/new", "w").close()
            out["root_write"] = "written"
        except OSError as e:
            out["root_write"] = e.errno
        with open("/tmp/ok", "w") as f:  # tmpfs stays writable under a read-only root
            f.write("ok")
        try:
            open("/etc/hosts", "w").close()
            out["hosts_write"] = "written"
        except OSError as e:
            out["hosts_write"] = e.errno
        out["cgroup_dirs"] = sorted(os.listdir("/sys/fs/cgroup"))
        # Our own cgroup is bound, not the hierarchy's root: we (pid 1) are listed in it.
        out["memory_procs"] = open("/sys/fs/cgroup/memory/cgroup.procs").read().split()  # noqa: SIM115
        sh = subprocess.run(
            [
                "/bin/sh",
                "-c",
                "echo hi >/dev/null && ls / && cat /proc/1/cmdline >/dev/null && echo done",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        out["sh"] = [sh.returncode, sh.stdout, sh.stderr]
        out["old_root_gone"] = not os.path.exists(str(bundle))
        return out

    result = run_container(doc, bundle, look)
    assert "error" not in result, result.get("tb", result.get("error"))
    out = result["ok"]
    assert isinstance(out, dict)
    assert out["pid"] == 1
    assert out["procs"][0] == 1
    mounts = out["mounts"]
    assert mounts["/"][1][0] == "ro"
    assert mounts["/proc"][0] == "proc"
    assert mounts["/dev"][0] == "tmpfs"
    assert mounts["/dev/pts"][0] == "devpts"
    assert mounts["/dev/shm"][0] == "tmpfs"
    assert mounts["/dev/mqueue"][0] == "mqueue"
    assert mounts["/sys"][0] == "sysfs"
    assert "ro" in mounts["/sys"][1]
    assert mounts["/sys/fs/cgroup"][0] == "tmpfs"
    assert "ro" in mounts["/sys/fs/cgroup"][1]
    assert mounts["/sys/fs/cgroup/memory"][0] == "cgroup"
    assert "ro" in mounts["/sys/fs/cgroup/memory"][1]
    assert "ro" in mounts["/etc/hosts"][1]
    assert "nosuid" in mounts["/data"][1]
    assert "ro" in mounts["/proc/sys"][1]
    assert "ro" in mounts["/proc/bus"][1]
    # Nothing of the host is left mounted inside.
    assert not [m for m in mounts if m.startswith(("/work", "/tmp/pytest", "/mnt", str(bundle)))]
    assert out["old_root_gone"]
    chr_ = stat.S_IFCHR
    assert out["devs"] == {
        "/dev/null": [chr_, 0o666, 1, 3, 0, 0],
        "/dev/zero": [chr_, 0o666, 1, 5, 0, 0],
        "/dev/full": [chr_, 0o666, 1, 7, 0, 0],
        "/dev/tty": [chr_, 0o666, 5, 0, 0, 0],
        "/dev/random": [chr_, 0o666, 1, 8, 0, 0],
        "/dev/urandom": [chr_, 0o666, 1, 9, 0, 0],
        "/dev/fuse": [chr_, 0o640, 10, 229, 7, 8],
    }
    assert out["links"] == {
        "/dev/ptmx": "pts/ptmx",
        "/dev/fd": "/proc/self/fd",
        "/dev/stdin": "/proc/self/fd/0",
        "/dev/stdout": "/proc/self/fd/1",
        "/dev/stderr": "/proc/self/fd/2",
    }
    assert out["core"] == os.path.exists("/proc/kcore")
    assert out["keys"] == ""
    assert out["timer_list"] == ""
    assert out["acpi"] == []
    assert out["firmware"] == []
    assert out["proc_sys_ro"] is True
    assert out["hosts"] == "127.0.0.1 localhost box\n"
    assert out["data"] == "payload"
    assert out["root_write"] == 30  # EROFS
    assert out["hosts_write"] == 30
    assert {"cpu", "memory", "systemd"} <= set(out["cgroup_dirs"])
    assert "1" in out["memory_procs"]
    sh = out["sh"]
    assert sh[0] == 0, sh
    assert sh[1].endswith("done\n")
    assert "bin" in sh[1].split()


def test_symlink_in_rootfs_cannot_lead_a_mount_outside(bundle: Path) -> None:
    outside = bundle / "outside"
    outside.mkdir()
    rootfs = bundle / "rootfs"
    os.symlink(str(outside), rootfs / "evil")  # absolute
    os.symlink("../../../../../../../../" + str(outside), rootfs / "tmp" / "evil2")  # relative
    doc = base_doc(
        mounts=[
            {"destination": "/evil/a", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/tmp/evil2/b", "type": "tmpfs", "source": "tmpfs"},
        ]
    )

    def look() -> object:
        table = mount_table()
        return [table.get(str(outside) + "/a"), table.get(str(outside) + "/b")]

    result = run_container(doc, bundle, look)
    assert "error" not in result, result.get("tb", result.get("error"))
    assert result["ok"] == [["tmpfs", ["rw", "relatime"]], ["tmpfs", ["rw", "relatime"]]]
    assert list(outside.iterdir()) == []
    assert (rootfs / str(outside).lstrip("/") / "a").is_dir()


def test_console_is_bound_onto_dev_console(bundle: Path) -> None:
    master, slave = os.openpty()
    try:
        slave_name = os.ttyname(slave)
        want = os.stat(slave_name).st_rdev

        def look() -> object:
            st = os.stat("/dev/console")
            return [stat.S_ISCHR(st.st_mode), st.st_rdev]

        result = run_container(base_doc(), bundle, look, console_slave=slave_name)
    finally:
        os.close(master)
        os.close(slave)
    assert "error" not in result, result.get("tb", result.get("error"))
    assert result["ok"] == [True, want]


def test_user_namespace_config_binds_host_devices(bundle: Path) -> None:
    doc = base_doc(
        linux={
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 0, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 0, "size": 65536}],
        }
    )

    def look() -> object:
        # A bind of the host's node is a mount point of its own; a mknod'ed one is not.
        return ["/dev/null" in mount_table(), dev_info("/dev/null")[2:4]]

    result = run_container(doc, bundle, look)
    assert "error" not in result, result.get("tb", result.get("error"))
    assert result["ok"] == [True, [1, 3]]


def test_failure_names_the_mount(bundle: Path) -> None:
    doc = base_doc(mounts=[{"destination": "/weird", "type": "nosuchfs", "source": "x"}])
    result = run_container(doc, bundle, lambda: None)
    assert "mounts[6] (/weird)" in str(result["error"])
    assert "No such device" in str(result["error"])


@pytest.mark.parametrize("propagation", ["rshared", "private", "rslave"])
def test_rootfs_propagation(bundle: Path, propagation: str) -> None:
    # rshared makes the rootfs's parent mount shared: pivot_root only works once it is private.
    doc = base_doc(linux={"rootfsPropagation": propagation})

    def look() -> object:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split(" - ")[0].split(" ")
                if fields[4] == "/":
                    return fields[6:]
        return None

    result = run_container(doc, bundle, look)
    assert "error" not in result, result.get("tb", result.get("error"))
    optional = result["ok"]
    assert isinstance(optional, list)
    if propagation == "rshared":
        assert any(f.startswith("shared:") for f in optional)
    else:
        assert not any(f.startswith("shared:") for f in optional)
