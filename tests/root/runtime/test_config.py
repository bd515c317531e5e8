"""What a config.json asks for is what the container gets: namespaces, identity, limits, security."""

from __future__ import annotations

import array
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from skiff.testing.bundles import make_busybox_rootfs

from .conftest import Runtime


def run(rt: Runtime, name: str, script: str, **changes: Any) -> tuple[str, int]:
    bundle = rt.bundle(name, ["sh", "-c", script], **changes)
    proc = rt("run", "--bundle", bundle, name, check=False)
    assert not proc.stderr or proc.returncode != 0, proc.stderr
    return proc.stdout, proc.returncode


def edit_run(rt: Runtime, name: str, script: str, edit: Any) -> tuple[str, str, int]:
    bundle = rt.bundle(name, ["sh", "-c", script])
    rt.edit(bundle, edit)
    proc = rt("run", "--bundle", bundle, name, check=False)
    return proc.stdout, proc.stderr, proc.returncode


def test_identity_env_cwd_and_hostname(runtime: Runtime) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 0o077}
        c["process"]["env"].append("GREETING=hi there")
        c["process"]["cwd"] = "/tmp"
        c["hostname"] = "box"
        c["domainname"] = "example.org"

    out, err, code = edit_run(
        runtime,
        "id",
        "id -u; id -g; id -G; pwd; echo $GREETING; hostname; "
        "cat /proc/sys/kernel/domainname; umask",
        edit,
    )
    assert code == 0, err
    assert out.splitlines() == [
        "1000",
        "1001",
        "1001 5 6",
        "/tmp",
        "hi there",
        "box",
        "example.org",
        "0077",
    ]


def test_new_namespaces(runtime: Runtime) -> None:
    out, code = run(runtime, "ns", "echo $$; ls /sys/class/net; cat /proc/self/cgroup | head -1")
    pid, net, cgroup_line = out.splitlines()[:3]
    assert code == 0
    assert pid == "1"
    assert net == "lo"
    assert cgroup_line.endswith(":/")  # cgroup namespace rooted at the container's cgroup
    host_ns = {n: os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "net", "mnt", "uts", "ipc")}
    bundle = runtime.bundle("ns2", ["sleep", "60"])
    runtime("run", "-d", "--bundle", bundle, "ns2")
    pid_host = runtime.state("ns2")["pid"]
    for name, ident in host_ns.items():
        assert os.readlink(f"/proc/{pid_host}/ns/{name}") != ident, name
    runtime("delete", "-f", "ns2")


def test_joining_a_namespace_by_path(runtime: Runtime) -> None:
    bundle = runtime.bundle("owner", ["sleep", "60"], hostname="shared")
    runtime("run", "-d", "--bundle", bundle, "owner")
    owner = runtime.state("owner")["pid"]

    def edit(c: dict[str, Any]) -> None:
        c["linux"]["namespaces"] = [
            {"type": "mount"},
            {"type": "pid"},
            {"type": "uts", "path": f"/proc/{owner}/ns/uts"},
            {"type": "network", "path": f"/proc/{owner}/ns/net"},
        ]
        c.pop("hostname")

    out, err, code = edit_run(runtime, "joiner", "hostname", edit)
    assert (out, code) == ("shared\n", 0), err
    runtime("delete", "-f", "owner")


def test_user_namespace_with_mappings(runtime: Runtime) -> None:
    # The container's root is uid 100000 on the host: its rootfs must be reachable
    # through searchable folders (pytest's tmp folders are 0700).
    shared = tempfile.mkdtemp(prefix="skiff-userns-", dir="/tmp")
    os.chmod(shared, 0o755)
    try:
        make_busybox_rootfs(os.path.join(shared, "rootfs"))
        runtime.rootfs = os.path.join(shared, "rootfs")
        _check_user_namespace(runtime)
    finally:
        shutil.rmtree(shared)


