"""The container extras over skiff.testing.container_core.FakeCore: exec streams and exit
codes, process building, user lookup, scoped paths, changes, ps parsing, resources."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from skiff.api.framing import FrameDecoder
from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.services.container_admin import ContainerAdmin, linux_resources
from skiff.services.container_fs import (
    ADDED,
    DELETED,
    MODIFIED,
    ContainerFs,
    layer_changes,
    scoped_path,
)
from skiff.services.container_stats import parse_ps
from skiff.services.execs import ExecConfig, ExecIO, ExecService, build_process, resolve_user
from skiff.shim import protocol as p
from skiff.testing.container_core import FakeCore


@pytest.fixture
def core(tmp_path: Path) -> FakeCore:
    core = FakeCore()
    c = core.add("web", str(tmp_path / "web"), running=True, config={"User": ""})
    (Path(c.dir) / "config.json").write_text(
        json.dumps({"process": {"env": ["PATH=/bin", "A=1"], "cwd": "/", "args": ["sh"]}})
    )
    etc = Path(c.rootfs) / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\nstaff:x:50:nobody\n")
    return core


def test_exec_streams_frames_and_exit_code(core: FakeCore) -> None:
    execs = ExecService(core)
    c = core.get("web")
    core.shims[c.id].exit_code = 3
    exec_id = execs.create("web", ExecConfig(cmd=["sh", "-c", "x"]))
    out = bytearray()

    async def no_stdin() -> bytes:
        return b""

    async def write(data: bytes) -> None:
        out.extend(data)

    asyncio.run(execs.start(exec_id, ExecIO(no_stdin, write)))
    frames = FrameDecoder().feed(bytes(out))
    assert frames == [(p.STDOUT, b"out\n"), (p.STDERR, b"err\n")]
    record = execs.get(exec_id)
    assert (record.running, record.exit_code) == (False, 3)
    with pytest.raises(Conflict, match="has already run"):
        asyncio.run(execs.start(exec_id, None))


def test_exec_start_failure_is_127_or_126(core: FakeCore) -> None:
    execs = ExecService(core)
    c = core.get("web")
    out = bytearray()

    async def no_stdin() -> bytes:
        return b""

    async def write(data: bytes) -> None:
        out.extend(data)

    core.shims[c.id].fail = InvalidArgument('exec: "nope": executable file not found in $PATH')
    exec_id = execs.create("web", ExecConfig(cmd=["nope"], tty=True))
    asyncio.run(execs.start(exec_id, ExecIO(no_stdin, write)))
    assert execs.get(exec_id).exit_code == 127
    assert b"executable file not found" in out
    core.shims[c.id].fail = InvalidArgument("exec: permission denied")
    exec_id = execs.create("web", ExecConfig(cmd=["/etc"]))
    asyncio.run(execs.start(exec_id, ExecIO(no_stdin, write)))
    assert execs.get(exec_id).exit_code == 126


def test_exec_refused_on_stopped_and_unknown(core: FakeCore) -> None:
    execs = ExecService(core)
    core.get("web").state.status = "exited"
    with pytest.raises(Conflict, match="is not running"):
        execs.create("web", ExecConfig(cmd=["true"]))
    with pytest.raises(NotFound, match="No such exec instance"):
        execs.get("nope")
    with pytest.raises(InvalidArgument, match="No exec command specified"):
        ExecConfig.from_wire({"Cmd": []})


def test_build_process_and_users(core: FakeCore) -> None:
    c = core.get("web")
    config = ExecConfig(cmd=["id"], env=["A=2", "B=3"], working_dir="/tmp", user="nobody")
    base = ExecService(core)._process_base(c)  # type: ignore[arg-type]
    assert base["env"] == ["PATH=/bin", "A=1"]
    proc = build_process(c, config, True, None, base)
    assert base["env"] == ["PATH=/bin", "A=1"]  # the cached process is not changed
    assert proc["args"] == ["id"]
    assert proc["env"] == ["PATH=/bin", "A=2", "B=3"]  # a later value of A wins
    assert (proc["cwd"], proc["terminal"]) == ("/tmp", True)
    # As for run -u (containers.users): its own gid, then the groups listing it.
    assert proc["user"] == {"uid": 65534, "gid": 65534, "additionalGids": [65534, 50]}
    assert resolve_user(c.rootfs, "1000:50") == {"uid": 1000, "gid": 50, "additionalGids": [50]}
    with pytest.raises(InvalidArgument, match="unable to find user ghost"):
        resolve_user(c.rootfs, "ghost")


def test_scoped_path_never_leaves_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    os.symlink("/", root / "up")
    os.symlink("../../../../etc", root / "etc" / "deep")
    assert scoped_path(str(root), "/up/etc") == str(root / "etc")
    assert scoped_path(str(root), "/etc/deep") == str(root / "etc")
    assert scoped_path(str(root), "/../../x") == str(root / "x")
    assert scoped_path(str(root), "/up", follow_last=False) == str(root / "up")


def test_layer_changes(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "old").write_text("x")
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "new").write_text("y")
    if os.geteuid() == 0:
        os.mknod(upper / "etc" / "old", 0o600 | 0o020000, 0)  # an overlay whiteout
    changes = layer_changes(str(upper), [str(lower)])
    assert ("/etc", MODIFIED) in changes
    assert ("/etc/new", ADDED) in changes
    if os.geteuid() == 0:
        assert ("/etc/old", DELETED) in changes


def test_parse_ps() -> None:
    out = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:00 sleep 300\nroot 2 0 0 10:00 ? 00:00:00 other thing\n"
    top = parse_ps(out, {1})
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top["Processes"] == [["root", "1", "0", "0", "10:00", "?", "00:00:00", "sleep 300"]]


def test_linux_resources() -> None:
    assert linux_resources({"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 10}) == {
        "memory": {"limit": 64 << 20},
        "cpu": {"period": 100_000, "quota": 50_000},
        "pids": {"limit": 10},
    }


def test_update_stopped_and_prune(core: FakeCore, tmp_path: Path) -> None:
    admin = ContainerAdmin(core, ContainerFs(core), runtime=["false"])
    stopped = core.add("old", str(tmp_path / "old"), config={"Labels": {"x": "y"}})
    asyncio.run(admin.update("old", {"Memory": 64 << 20, "RestartPolicy": {"Name": "always"}}))
    assert stopped.host_config["Memory"] == 64 << 20
    assert stopped.host_config["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    with pytest.raises(InvalidArgument, match="Minimum memory"):
        asyncio.run(admin.update("old", {"Memory": 1024}))
    deleted, _ = asyncio.run(admin.prune({"label": ["x=z"]}))
    assert deleted == []
    deleted, _ = asyncio.run(admin.prune({"label": ["x=y"]}))
    assert deleted == [stopped.id]
    assert "web" in [c.name for c in core.list(all=True)]
