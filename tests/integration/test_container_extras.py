"""exec, top, stats, cp, export, diff, commit, update, container prune and volumes
against a real skiffd, driven by the real docker CLI and the Docker SDK for Python.
The seed's walkthrough piece: run -d a shell, exec touch, commit -m, run the image,
diff, cp both ways."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.test_containers import (
    CONTAINER_MARKS,
    Daemon,
    _mounts_under,
    busybox_daemon,
    dk,
    needs_docker,
)

pytestmark = CONTAINER_MARKS


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    yield from busybox_daemon("skx-")


@pytest.fixture
def sdk(daemon: Daemon) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=daemon.host)
    yield client
    client.close()


def ok(result: object) -> str:
    assert getattr(result, "returncode", 1) == 0, getattr(result, "stderr", "")
    return str(getattr(result, "stdout", ""))


@needs_docker
def test_walkthrough_exec_commit_diff_cp(daemon: Daemon, tmp_path: Path) -> None:
    ok(dk(daemon, "run", "-d", "--name", "walk", "busybox", "sleep", "300"))
    try:
        ok(dk(daemon, "exec", "walk", "touch", "/tmp/made-by-exec"))
        assert ok(dk(daemon, "exec", "walk", "ls", "/tmp")) == "made-by-exec\n"
        diff = ok(dk(daemon, "diff", "walk")).splitlines()
        # Only the container's own changes, as dockerd shows them: the mount points
        # (/etc/hosts, /proc...) and /.dockerenv are in its init layer, not in these.
        assert sorted(diff) == ["A /tmp/made-by-exec", "C /tmp"]
        assert ok(dk(daemon, "exec", "walk", "readlink", "/etc/mtab")) == "/proc/mounts\n"
        ok(dk(daemon, "exec", "walk", "test", "-f", "/.dockerenv"))
        out = ok(dk(daemon, "commit", "-m", "has the file", "-a", "me", "walk", "walked:v1"))
        assert out.startswith("sha256:")
        listed = ok(dk(daemon, "run", "--rm", "walked:v1", "ls", "/tmp"))
        assert listed == "made-by-exec\n"
        history = ok(dk(daemon, "history", "--format", "{{.Comment}}", "walked:v1"))
        assert history.splitlines()[0] == "has the file"
        # cp both ways
        src = tmp_path / "hello.txt"
        src.write_text("hello from the host\n")
        ok(dk(daemon, "cp", str(src), "walk:/tmp/"))
        cat = ok(dk(daemon, "exec", "walk", "cat", "/tmp/hello.txt"))
        assert cat == "hello from the host\n"
        ok(dk(daemon, "cp", "walk:/etc/passwd", str(tmp_path / "passwd")))
        assert "root" in (tmp_path / "passwd").read_text()
        ok(dk(daemon, "cp", "walk:/tmp", str(tmp_path / "tmpdir")))
        assert (tmp_path / "tmpdir" / "hello.txt").exists()
        walk_id = ok(dk(daemon, "inspect", "--format", "{{.Id}}", "walk")).strip()
    finally:
        dk(daemon, "rm", "-f", "walk")
        dk(daemon, "rmi", "-f", "walked:v1")
    # rm took the writable layer and the init layer under it.
    db = sqlite3.connect(f"file:{daemon.data}/snapshots/metadata.db?mode=ro", uri=True)
    try:
        left = db.execute("SELECT key FROM snapshots WHERE key LIKE ?", (f"%{walk_id}%",))
        assert left.fetchall() == []
    finally:
        db.close()


@needs_docker
def test_exec_flags_and_exit_codes(daemon: Daemon) -> None:
    ok(dk(daemon, "run", "-d", "--name", "ex", "busybox", "sleep", "300"))
    try:
        assert dk(daemon, "exec", "ex", "sh", "-c", "exit 7").returncode == 7
        env = ok(dk(daemon, "exec", "-e", "FOO=bar", "ex", "sh", "-c", "echo $FOO"))
        assert env == "bar\n"
        assert ok(dk(daemon, "exec", "-w", "/etc", "ex", "pwd")) == "/etc\n"
        assert ok(dk(daemon, "exec", "-u", "nobody", "ex", "id", "-un")) == "nobody\n"
        # The groups are run -u's (dockerd: groups=65534(nobody), the user's own gid).
        for verb in (["exec", "-u", "nobody", "ex"], ["run", "--rm", "-u", "nobody", "busybox"]):
            assert ok(dk(daemon, *verb, "id", "-G")) == "65534\n", verb
        assert ok(dk(daemon, "exec", "-i", "ex", "cat", stdin="piped\n")) == "piped\n"
        missing = dk(daemon, "exec", "ex", "nosuchcmd")
        assert missing.returncode == 127, (missing.stdout, missing.stderr)
        assert "executable file not found" in missing.stdout + missing.stderr
        denied = dk(daemon, "exec", "ex", "/etc")
        assert denied.returncode == 126, (denied.stdout, denied.stderr)
        ok(dk(daemon, "exec", "-d", "ex", "touch", "/detached"))
        ok(
            dk(
                daemon,
                "exec",
                "ex",
                "sh",
                "-c",
                "for i in 1 2 3 4 5 6 7 8 9; do test -e /detached && exit 0; sleep 0.2; done; exit 1",
            )
        )
        stopped = dk(daemon, "run", "--name", "ex-stopped", "busybox", "true")
        ok(stopped)
        refused = dk(daemon, "exec", "ex-stopped", "true")
        assert refused.returncode != 0
        assert "is not running" in refused.stderr
    finally:
        dk(daemon, "rm", "-f", "ex", "ex-stopped")


@needs_docker
def test_top_stats_update(daemon: Daemon) -> None:
    ok(dk(daemon, "run", "-d", "--name", "ts", "busybox", "sleep", "300"))
    try:
        top = ok(dk(daemon, "top", "ts")).splitlines()
        assert top[0].split()[:2] == ["UID", "PID"]
        assert any("sleep 300" in line for line in top[1:])
        stats = ok(dk(daemon, "stats", "--no-stream", "ts")).splitlines()
        assert stats[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
        assert "ts" in stats[1]
        ok(dk(daemon, "update", "--memory", "64m", "--memory-swap", "128m", "ts"))
        stats = ok(dk(daemon, "stats", "--no-stream", "--format", "{{.MemUsage}}", "ts"))
        assert stats.strip().endswith("/ 64MiB"), stats
        ok(dk(daemon, "update", "--restart", "on-failure:3", "ts"))
        policy = json.loads(
            ok(dk(daemon, "inspect", "-f", "{{json .HostConfig.RestartPolicy}}", "ts"))
        )
        assert policy == {"Name": "on-failure", "MaximumRetryCount": 3}
    finally:
        dk(daemon, "rm", "-f", "ts")


@needs_docker
def test_export_stopped_cp_and_prune(daemon: Daemon, tmp_path: Path) -> None:
    ok(
        dk(
            daemon,
            "run",
            "--name",
            "gone",
            "-l",
            "prune=me",
            "busybox",
            "sh",
            "-c",
            "echo x > /made",
        )
    )
    assert not [m for m in _mounts_under(daemon.data) if "/containers/" in m], "after run"
    # a stopped container: cp and export mount its snapshot for the call
    ok(dk(daemon, "cp", "gone:/made", str(tmp_path / "made")))
    assert (tmp_path / "made").read_text() == "x\n"
    ok(dk(daemon, "cp", str(tmp_path / "made"), "gone:/copied"))
    ok(dk(daemon, "export", "-o", str(tmp_path / "rootfs.tar"), "gone"))
    with tarfile.open(tmp_path / "rootfs.tar") as tf:
        names = set(tf.getnames())
    assert {"made", "copied", "bin/busybox"} <= names
    assert not [m for m in _mounts_under(daemon.data) if "/containers/" in m]
    ok(dk(daemon, "run", "--name", "keep", "busybox", "true"))
    out = ok(dk(daemon, "container", "prune", "-f", "--filter", "label=prune=me"))
    assert out.startswith("Deleted Containers:")
    names_left = ok(dk(daemon, "ps", "-a", "--format", "{{.Names}}")).split()
    assert "gone" not in names_left
    assert "keep" in names_left
    ok(dk(daemon, "container", "prune", "-f"))
    assert "keep" not in ok(dk(daemon, "ps", "-a", "--format", "{{.Names}}"))


@needs_docker
def test_docker_volume_commands(daemon: Daemon) -> None:
    assert ok(dk(daemon, "volume", "create", "--label", "a=b", "vol1")) == "vol1\n"
    assert "vol1" in ok(dk(daemon, "volume", "ls", "-q")).split()
    doc = json.loads(ok(dk(daemon, "volume", "inspect", "vol1")))[0]
    assert doc["Labels"] == {"a": "b"}
    assert doc["Mountpoint"].endswith("/volumes/vol1/_data")
    assert "Local Volumes" in ok(dk(daemon, "system", "df"))
    ok(dk(daemon, "volume", "rm", "vol1"))
    missing = dk(daemon, "volume", "inspect", "vol1")
    assert missing.returncode == 1
    assert "no such volume" in missing.stderr
    anon = ok(dk(daemon, "volume", "create")).strip()
    assert anon in ok(dk(daemon, "volume", "prune", "-f"))


def test_sdk_calls(daemon: Daemon, sdk: docker.DockerClient) -> None:
    c = sdk.containers.run("busybox", ["sleep", "300"], detach=True, name="sdkx")
    try:
        code, out = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert code == 3
        assert b"out" in out
        assert b"err" in out
        code, (stdout, stderr) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, stdout, stderr) == (0, b"o\n", b"e\n")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            info = tarfile.TarInfo("put.txt")
            info.size = 4
            tf.addfile(info, io.BytesIO(b"data"))
        assert c.put_archive("/tmp", buf.getvalue())
        stream, stat = c.get_archive("/tmp/put.txt")
        assert stat["name"] == "put.txt"
        assert stat["size"] == 4
        data = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            member = tf.extractfile("put.txt")
            assert member is not None
            assert member.read() == b"data"
        stats = c.stats(stream=False)
        for key in ("read", "preread", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats"):
            assert key in stats
        assert stats["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert stats["pids_stats"]["current"] >= 1
        top = c.top()
        assert "PID" in top["Titles"]
        assert {ch["Path"] for ch in c.diff()} >= {"/tmp", "/tmp/put.txt"}
        image = c.commit(repository="sdkcommit", tag="t", message="sdk", changes=["ENV X=1"])
        assert "X=1" in image.attrs["Config"]["Env"]
        assert sdk.containers.run("sdkcommit:t", ["cat", "/tmp/put.txt"], remove=True) == b"data"
        sdk.images.remove("sdkcommit:t", force=True)
        vol = sdk.volumes.create("sdkvol")
        assert sdk.volumes.get("sdkvol").name == "sdkvol"
        vol.remove()
    finally:
        c.remove(force=True)
