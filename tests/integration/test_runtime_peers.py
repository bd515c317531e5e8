"""skiff-runtime under the real peers: dockerd (`--add-runtime`) and containerd (`ctr run
--runc-binary`), side by side with runc doing the same thing.

The daemons are private (see skiff.testing.peers); nothing here touches the
host's docker socket, /var/lib/docker or /run/containerd/runc.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from skiff.runtime.create import SECCOMP_CACHE
from skiff.testing.peers import PrivateContainerd, PrivateDockerd, runtime_binary

from .conftest import CTR_IMAGE, DOCKER_IMAGE

pytestmark = pytest.mark.root

BOTH = pytest.mark.parametrize("runtime", ["runc", "skiff"])


def run(
    dockerd: PrivateDockerd, runtime: str, *args: str, input: str | None = None
) -> tuple[int, str, str]:
    """`docker run --rm` in no network (the private dockerd has no bridge)."""
    proc = dockerd.docker(
        "run", "--rm", "--runtime", runtime, "--network", "none", *args, input=input
    )
    return proc.returncode, proc.stdout, proc.stderr


def wait_for(predicate: object, timeout: float = 20) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# -- dockerd ------------------------------------------------------------------


@BOTH
def test_docker_run_prints_hi(dockerd: PrivateDockerd, runtime: str) -> None:
    code, out, err = run(dockerd, runtime, DOCKER_IMAGE, "echo", "hi")
    assert (code, out) == (0, "hi\n"), err


@BOTH
def test_docker_run_passes_the_exit_code_and_stderr(dockerd: PrivateDockerd, runtime: str) -> None:
    code, out, err = run(
        dockerd, runtime, DOCKER_IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert (code, out, err) == (3, "out\n", "err\n")


@BOTH
def test_docker_run_exec_errors_become_126_and_127(dockerd: PrivateDockerd, runtime: str) -> None:
    # dockerd reads the runtime's create error: "permission denied" is 126,
    # "executable file not found" / "no such file or directory" is 127.
    assert run(dockerd, runtime, DOCKER_IMAGE, "/etc/passwd")[0] == 126
    assert run(dockerd, runtime, DOCKER_IMAGE, "nosuchcmd")[0] == 127
    assert run(dockerd, runtime, DOCKER_IMAGE, "/nosuch")[0] == 127


@BOTH
def test_docker_run_stdin(dockerd: PrivateDockerd, runtime: str) -> None:
    code, out, err = run(dockerd, runtime, "-i", DOCKER_IMAGE, "cat", input="hello\n")
    assert (code, out) == (0, "hello\n"), err


@BOTH
def test_docker_run_tty(dockerd: PrivateDockerd, runtime: str) -> None:
    # -t: the shim passes --console-socket and gets the pty master back.
    code, out, err = run(dockerd, runtime, "-t", DOCKER_IMAGE, "sh", "-c", "tty; echo hi")
    assert code == 0, err
    assert out.splitlines() == ["/dev/pts/0", "hi"]  # the pty turns \n into \r\n


@BOTH
def test_docker_run_limits_and_user(dockerd: PrivateDockerd, runtime: str) -> None:
    script = "id -u; pwd; echo $FOO; touch /x 2>/dev/null || echo read-only"
    code, out, err = run(
        dockerd,
        runtime,
        *("--memory", "32m", "--pids-limit", "20", "--cpu-shares", "512", "--read-only"),
        *("-u", "65534", "-w", "/tmp", "-e", "FOO=bar", "--cap-drop", "ALL"),
        DOCKER_IMAGE,
        *("sh", "-c", script),
    )
    assert (code, out) == (0, "65534\n/tmp\nbar\nread-only\n"), err


@BOTH
def test_docker_detached_exec_top_stop(dockerd: PrivateDockerd, runtime: str) -> None:
    name = f"long-{runtime}"
    # The shell handles SIGTERM, so `docker stop` ends it without the SIGKILL.
    script = "trap 'exit 7' TERM; while true; do sleep 0.1; done"
    started = dockerd.docker(
        "run", "-d", "--name", name, "--runtime", runtime, "--network", "none",
        DOCKER_IMAGE, "sh", "-c", script,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        inside = dockerd.docker("exec", name, "sh", "-c", "echo from inside $$")
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout.startswith("from inside ")
        assert dockerd.docker("exec", name, "sh", "-c", "exit 4").returncode == 4
        tty = dockerd.docker("exec", "-t", name, "tty")
        assert tty.stdout.strip() == "/dev/pts/0", tty.stderr
        assert dockerd.docker("exec", "-d", name, "touch", "/tmp/detached").returncode == 0
        assert wait_for(
            lambda: dockerd.docker("exec", name, "test", "-e", "/tmp/detached").returncode == 0
        )
        top = dockerd.docker("top", name)
        assert "while true" in top.stdout or "sh -c" in top.stdout, top.stderr
        stopped = dockerd.docker("stop", "-t", "10", name)
        assert stopped.returncode == 0, stopped.stderr
        state = dockerd.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
        assert state.stdout.split() == ["exited", "7"]
    finally:
        dockerd.docker("rm", "-f", name)


@BOTH
def test_docker_stop_kills_what_ignores_sigterm(dockerd: PrivateDockerd, runtime: str) -> None:
    name = f"stubborn-{runtime}"
    dockerd.docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none",
                   DOCKER_IMAGE, "sleep", "60")  # fmt: skip
    try:
        # sleep as pid 1 ignores SIGTERM: dockerd falls back to SIGKILL.
        assert dockerd.docker("stop", "-t", "1", name).returncode == 0
        state = dockerd.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
        assert state.stdout.split() == ["exited", "137"]
    finally:
        dockerd.docker("rm", "-f", name)


@BOTH
def test_docker_pause_update_kill_rm(dockerd: PrivateDockerd, runtime: str) -> None:
    name = f"busy-{runtime}"
    dockerd.docker("run", "-d", "--name", name, "--runtime", runtime, "--network", "none",
                   DOCKER_IMAGE, "sleep", "60")  # fmt: skip
    try:
        assert dockerd.docker("pause", name).returncode == 0
        status = dockerd.docker("inspect", "-f", "{{.State.Status}}", name)
        assert status.stdout.strip() == "paused"
        assert dockerd.docker("unpause", name).returncode == 0
        # `docker update` reaches the runtime as `update --resources -`.
        updated = dockerd.docker("update", "--memory", "48m", "--memory-swap", "96m", name)
        assert updated.returncode == 0, updated.stderr
        limit = dockerd.docker(
            "exec", name, "sh", "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
            " || cat /sys/fs/cgroup/memory.max",
        )  # fmt: skip
        assert limit.stdout.strip() == str(48 << 20), limit.stderr
        assert dockerd.docker("kill", "-s", "USR1", name).returncode == 0
        removed = dockerd.docker("rm", "-f", name)
        assert removed.returncode == 0, removed.stderr
    finally:
        dockerd.docker("rm", "-f", name)
    assert dockerd.docker("ps", "-aq").stdout == ""


def test_docker_shares_namespaces_between_skiff_containers(dockerd: PrivateDockerd) -> None:
    # --network/--pid container:X: the spec names /proc/<pid>/ns/* paths to join.
    name = "donor"
    dockerd.docker("run", "-d", "--name", name, "--runtime", "skiff", "--network", "none",
                   "--ipc", "shareable", DOCKER_IMAGE, "sleep", "60")  # fmt: skip
    try:
        proc = dockerd.docker(
            "run", "--rm", "--runtime", "skiff", "--network", f"container:{name}",
            "--pid", f"container:{name}", "--ipc", f"container:{name}",
            DOCKER_IMAGE, "ps", "-o", "comm",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["COMMAND", "sleep", "ps"]
    finally:
        dockerd.docker("rm", "-f", name)


def test_docker_leaves_no_runtime_state(dockerd: PrivateDockerd) -> None:
    code, _, err = run(dockerd, "skiff", DOCKER_IMAGE, "true")
    assert code == 0, err
    # Only the compiled seccomp programs stay, for the next container.
    assert wait_for(lambda: set(os.listdir(dockerd.runtime_root)) <= {SECCOMP_CACHE})


# -- containerd ---------------------------------------------------------------


def binary(runtime: str) -> str:
    if runtime == "skiff":
        return runtime_binary()
    found = shutil.which("runc")
    assert found
    return found


@BOTH
def test_ctr_run_prints_hi(containerd: PrivateContainerd, runtime: str) -> None:
    cid = f"hi-{runtime}"
    flags = containerd.run_flags(binary(runtime), cid)
    proc = containerd.ctr("run", *flags, "--rm", CTR_IMAGE, cid, "echo", "hi")
    assert (proc.returncode, proc.stdout) == (0, "hi\n"), proc.stderr


@BOTH
def test_ctr_run_passes_the_exit_code(containerd: PrivateContainerd, runtime: str) -> None:
    cid = f"exit-{runtime}"
    flags = containerd.run_flags(binary(runtime), cid)
    proc = containerd.ctr("run", *flags, "--rm", CTR_IMAGE, cid, "sh", "-c", "exit 5")
    assert proc.returncode == 5, proc.stderr


@BOTH
def test_ctr_detached_task_exec_pause_kill(containerd: PrivateContainerd, runtime: str) -> None:
    cid = f"task-{runtime}"
    flags = containerd.run_flags(binary(runtime), cid)
    started = containerd.ctr("run", *flags, "-d", CTR_IMAGE, cid, "sleep", "60")
    assert started.returncode == 0, started.stderr

    def status() -> str:
        for line in containerd.ctr("task", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields[0] == cid:
                return fields[2]
        return ""

    try:
        assert status() == "RUNNING"
        inside = containerd.ctr("task", "exec", "--exec-id", "e1", cid, "echo", "from inside")
        assert (inside.returncode, inside.stdout) == (0, "from inside\n"), inside.stderr
        assert containerd.ctr("task", "pause", cid).returncode == 0
        assert status() == "PAUSED"
        assert containerd.ctr("task", "resume", cid).returncode == 0
        assert status() == "RUNNING"
        assert containerd.ctr("task", "kill", "-s", "KILL", cid).returncode == 0
        assert wait_for(lambda: status() == "STOPPED")
        deleted = containerd.ctr("task", "delete", cid)
        assert deleted.returncode == 0, deleted.stderr
    finally:
        containerd.ctr("task", "delete", "--force", cid)
        containerd.ctr("container", "delete", cid)
    assert not os.listdir(os.path.join(containerd.base, "runc", containerd.namespace))


def test_ctr_run_with_systemd_cgroups(containerd: PrivateContainerd) -> None:
    # The shim passes --systemd-cgroup and cgroupsPath "slice:prefix:name". With
    # no systemd to ask, skiff-runtime makes the cgroup systemd would have made
    # (runc refuses: "systemd not running on this host").
    cid = "sd"
    flags = containerd.run_flags(runtime_binary(), cid)
    flags[-1] = f"--cgroup={containerd.slice}:ctr:{cid}"
    proc = containerd.ctr(
        "run", *flags, "--runc-systemd-cgroup", "--rm", CTR_IMAGE, cid,
        "sh", "-c", "grep -E '^[0-9]+:(pids|):' /proc/self/cgroup",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"/{containerd.slice}/ctr-{cid}.scope" in proc.stdout
