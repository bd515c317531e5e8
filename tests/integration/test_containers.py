"""Containers end to end: a real skiffd (own data root, exec root, socket) with a busybox
image bootstrapped from the host, driven by the real docker CLI, the Docker SDK for
Python and the skiff CLI; and live restore (SIGKILL of skiffd while containers run).

Teardown removes every container through the API, stops skiffd and the shim parent
by their PIDs, and checks that no mount under the data root is left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from skiff.testing.daemon import PrivateSkiffd

DOCKER = shutil.which("docker")
needs_docker = pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
# What every container test module here needs (test_container_extras and
# test_container_kernel_facts use these marks too).
CONTAINER_MARKS = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers need root"),
    pytest.mark.skipif(
        not any(os.path.exists(p) for p in ("/bin/busybox", "/usr/bin/busybox")),
        reason="busybox-static not installed",
    ),
]
pytestmark = CONTAINER_MARKS


class Daemon(PrivateSkiffd):
    """The skiffd of these tests (test_container_extras and test_build use it too)."""

    @property
    def data(self) -> Path:
        return self.data_root


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(str(path))]


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0


def busybox_daemon(prefix: str) -> Iterator[Daemon]:
    """A skiffd on a fresh /tmp folder (short: unix socket paths) with busybox in it.

    On the way out: every container removed, the daemon and its shim parent
    stopped by PID, and nothing left mounted under the folder.
    """
    d = Daemon.temporary(prefix).start()
    try:
        result = skiff(d, "image", "bootstrap", "busybox")
        assert result.returncode == 0, result.stderr
        yield d
    finally:
        try:
            if d.running():
                client = docker.DockerClient(base_url=d.host)
                for c in client.containers.list(all=True):
                    c.remove(force=True)
                client.close()
        finally:
            left = d.close()
        assert not left, f"mounts left behind: {left}"


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    yield from busybox_daemon("skc-")


def _shim_parent_pid(d: Daemon) -> int:
    return d.shim_parent_pid()


def dk(
    d: Daemon, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    assert DOCKER is not None
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(d.root),
        "DOCKER_CONFIG": str(d.root / "docker-config"),
        "DOCKER_HOST": d.host,
    }
    return subprocess.run(
        [DOCKER, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def skiff(d: Daemon, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skiff.cli.main", "-H", d.host, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _inspect(d: Daemon, name: str) -> dict[str, object]:
    result = dk(d, "inspect", name)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[0]
    assert isinstance(doc, dict)
    return doc


# -- the docker CLI ---------------------------------------------------------------------


@needs_docker
def test_run_rm_echo(daemon: Daemon) -> None:
    result = dk(daemon, "run", "--rm", "busybox", "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
    assert "busybox" not in dk(daemon, "ps", "-a").stdout.split("\n", 1)[1]


@needs_docker
def test_run_stdin_pipe(daemon: Daemon) -> None:
    result = dk(daemon, "run", "--rm", "-i", "busybox", "cat", stdin="hi\nthere\n")
    assert (result.returncode, result.stdout) == (0, "hi\nthere\n"), result.stderr


@needs_docker
def test_exit_codes(daemon: Daemon) -> None:
    assert dk(daemon, "run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    missing = dk(daemon, "run", "--name", "c127", "busybox", "nosuchcmd")
    assert missing.returncode == 127, missing.stderr
    assert "executable file not found" in missing.stderr
    denied = dk(daemon, "run", "--name", "c126", "busybox", "/etc")
    assert denied.returncode == 126, denied.stderr
    doc = _inspect(daemon, "c127")
    state = doc["State"]
    assert isinstance(state, dict)
    assert state["ExitCode"] == 127
    assert state["Status"] == "created"
    assert dk(daemon, "rm", "c127", "c126").returncode == 0
    assert not [m for m in _mounts_under(daemon.data) if "/containers/" in m]
    # --rm: the docker CLI waits for the daemon to remove a container whose
    # start failed (dockerd does; it used to hang here).
    gone = dk(daemon, "run", "--rm", "--name", "rm127", "busybox", "nosuchcmd", timeout=30)
    assert gone.returncode == 127, gone.stderr
    assert dk(daemon, "ps", "-aq", "--filter", "name=rm127").stdout == ""


@needs_docker
def test_run_d_logs_since_stop_start(daemon: Daemon) -> None:
    loop = "i=0; while true; do i=$((i+1)); echo line$i; sleep 0.2; done"
    result = dk(daemon, "run", "-d", "--name", "ticker", "busybox", "sh", "-c", loop)
    assert result.returncode == 0, result.stderr
    cid = result.stdout.strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 20
    while len(logs := dk(daemon, "logs", "ticker").stdout.split()) < 12:  # > 2 s of output
        assert time.monotonic() < deadline, logs
        time.sleep(0.2)
    assert logs[:2] == ["line1", "line2"]
    recent = dk(daemon, "logs", "--since", "1s", "ticker").stdout.split()
    assert recent
    assert "line1" not in recent
    assert dk(daemon, "logs", "--tail", "1", "ticker").stdout.count("\n") == 1
    stamped = dk(daemon, "logs", "-t", "--tail", "1", "ticker").stdout
    assert stamped.startswith("20")
    assert "line" in stamped
    ps = dk(daemon, "ps").stdout
    assert "ticker" in ps
    assert "Up " in ps
    # A file in the container survives stop and start.
    touch = dk(
        daemon, "run", "-d", "--name", "keeper", "busybox", "sh", "-c", "touch /kept; sleep 100"
    )
    assert touch.returncode == 0
    stop = dk(daemon, "stop", "-t", "1", "keeper", "ticker")
    assert stop.returncode == 0, stop.stderr
    again = dk(daemon, "stop", "keeper")  # already stopped: 304, the CLI says nothing
    assert again.returncode == 0
    assert dk(daemon, "start", "keeper").returncode == 0
    assert _inspect(daemon, "keeper")["State"]["Running"] is True  # type: ignore[index]
    assert dk(daemon, "kill", "keeper").returncode == 0
    assert dk(daemon, "wait", "keeper").stdout.strip() == "137"
    ps_a = dk(daemon, "ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert "keeper Exited (137)" in ps_a
    assert "ticker Exited" in ps_a
    not_running = dk(daemon, "kill", "keeper")
    assert not_running.returncode == 1
    assert "is not running" in not_running.stderr
    assert dk(daemon, "rm", "keeper", "ticker").returncode == 0


@needs_docker
def test_files_persist_across_stop_start(daemon: Daemon) -> None:
    name = "persist"
    assert (
        dk(daemon, "run", "--name", name, "busybox", "sh", "-c", "echo kept > /f").returncode == 0
    )
    assert dk(daemon, "start", "-a", name).returncode == 0
    result = dk(daemon, "run", "--rm", "busybox", "cat", "/f")
    assert result.returncode == 1  # another container does not see it
    doc = _inspect(daemon, name)
    assert doc["Name"] == "/persist"
    assert doc["Path"] == "sh"
    assert dk(daemon, "rm", name).returncode == 0


@needs_docker
def test_name_conflict_rm_f_wait(daemon: Daemon) -> None:
    first = dk(daemon, "run", "-d", "--name", "web", "busybox", "sleep", "100")
    assert first.returncode == 0
    cid = first.stdout.strip()
    clash = dk(daemon, "run", "--name", "web", "busybox", "true")
    assert clash.returncode == 125
    assert f'The container name "/web" is already in use by container "{cid}"' in clash.stderr
    running = dk(daemon, "rm", "web")
    assert running.returncode == 1
    assert "container is running" in running.stderr
    pid = _inspect(daemon, "web")["State"]["Pid"]  # type: ignore[index]
    assert isinstance(pid, int)
    assert pid > 0
    assert dk(daemon, "rm", "-f", "web").returncode == 0
    assert (
        not os.path.exists(f"/proc/{pid}/status") or "Z" in Path(f"/proc/{pid}/status").read_text()
    )
    assert not os.path.exists(daemon.data / "containers" / cid)
    assert not [m for m in _mounts_under(daemon.data) if cid in m]
    assert not list(Path("/sys/fs/cgroup").glob(f"**/{cid}"))
    gone = dk(daemon, "inspect", "web")
    assert gone.returncode == 1
    assert "No such" in gone.stderr


@needs_docker
def test_unknown_image_tries_to_pull(daemon: Daemon) -> None:
    result = dk(daemon, "run", "--rm", "nosuchimage-xyz")
    assert result.returncode == 125
    assert "Unable to find image 'nosuchimage-xyz:latest' locally" in result.stderr


@needs_docker
def test_pause_rename_restart_policy(daemon: Daemon) -> None:
    assert dk(daemon, "run", "-d", "--name", "p1", "busybox", "sleep", "100").returncode == 0
    assert dk(daemon, "pause", "p1").returncode == 0
    assert _inspect(daemon, "p1")["State"]["Paused"] is True  # type: ignore[index]
    assert dk(daemon, "unpause", "p1").returncode == 0
    assert dk(daemon, "rename", "p1", "p2").returncode == 0
    assert _inspect(daemon, "p2")["Name"] == "/p2"
    assert dk(daemon, "rm", "-f", "p2").returncode == 0
    failing = dk(
        daemon, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "false"
    )
    assert failing.returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        doc = _inspect(daemon, "flaky")
        if doc["RestartCount"] == 2 and doc["State"]["Status"] == "exited":  # type: ignore[index]
            break
        time.sleep(0.2)
    assert doc["RestartCount"] == 2
    assert dk(daemon, "rm", "flaky").returncode == 0


# -- the Docker SDK ---------------------------------------------------------------------


def test_sdk(daemon: Daemon) -> None:
    client = docker.DockerClient(base_url=daemon.host)
    try:
        assert client.containers.run("busybox", "echo sdk", remove=True) == b"sdk\n"
        c = client.containers.run(
            "busybox", ["sh", "-c", "for i in 1 2 3; do echo l$i; sleep 0.1; done"], detach=True
        )
        assert list(c.logs(stream=True, follow=True)) == [b"l1\n", b"l2\n", b"l3\n"]
        assert c.wait() == {"Error": None, "StatusCode": 0}
        c.reload()
        assert c.status == "exited"
        c.remove()
        c = client.containers.create("busybox", "cat", stdin_open=True)
        sock = client.api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stream": 1})
        c.start()
        raw = sock._sock
        raw.sendall(b"ping\n")
        raw.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := raw.recv(4096):
            data += chunk
        assert data == b"\x01\x00\x00\x00\x00\x00\x00\x05ping\n"
        assert c.wait()["StatusCode"] == 0
        c.remove()
    finally:
        client.close()


# -- the skiff CLI ----------------------------------------------------------------------


def test_skiff_cli(daemon: Daemon) -> None:
    result = skiff(daemon, "run", "--rm", "busybox", "echo", "from skiff")
    assert (result.returncode, result.stdout) == (0, "from skiff\n"), result.stderr
    assert skiff(daemon, "run", "-d", "--name", "sk", "busybox", "sleep", "100").returncode == 0
    ps = skiff(daemon, "ps")
    assert "sk" in ps.stdout
    assert ps.stdout.startswith("CONTAINER ID")
    assert skiff(daemon, "stop", "-t", "0", "sk").returncode == 0
    assert len(skiff(daemon, "ps", "-a", "-q", "--no-trunc").stdout.split()[0]) == 64
    assert skiff(daemon, "rm", "sk").returncode == 0
    assert skiff(daemon, "run", "busybox", "nosuchcmd").returncode == 127


# -- live restore -------------------------------------------------------------------------


@needs_docker
def test_live_restore_after_sigkill(daemon: Daemon) -> None:
    loop = "while true; do echo tick; sleep 0.2; done"
    assert dk(daemon, "run", "-d", "--name", "lr-run", "busybox", "sh", "-c", loop).returncode == 0
    assert (
        dk(
            daemon, "run", "-d", "--name", "lr-exit", "busybox", "sh", "-c", "sleep 1; exit 7"
        ).returncode
        == 0
    )
    daemon.stop(signal.SIGKILL)
    time.sleep(2)
    daemon.start()
    ps = dk(daemon, "ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert "lr-run Up" in ps
    assert "lr-exit Exited (7)" in ps
    assert DOCKER is not None
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(daemon.root), "DOCKER_HOST": daemon.host}
    follow = subprocess.Popen(
        [DOCKER, "logs", "-f", "--tail", "1", "lr-run"], env=env, stdout=subprocess.PIPE
    )
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == b"tick\n"
        assert follow.stdout.readline() == b"tick\n"  # a new line: it follows
        stop = dk(daemon, "stop", "-t", "1", "lr-run")
        assert stop.returncode == 0, stop.stderr
        assert follow.wait(10) == 0  # logs -f ends when the container stops
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert _inspect(daemon, "lr-run")["State"]["Status"] == "exited"  # type: ignore[index]
    assert dk(daemon, "rm", "lr-run", "lr-exit").returncode == 0