def _check_user_namespace(runtime: Runtime) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"].pop("resources")
        c["mounts"] = [m for m in c["mounts"] if m["type"] not in ("cgroup", "sysfs")]
        c["mounts"].append(
            {
                "destination": "/sys",
                "type": "bind",
                "source": "/sys",
                "options": ["rbind", "nosuid", "nodev", "noexec", "ro"],
            }
        )

    out, err, code = edit_run(runtime, "userns", "cat /proc/self/uid_map; id -u", edit)
    assert code == 0, err
    mapping, uid = out.splitlines()
    assert mapping.split() == ["0", "100000", "65536"]
    assert uid == "0"

    # exec joins the user namespace last, after the mount namespace, in the
    # foreground and detached (its pid file is written on the host's side).
    bundle = runtime.bundle("userns-exec", ["sleep", "60"])
    runtime.edit(bundle, edit)
    runtime("run", "--detach", "--bundle", bundle, "userns-exec")
    script = (
        "cat /proc/self/uid_map; id -u; cat /proc/self/cgroup | md5sum; cat /proc/1/cgroup | md5sum"
    )
    out = runtime("exec", "userns-exec", "sh", "-c", script).stdout
    mapping, uid, own_cgroup, init_cgroup = out.splitlines()
    assert mapping.split() == ["0", "100000", "65536"]
    assert uid == "0"
    assert own_cgroup == init_cgroup
    with tempfile.TemporaryDirectory() as d:
        pid_file = Path(d, "exec.pid")
        runtime("exec", "--detach", "--pid-file", str(pid_file), "userns-exec", "sleep", "30")
        pid = int(pid_file.read_text())
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", "100000", "65536"]
    runtime("delete", "--force", "userns-exec")


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/pids"), reason="a cgroup v1 layout")
def test_a_pids_limit_of_one_still_takes_init_and_execs(runtime: Runtime) -> None:
    """Init and each exec'd process move into the cgroup (a move is not held to
    pids.max, a fork is), as runc's do: dockerd runs `--pids-limit 1` and execs
    into a container at its limit."""
    bundle = runtime.bundle("full", ["sleep", "60"])
    runtime.edit(bundle, lambda c: c["linux"]["resources"].update(pids={"limit": 1}))
    runtime("run", "-d", "--bundle", bundle, "full")
    pid = runtime.state("full")["pid"]
    assert _pids_in_cgroup(pid) == [str(pid)]
    # One process each (a fork inside would be refused): the exec'd one is in
    # init's cgroup.
    own = runtime("exec", "full", "cat", "/proc/self/cgroup").stdout
    assert own == runtime("exec", "full", "cat", "/proc/1/cgroup").stdout
    # Its own children are held to the limit: the fork inside fails.
    forked = runtime("exec", "full", "sh", "-c", "true & wait", check=False)
    assert forked.returncode != 0
    assert _pids_in_cgroup(pid) == [str(pid)]  # nothing of the execs is left in it
    runtime("delete", "--force", "full")


def _pids_in_cgroup(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cgroup") as f:
        path = next(line for line in f if ":pids:" in line).rstrip("\n").split(":", 2)[2]
    return Path("/sys/fs/cgroup/pids", path.lstrip("/"), "cgroup.procs").read_text().split()


def test_cgroup_limits_are_written(runtime: Runtime) -> None:
    bundle = runtime.bundle("cg", ["sleep", "60"])

    def edit(c: dict[str, Any]) -> None:
        c["linux"]["resources"].update(
            memory={"limit": 64 * 1024 * 1024},
            pids={"limit": 42},
            cpu={"shares": 512, "quota": 50000, "period": 100000},
        )

    runtime.edit(bundle, edit)
    runtime("run", "-d", "--bundle", bundle, "cg")
    pid = runtime.state("cg")["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        paths = {line.split(":", 2)[1]: line.rstrip("\n").split(":", 2)[2] for line in f}
    mem = Path("/sys/fs/cgroup/memory") / paths["memory"].lstrip("/")
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 * 1024 * 1024)
    pids = Path("/sys/fs/cgroup/pids") / paths["pids"].lstrip("/")
    assert (pids / "pids.max").read_text().strip() == "42"
    cpu = Path("/sys/fs/cgroup/cpu") / paths["cpu"].lstrip("/")
    assert (cpu / "cpu.shares").read_text().strip() == "512"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    runtime("delete", "-f", "cg")
    assert not mem.exists()


@pytest.mark.skipif(
    os.path.exists("/sys/fs/cgroup/cgroup.controllers"), reason="a cgroup v1 host's layout"
)
def test_cgroup_mount_shows_the_containers_own_cgroup(runtime: Runtime) -> None:
    """create moves init into its cgroup while init mounts: its cgroup mount must
    still be the container's cgroup, not the one init was forked in."""

    def edit(c: dict[str, Any]) -> None:
        c["linux"]["resources"]["memory"] = {"limit": 48 * 1024 * 1024}
        # First, so that it is mounted as early as it can be.
        c["mounts"].insert(0,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]}
        )  # fmt: skip

    out, err, code = edit_run(
        runtime,
        "cgmount",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; cat /sys/fs/cgroup/pids/cgroup.procs",
        edit,
    )
    assert code == 0, err
    limit, *procs = out.split()
    assert limit == str(48 * 1024 * 1024)
    assert procs == ["1"]  # the container's own cgroup, in its pid namespace: only init


def test_readonly_rootfs_masked_and_readonly_paths(runtime: Runtime) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["root"]["readonly"] = True

    out, err, code = edit_run(
        runtime,
        "ro",
        "touch /x 2>/dev/null && echo rw || echo ro; "
        "wc -c < /proc/keys; "
        "echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo sys-rw || echo sys-ro; "
        "touch /dev/shm/ok && echo shm-ok",
        edit,
    )
    assert code == 0, err
    assert out.split() == ["ro", "0", "sys-ro", "shm-ok"]


def test_capabilities_rlimits_and_no_new_privileges(runtime: Runtime) -> None:
    out, code = run(
        runtime, "caps", "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ulimit -n"
    )
    assert code == 0
    lines = dict(line.split(":\t") for line in out.splitlines()[:3])
    # CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10)
    expected = (1 << 29) | (1 << 5) | (1 << 10)
    assert int(lines["CapEff"], 16) == expected
    assert int(lines["CapBnd"], 16) == expected
    assert lines["NoNewPrivs"] == "1"
    assert out.splitlines()[3] == "1024"


