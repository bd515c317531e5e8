"""Shims outlive skiffd and the shim parent, both killed with SIGKILL; a new client reconnects."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from skiff.shim.client import AsyncShim, AsyncStream, Shim, spawn_async
from skiff.shim.logreader import read_logs
from skiff.shim.protocol import STDOUT

from .conftest import ShimEnv, alive, wait_gone

pytestmark = pytest.mark.root

# A stand-in for skiffd: starts its own shim parent, spawns and starts
# containers through it, reports the pids, then idles until killed.
FAKE_SKIFFD = textwrap.dedent(
    """
    import json, sys, time
    from skiff.shim.client import Shim, spawn, start_parent
    from skiff.shim.protocol import SpawnRequest
    parent_socket, requests = sys.argv[1], json.loads(sys.argv[2])
    parent = start_parent(parent_socket)
    report = {"parent": parent, "containers": []}
    for doc in requests:
        state = spawn(parent_socket, SpawnRequest.from_dict(doc))
        Shim(doc["dir"]).start()
        report["containers"].append({"shim": state.shim_pid, "init": state.pid})
    print(json.dumps(report), flush=True)
    time.sleep(600)
    """
)


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_shims_and_containers_survive_skiffd_and_parent_sigkill(shims: ShimEnv) -> None:
    ticker = "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.05; done"
    shims.bundle("a", ["sh", "-c", ticker])
    shims.bundle("b", ["cat"])
    requests = [shims.request("a").to_dict(), shims.request("b", stdin=True).to_dict()]
    own_socket = str(shims.base / "own-parent.sock")
    skiffd = subprocess.Popen(
        [sys.executable, "-c", FAKE_SKIFFD, own_socket, json.dumps(requests)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert skiffd.stdout is not None
        report = json.loads(skiffd.stdout.readline())
    finally:
        os.kill(skiffd.pid, signal.SIGKILL)
        skiffd.wait()
    parent = report["parent"]
    shims.shim_pids.update(c["shim"] for c in report["containers"])
    os.kill(parent, signal.SIGKILL)  # started (through it) by this test's fake skiffd
    assert wait_gone(parent)

    for c in report["containers"]:
        assert alive(c["shim"])
        assert alive(c["init"])
        assert ppid(c["shim"]) not in (parent, skiffd.pid)

    # A restarted skiffd reconnects.
    a = Shim.connect(str(shims.base / "a"))
    state = a.state()
    assert (state.status, state.pid) == ("running", report["containers"][0]["init"])
    with a.attach() as stream:
        kind, data = stream.read() or (0, b"")
        assert kind == STDOUT
        assert data.startswith(b"tick-")
    stream = a.exec("after", shims.process("a", ["echo", "exec after restore"]))
    assert not isinstance(stream, int)
    assert stream.output() == (b"exec after restore\n", b"")
    # The log keeps growing after the restore: the restored shim still writes it.
    log = str(shims.base / "a" / "log.json")
    seen = len(list(read_logs(log)))
    deadline = time.monotonic() + 10
    while len(list(read_logs(log))) < seen + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    a.kill("SIGKILL")
    assert a.wait().exit_code == 137
    lines = [e.line for e in read_logs(log)]
    assert lines[0] == b"tick-0\n"
    assert len(lines) >= seen + 3

    # The asyncio client, as skiffd uses it.
    async def restore_b() -> tuple[bytes, int]:
        b = await AsyncShim.connect(str(shims.base / "b"))
        stream = await b.attach(stdin=True, stdin_once=True)
        assert isinstance(stream, AsyncStream)
        await stream.write(b"still here\n")
        await stream.close_stdin()
        out = b"".join([data async for _, data in stream])
        await stream.close()
        return out, (await b.wait()).exit_code

    assert asyncio.run(restore_b()) == (b"still here\n", 0)


def test_asyncio_client_end_to_end(shims: ShimEnv) -> None:
    shims.bundle("x", ["sh", "-c", "read line; echo got $line; sleep 60"])

    async def main() -> None:
        state = await spawn_async(shims.socket, shims.request("x", stdin=True))
        shims.shim_pids.add(state.shim_pid)
        shim = AsyncShim(str(shims.base / "x"))
        stream = await shim.attach(stdin=True)
        await shim.start()
        await stream.write(b"hello\n")
        kind, data = await stream.read() or (0, b"")
        assert (kind, data) == (STDOUT, b"got hello\n")
        run = await shim.exec("e1", shims.process("x", ["sh", "-c", "echo in; exit 3"]))
        assert isinstance(run, AsyncStream)
        assert [d async for _, d in run] == [b"in\n"]
        assert run.exit_code == 3
        assert (await shim.exec_state("e1")).exit_code == 3
        waiting = asyncio.create_task(shim.wait())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await shim.kill(9)
        assert (await waiting).exit_code == 137
        assert await stream.read() is None
        assert stream.exit_code == 137
        await stream.close()
        await shim.shutdown()

    asyncio.run(main())
    assert not (shims.base / "x" / "shim.sock").exists()


def test_a_shim_killed_with_its_container_running_is_reported_gone(shims: ShimEnv) -> None:
    shim, created = shims.container("z", ["sleep", "60"])
    shim.start()
    state = shim.state()
    os.kill(state.shim_pid, signal.SIGKILL)
    assert wait_gone(state.shim_pid)
    from skiff.shim.client import ShimGone

    with pytest.raises(ShimGone) as info:
        shim.state()
    assert info.value.exit is None  # it died with the container running
    # The container itself goes on; the teardown deletes it through the runtime.
    assert alive(created.pid)
    deadline = time.monotonic() + 5
    while alive(created.pid) and time.monotonic() < deadline:
        shims.runtime("delete", "--force", "z", check=False)
    assert not alive(created.pid)
