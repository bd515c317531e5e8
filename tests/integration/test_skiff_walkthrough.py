"""The seed's walkthrough with the skiff CLI only, against a real skiffd (own data root,
exec root and socket): run -d a shell, exec touches a file, stop/start keeps it, commit -m
makes an image with it, cp both ways, logs --since on a loop, container prune -f, rmi -f,
inspect with state, pid and mounts; and exec's flags, tty and exit codes."""

from __future__ import annotations

import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import tarfile
import termios
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.test_containers import (
    DOCKER,
    Daemon,
    busybox_daemon,
    dk,
    skiff,
)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers need root"),
    pytest.mark.skipif(
        not any(os.path.exists(p) for p in ("/bin/busybox", "/usr/bin/busybox")),
        reason="busybox-static not installed",
    ),
]


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    yield from busybox_daemon("skw-")


def ok(d: Daemon, *args: str, stdin: str | None = None) -> str:
    result = skiff(d, *args, stdin=stdin)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def test_walkthrough(daemon: Daemon, tmp_path: Path) -> None:
    d = daemon
    loop = "while :; do echo x; sleep 0.2; done"
    ok(d, "run", "-d", "--name", "loop", "busybox", "sh", "-c", loop)
    loop_started = time.monotonic()
    ok(d, "volume", "create", "walkvol")
    ok(d, "run", "-d", "-i", "--name", "walk", "-v", "walkvol:/data", "busybox", "sh")
    try:
        # exec touches a file; stop/start keeps it
        ok(d, "exec", "walk", "touch", "/tmp/made-by-exec")
        assert ok(d, "exec", "walk", "ls", "/tmp") == "made-by-exec\n"
        ok(d, "stop", "-t", "1", "walk")
        assert "Exited" in ok(d, "ps", "-a", "--filter", "name=walk", "--format", "{{.Status}}")
        ok(d, "start", "walk")
        assert ok(d, "exec", "walk", "ls", "/tmp") == "made-by-exec\n"

        # inspect: state, pid, mounts
        doc = json.loads(ok(d, "inspect", "walk"))[0]
        state = doc["State"]
        assert state["Running"] is True
        assert state["Status"] == "running"
        assert state["Pid"] > 0
        assert os.path.exists(f"/proc/{state['Pid']}")
        mounts = {m["Destination"]: m for m in doc["Mounts"]}
        assert mounts["/data"]["Type"] == "volume"
        assert mounts["/data"]["Name"] == "walkvol"

        # commit -m makes an image that has the file
        image_id = ok(d, "commit", "-m", "has the file", "walk", "walked:v1").strip()
        assert image_id.startswith("sha256:")
        assert ok(d, "run", "--rm", "walked:v1", "ls", "/tmp") == "made-by-exec\n"
        assert ok(d, "history", "--format", "{{.Comment}}", "walked:v1").splitlines()[0] == (
            "has the file"
        )

        # cp both ways, and tars on stdin/stdout
        src = tmp_path / "hello.txt"
        src.write_text("hello from the host\n")
        ok(d, "cp", str(src), "walk:/tmp/")
        assert ok(d, "exec", "walk", "cat", "/tmp/hello.txt") == "hello from the host\n"
        ok(d, "cp", str(src), "walk:/tmp/renamed.txt")
        assert ok(d, "exec", "walk", "cat", "/tmp/renamed.txt") == "hello from the host\n"
        ok(d, "cp", "walk:/etc/passwd", str(tmp_path / "passwd"))
        assert (tmp_path / "passwd").read_text().startswith("root:")
        ok(d, "cp", "walk:/tmp", str(tmp_path / "tmpdir"))
        assert (tmp_path / "tmpdir" / "hello.txt").read_text() == "hello from the host\n"
        (tmp_path / "into").mkdir()
        ok(d, "container", "cp", "walk:/tmp/.", str(tmp_path / "into"))
        assert (tmp_path / "into" / "made-by-exec").exists()
        tree = tmp_path / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "f").write_text("deep\n")
        ok(d, "cp", str(tree), "walk:/srv")
        assert ok(d, "exec", "walk", "cat", "/srv/sub/f") == "deep\n"
        out = subprocess.run(
            [sys.executable, "-m", "skiff.cli.main", "-H", d.host, "cp", "walk:/srv", "-"],
            capture_output=True,
            check=True,
        ).stdout
        tar_path = tmp_path / "srv.tar"
        tar_path.write_bytes(out)
        with tarfile.open(tar_path) as tf:
            assert {"srv", "srv/sub", "srv/sub/f"} <= set(tf.getnames())
        with open(tar_path, "rb") as f:
            put = subprocess.run(
                [sys.executable, "-m", "skiff.cli.main", "-H", d.host, "cp", "-", "walk:/tmp"],
                stdin=f,
                capture_output=True,
                check=False,
            )
        assert put.returncode == 0, put.stderr
        assert ok(d, "exec", "walk", "cat", "/tmp/srv/sub/f") == "deep\n"
        missing = skiff(d, "cp", "walk:/nonexistent", str(tmp_path / "x"))
        assert missing.returncode == 1
        assert "Could not find the file /nonexistent in container walk" in missing.stderr

        # logs --since 5s on a loop that has run for more than 5 seconds
        time.sleep(max(0.0, 6.5 - (time.monotonic() - loop_started)))
        everything = ok(d, "logs", "loop").splitlines()
        recent = ok(d, "logs", "-t", "--since", "5s", "loop").splitlines()
        assert 10 <= len(recent) < len(everything), (len(recent), len(everything))
        now = time.time()
        for line in recent:
            stamp, _, text = line.partition(" ")
            assert text == "x"
            when = datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00").timestamp()
            assert now - 6.5 < when <= now + 1
        ok(d, "rm", "-f", "loop")

        # container prune -f removes the stopped ones only
        ok(d, "run", "--name", "done1", "busybox", "true")
        pruned = ok(d, "container", "prune", "-f")
        assert pruned.startswith("Deleted Containers:")
        names = ok(d, "ps", "-a", "--format", "{{.Names}}").split()
        assert "done1" not in names
        assert "walk" in names

        # rmi -f of the committed image
        ok(d, "rmi", "-f", "walked:v1")
        assert "walked" not in ok(d, "images", "--format", "{{.Repository}}")
    finally:
        skiff(d, "rm", "-f", "walk", "loop", "done1")
        skiff(d, "rmi", "-f", "walked:v1")
        skiff(d, "volume", "rm", "walkvol")