def test_seccomp_from_the_config(runtime: Runtime) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ],
        }

    out, err, code = edit_run(
        runtime, "sec", "mkdir /tmp/d 2>&1 || echo denied; touch /tmp/f && echo touch-ok", edit
    )
    assert code == 0, err
    assert "denied" in out
    assert "touch-ok" in out


def test_hooks_get_the_state(runtime: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$1 $(cat)" >> {log}\n')
    hook.chmod(0o755)

    def edit(c: dict[str, Any]) -> None:
        c["hooks"] = {
            kind: [{"path": str(hook), "args": ["hook.sh", kind]}]
            for kind in ("prestart", "createRuntime", "poststart", "poststop")
        }

    _, err, code = edit_run(runtime, "hooks", "echo body", edit)
    assert code == 0, err
    entries = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [kind for kind, _ in entries] == ["prestart", "createRuntime", "poststart", "poststop"]
    for _, doc in entries:
        state = json.loads(doc)
        assert state["id"] == "hooks"
        assert state["bundle"].endswith("bundle-hooks")


def test_failing_hook_fails_create_and_cleans_up(runtime: Runtime) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}

    bundle = runtime.bundle("hookfail", ["true"])
    runtime.edit(bundle, edit)
    proc = runtime("create", "--bundle", bundle, "hookfail", check=False)
    assert proc.returncode != 0
    assert "createRuntime" in proc.stderr
    assert not (runtime.root / "hookfail").exists()
    assert not runtime.cgroup_dirs()


def test_terminal_goes_through_the_console_socket(runtime: Runtime, tmp_path: Path) -> None:
    path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got: dict[str, Any] = {}

    def receive() -> None:
        conn, _ = server.accept()
        fds = array.array("i")
        _, ancdata, _, _ = conn.recvmsg(16, socket.CMSG_LEN(fds.itemsize))
        for _level, _type, data in ancdata:
            fds.frombytes(data[: fds.itemsize])
        got["master"] = fds[0]
        conn.close()

    thread = threading.Thread(target=receive)
    thread.start()
    bundle = runtime.bundle("tty", ["sh", "-c", "tty; stty size; echo done"])
    runtime.edit(
        bundle,
        lambda c: c["process"].update(terminal=True, consoleSize={"height": 30, "width": 90}),
    )
    runtime("create", "--bundle", bundle, "--console-socket", path, "tty")
    thread.join(10)
    server.close()
    master = got["master"]
    runtime("start", "tty")
    output = b""
    while b"done" not in output:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    text = output.decode()
    assert "/dev/pts/" in text or "/dev/console" in text
    assert "30 90" in text
    runtime("delete", "-f", "tty")


def test_without_a_mount_namespace_mounts_are_removed_on_delete(runtime: Runtime) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["linux"]["namespaces"] = [{"type": "pid"}, {"type": "uts"}]
        c["linux"].pop("maskedPaths")
        c["linux"].pop("readonlyPaths")
        c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev")]

    out, err, code = edit_run(
        runtime, "nomnt", "echo $$; ls /proc/1/ns >/dev/null && echo ok", edit
    )
    assert (out, code) == ("1\nok\n", 0), err
    # Only mounts under this test's rootfs are checked: other processes on the
    # machine may mount elsewhere meanwhile.
    rootfs = os.path.realpath(runtime.rootfs)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    assert [p for p in points if p == rootfs or p.startswith(rootfs + "/")] == []


def test_unknown_capability_fails_create(runtime: Runtime) -> None:
    bundle = runtime.bundle("cap", ["true"])
    runtime.edit(bundle, lambda c: c["process"]["capabilities"]["bounding"].append("CAP_TEST"))
    proc = runtime("create", "--bundle", bundle, "cap", check=False)
    assert proc.returncode != 0
    assert "process.capabilities.bounding[3]: unknown capability 'CAP_TEST'" in proc.stderr
    assert not (runtime.root / "cap").exists()


def test_sysctl_and_oom_score_adj(runtime: Runtime) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "4096"}
        c["process"]["oomScoreAdj"] = 321
        c["linux"]["readonlyPaths"].remove("/proc/sys")

    with open("/proc/sys/kernel/msgmax") as f:
        host_msgmax = f.read()
    out, err, code = edit_run(
        runtime,
        "sysctl",
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/msgmax /proc/self/oom_score_adj",
        edit,
    )
    assert (out.split(), code) == (["1", "4096", "321"], 0), err
    with open("/proc/sys/kernel/msgmax") as f:
        assert f.read() == host_msgmax  # set in the container's ipc namespace only


def test_run_forwards_signals_and_exits_with_the_status(runtime: Runtime) -> None:
    import signal
    import subprocess

    bundle = runtime.bundle(
        "sig",
        [
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ],
    )
    proc = subprocess.Popen(
        runtime.argv("run", "--bundle", bundle, "sig"), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert out == "got-term\n"
    assert proc.returncode == 42
