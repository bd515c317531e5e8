"""What the kernel decides about a container, reported as dockerd reports it, against a
real skiffd driven by the docker CLI: an OOM kill (State.OOMKilled, the `oom` event
before `die`), `exec --privileged` (every capability the host grants, beyond the
container's own set), and `container:` namespace modes (the other container's
namespaces found at each start, not at create)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from tests.integration.test_containers import (
    CONTAINER_MARKS,
    Daemon,
    _mounts_under,
    busybox_daemon,
    dk,
    needs_docker,
)

pytestmark = [*CONTAINER_MARKS, needs_docker]


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    yield from busybox_daemon("skk-")


def ok(result: object) -> str:
    assert getattr(result, "returncode", 1) == 0, getattr(result, "stderr", "")
    return str(getattr(result, "stdout", ""))


def state(d: Daemon, name: str) -> dict[str, object]:
    doc = json.loads(ok(dk(d, "inspect", "--format", "{{json .State}}", name)))
    assert isinstance(doc, dict)
    return doc


def actions(d: Daemon, name: str, since: float) -> list[str]:
    until = f"{time.time() + 1:.3f}"
    events = dk(d, "events", "--since", f"{since:.3f}", "--until", until, "--filter",
                f"container={name}", "--format", "{{.Action}}")  # fmt: skip
    return ok(events).split()


def cap_eff(d: Daemon, name: str, of_init: bool) -> str:
    """CapEff of the container's init, or of the exec that reads it."""
    where = "/proc/1/status" if of_init else "/proc/self/status"
    return ok(dk(d, "exec", name, "grep", "^CapEff:", where)).split()[1]


# -- OOM ------------------------------------------------------------------------


def test_oom_kill_is_reported(daemon: Daemon) -> None:
    since = time.time() - 1
    # Doubling a shell variable until the 8 MiB cgroup limit has the kernel kill it.
    run = dk(daemon, "run", "--name", "oomer", "-m", "8m", "busybox", "sh", "-c",
             "x=a; while true; do x=$x$x; done")  # fmt: skip
    assert run.returncode == 137, run.stderr
    s = state(daemon, "oomer")
    assert (s["OOMKilled"], s["ExitCode"], s["Status"]) == (True, 137, "exited")
    seen = actions(daemon, "oomer", since)
    assert seen.count("oom") == 1, seen  # one kill, one event
    assert seen.index("oom") < seen.index("die"), seen  # as dockerd: oom, then die


def test_oom_kill_of_a_child_is_reported_at_once(daemon: Daemon) -> None:
    """dockerd emits `oom` when the kernel reports it (containerd's TaskOOM), even
    when the init goes on: here an exec'd process is killed, the container runs."""
    since = time.time() - 1
    ok(dk(daemon, "run", "-d", "--name", "parent", "-m", "8m", "busybox", "sleep", "300"))
    hog = dk(daemon, "exec", "parent", "sh", "-c", "x=a; while true; do x=$x$x; done")
    assert hog.returncode == 137, hog.stderr
    deadline = time.monotonic() + 10
    while "oom" not in (seen := actions(daemon, "parent", since)):
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
    assert state(daemon, "parent")["Status"] == "running"
    ok(dk(daemon, "rm", "-f", "parent"))
    seen = actions(daemon, "parent", since)
    assert seen.count("oom") == 1, seen
    assert seen.index("oom") < seen.index("die"), seen


def test_sigkill_under_a_limit_is_no_oom(daemon: Daemon) -> None:
    since = time.time() - 1
    ok(dk(daemon, "run", "-d", "--name", "killed", "-m", "8m", "busybox", "sleep", "300"))
    ok(dk(daemon, "kill", "killed"))
    assert ok(dk(daemon, "wait", "killed")).strip() == "137"
    s = state(daemon, "killed")
    assert (s["OOMKilled"], s["ExitCode"]) == (False, 137)
    assert "oom" not in actions(daemon, "killed", since)


# -- exec --privileged ------------------------------------------------------------


def _host_bounding_set() -> int:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("CapBnd:"))
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    return int(line.split()[1], 16) & ((1 << (last + 1)) - 1)


def test_exec_privileged_gets_every_capability(daemon: Daemon) -> None:
    ok(dk(daemon, "run", "-d", "--name", "plain", "busybox", "sleep", "300"))
    # The container keeps Docker's 14; a privileged exec gets all the host grants
    # (the daemon's bounding set: capset cannot give one the host lacks).
    before = cap_eff(daemon, "plain", of_init=True)
    assert int(before, 16) == 0xA80425FB
    out = ok(dk(daemon, "exec", "--privileged", "plain", "sh", "-c", "grep ^Cap /proc/self/status"))
    caps = {k.rstrip(":"): int(v, 16) for k, v in (line.split() for line in out.splitlines())}
    host = _host_bounding_set()
    assert (caps["CapEff"], caps["CapPrm"], caps["CapBnd"]) == (host, host, host), out
    assert cap_eff(daemon, "plain", of_init=False) == before  # a plain exec: the 14
    assert cap_eff(daemon, "plain", of_init=True) == before  # the init unchanged