def test_exec_flags_and_exit_codes(daemon: Daemon) -> None:
    d = daemon
    ok(d, "run", "-d", "--name", "ex", "busybox", "sleep", "300")
    try:
        assert skiff(d, "exec", "ex", "sh", "-c", "exit 7").returncode == 7
        assert ok(d, "exec", "-e", "FOO=bar", "ex", "sh", "-c", "echo $FOO") == "bar\n"
        assert ok(d, "exec", "-w", "/etc", "ex", "pwd") == "/etc\n"
        assert ok(d, "exec", "-u", "nobody", "ex", "id", "-un") == "nobody\n"
        assert ok(d, "exec", "-i", "ex", "cat", stdin="piped\n") == "piped\n"
        assert ok(d, "container", "exec", "ex", "echo", "hi") == "hi\n"
        split = skiff(d, "exec", "ex", "sh", "-c", "echo out; echo err >&2")
        assert (split.stdout, split.stderr) == ("out\n", "err\n")
        missing = skiff(d, "exec", "ex", "nosuchcmd")
        assert missing.returncode == 127, (missing.stdout, missing.stderr)
        assert "executable file not found in $PATH" in missing.stdout + missing.stderr
        denied = skiff(d, "exec", "ex", "/etc")
        assert denied.returncode == 126, (denied.stdout, denied.stderr)
        assert "permission denied" in denied.stdout + denied.stderr
        ok(d, "exec", "-d", "ex", "touch", "/detached")
        wait = "for i in 1 2 3 4 5 6 7 8 9; do test -e /detached && exit 0; sleep 0.2; done; exit 1"
        ok(d, "exec", "ex", "sh", "-c", wait)
        usage = skiff(d, "exec", "ex")
        assert usage.returncode == 125
        assert "requires at least 2 arguments" in usage.stderr
        assert skiff(d, "exec", "-it", "ex", "true", stdin="").returncode == 1
        ok(d, "run", "--name", "ex-stopped", "busybox", "true")
        refused = skiff(d, "exec", "ex-stopped", "true")
        assert refused.returncode == 1
        assert "is not running" in refused.stderr
    finally:
        skiff(d, "rm", "-f", "ex", "ex-stopped")


def _run_in_pty(argv: list[str], rows: int, cols: int, timeout: float = 30) -> tuple[int, bytes]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True, close_fds=True
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=10), out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_exec_it_has_a_sized_tty(daemon: Daemon) -> None:
    d = daemon
    ok(d, "run", "-d", "--name", "tt", "busybox", "sleep", "300")
    try:
        argv = [sys.executable, "-m", "skiff.cli.main", "-H", d.host, "exec", "-it", "tt"]
        code, out = _run_in_pty([*argv, "sh", "-c", "tty; stty size; exit 3"], 37, 91)
        assert code == 3, out
        text = out.decode(errors="replace")
        assert "/dev/pts/" in text, text
        assert "37 91" in text, text
    finally:
        skiff(d, "rm", "-f", "tt")


@pytest.mark.skipif(DOCKER is None, reason="docker CLI not installed")
def test_docker_events_show_the_container_lifecycle(daemon: Daemon) -> None:
    d = daemon
    since = f"{time.time() - 1:.3f}"
    result = dk(d, "run", "--rm", "--name", "evt", "busybox", "true")
    assert result.returncode == 0, result.stderr
    ok(d, "run", "-d", "--name", "evt2", "busybox", "sleep", "300")
    ok(d, "exec", "evt2", "true")
    ok(d, "stop", "-t", "1", "evt2")
    ok(d, "rm", "evt2")
    time.sleep(0.3)
    until = f"{time.time():.3f}"
    fmt = "{{.Type}}|{{.Action}}|{{.Actor.Attributes.name}}|{{.Actor.Attributes.exitCode}}"
    events = dk(d, "events", "--since", since, "--until", until, "--format", fmt)
    assert events.returncode == 0, events.stderr
    lines = [line.split("|") for line in events.stdout.splitlines()]
    assert all(parts[0] == "container" for parts in lines if parts[0] != "image")
    evt = [p[1] for p in lines if p[2:3] == ["evt"]]
    for action in ("create", "start", "die", "destroy"):
        assert action in evt, (action, evt)
    assert evt.index("create") < evt.index("start") < evt.index("die") < evt.index("destroy")
    assert ["container", "die", "evt", "0"] in lines
    evt2 = [p[1] for p in lines if p[2:3] == ["evt2"]]
    assert evt2[:2] == ["create", "start"], evt2
    assert any(a.startswith("exec_start") for a in evt2), evt2
    assert "exec_die" in evt2, evt2
    assert evt2.index("kill") < evt2.index("die") < evt2.index("stop") < evt2.index("destroy")
    filtered = dk(d, "events", "--since", since, "--until", until, "--filter",
                  "container=evt", "--filter", "event=die", "--format", fmt)  # fmt: skip
    assert filtered.stdout.splitlines() == ["container|die|evt|0"], filtered.stdout