# -- container: namespace modes ------------------------------------------------------


def _ns(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def _pid(d: Daemon, name: str) -> int:
    return int(ok(dk(d, "inspect", "--format", "{{.State.Pid}}", name)).strip())


def test_container_modes_join_at_start(daemon: Daemon) -> None:
    ok(dk(daemon, "create", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "300"))
    joiner = ["--network", "container:donor", "--pid", "container:donor"]
    ok(dk(daemon, "create", "--name", "joiner", *joiner, "--ipc", "container:donor",
          "busybox", "sleep", "300"))  # fmt: skip
    donor_id = ok(dk(daemon, "inspect", "--format", "{{.Id}}", "donor")).strip()
    modes = "{{.HostConfig.NetworkMode}} {{.HostConfig.PidMode}} {{.HostConfig.IpcMode}}"
    # dockerd keeps the other container by id.
    assert (
        ok(dk(daemon, "inspect", "--format", modes, "joiner")).split()
        == [f"container:{donor_id}"] * 3
    )
    # The donor is not running: start fails as dockerd's does, nothing runs.
    refused = dk(daemon, "start", "joiner")
    assert refused.returncode != 0
    assert f"cannot join network of a non running container: {donor_id}" in refused.stderr
    assert state(daemon, "joiner")["Status"] == "created"
    ok(dk(daemon, "start", "donor"))
    ok(dk(daemon, "restart", "-t", "0", "donor"))  # a new init, new namespaces
    ok(dk(daemon, "start", "joiner"))
    donor, joined = _pid(daemon, "donor"), _pid(daemon, "joiner")
    for kind in ("net", "pid", "ipc"):
        assert _ns(joined, kind) == _ns(donor, kind), kind
    assert _ns(joined, "uts") != _ns(donor, "uts")
    # Restarted with the donor restarted again: it follows the donor's new init.
    ok(dk(daemon, "restart", "-t", "0", "donor"))
    ok(dk(daemon, "restart", "-t", "0", "joiner"))
    donor, joined = _pid(daemon, "donor"), _pid(daemon, "joiner")
    for kind in ("net", "pid", "ipc"):
        assert _ns(joined, kind) == _ns(donor, kind), kind
    # POSIX shared memory is shared too: /dev/shm is the donor's (its ShmPath in dockerd),
    # through a joiner as well, and a shareable donor's is a tmpfs of --shm-size.
    ok(dk(daemon, "exec", "donor", "sh", "-c", "echo shared > /dev/shm/note"))
    assert ok(dk(daemon, "exec", "joiner", "cat", "/dev/shm/note")) == "shared\n"
    second = dk(
        daemon, "run", "--rm", "--ipc", "container:joiner", "busybox", "cat", "/dev/shm/note"
    )
    assert ok(second) == "shared\n"
    size = ok(dk(daemon, "inspect", "--format", "{{.HostConfig.ShmSize}}", "donor"))
    assert size.strip() == str(64 * 1024 * 1024)  # dockerd's default, as inspect shows it
    sized = ["--ipc", "shareable", "--shm-size", "8m", "busybox", "df", "-k", "/dev/shm"]
    assert ok(dk(daemon, "run", "--rm", *sized)).splitlines()[1].split()[1] == "8192"
    for name in ("joiner", "donor"):
        ok(dk(daemon, "rm", "-f", name))
    assert not [m for m in _mounts_under(daemon.data) if m.endswith("/shm")]


def test_container_mode_errors_at_start(daemon: Daemon) -> None:
    ok(dk(daemon, "create", "--name", "private-ipc", "busybox", "sleep", "300"))
    for mode in ("--pid", "--ipc"):
        ok(dk(daemon, "create", "--name", f"j{mode[2:]}", mode, "container:private-ipc",
              "busybox", "true"))  # fmt: skip
    donor_id = ok(dk(daemon, "inspect", "--format", "{{.Id}}", "private-ipc")).strip()
    pid = dk(daemon, "start", "jpid")
    assert f"container {donor_id} is not running" in pid.stderr, pid.stderr
    ipc = dk(daemon, "start", "jipc")
    want = f"can't join IPC of container {donor_id}: container {donor_id} is not running"
    assert want in ipc.stderr, ipc.stderr
    ok(dk(daemon, "start", "private-ipc"))
    ipc = dk(daemon, "start", "jipc")
    assert "non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in ipc.stderr
    # An unknown container for --pid/--ipc: refused at create (400, so no pull).
    missing = dk(daemon, "create", "--pid", "container:nosuch", "busybox", "true")
    assert missing.returncode != 0
    assert "No such container: nosuch" in missing.stderr
    assert "Unable to find image" not in missing.stderr
