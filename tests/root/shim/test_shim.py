"""Shims over real busybox containers: output, logs, stdin, tty, exec, kill, wait, restart."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from skiff.errors import Conflict, NotModified
from skiff.shim.client import Shim, ShimGone, read_exit_file, spawn
from skiff.shim.logreader import read_logs
from skiff.shim.protocol import STDERR, STDOUT, ExitStatus

from .conftest import ShimEnv, alive, wait_gone

pytestmark = pytest.mark.root


def test_output_log_exit_file_and_delete(shims: ShimEnv) -> None:
    shim, created = shims.container("c", ["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    assert created.status == "created"
    assert alive(created.pid)
    assert os.listdir(shims.runtime_root) == ["c"]
    stream = shim.attach()
    shim.start()
    assert stream.output() == (b"hello\n", b"oops\n")
    assert stream.exit_code == 3
    status = shim.wait()
    assert status.exit_code == 3
    assert status.pid == created.pid
    assert status.finished_at >= status.started_at
    assert read_exit_file(str(shims.base / "c")) == status
    state = shim.state()
    assert (state.status, state.exit_code, state.runs, state.pid) == ("stopped", 3, 1, 0)
    # The shim deleted the container from the runtime once it exited.
    assert os.listdir(shims.runtime_root) == []
    entries = list(read_logs(str(shims.base / "c" / "log.json")))
    assert sorted((e.stream, e.line) for e in entries) == [
        ("stderr", b"oops\n"),
        ("stdout", b"hello\n"),
    ]


def test_stdin_round_trip_through_cat(shims: ShimEnv) -> None:
    """echo hi | docker run -i busybox cat"""
    shim, _ = shims.container("cat", ["cat"], stdin=True)
    stream = shim.attach(stdin=True, stdin_once=True)
    shim.start()
    stream.write(b"hi\n")
    stream.close_stdin()
    assert stream.output() == (b"hi\n", b"")
    assert stream.exit_code == 0


def test_a_megabyte_through_cat_with_backpressure(shims: ShimEnv) -> None:
    shim, _ = shims.container("big", ["cat"], stdin=True)
    stream = shim.attach(stdin=True, stdin_once=True)
    shim.start()
    # About a megabyte, with a line longer than the log's 16 KiB pieces.
    data = b"".join(f"{i:07d} ".encode() * 20 + b"\n" for i in range(6000))
    data += b"y" * 40000 + b"\n"

    def feed() -> None:
        for i in range(0, len(data), 65536):
            stream.write(data[i : i + 65536])
        stream.close_stdin()

    writer = threading.Thread(target=feed)
    writer.start()
    out, _ = stream.output()
    writer.join()
    assert out == data
    assert shim.wait().exit_code == 0
    entries = list(read_logs(str(shims.base / "big" / "log.json")))
    assert b"".join(e.line for e in entries) == data
    assert [len(e.line) for e in entries[-3:]] == [16384, 16384, 40000 - 2 * 16384 + 1]


def test_close_stdin_request(shims: ShimEnv) -> None:
    shim, _ = shims.container("w", ["sh", "-c", "cat; echo done"], stdin=True)
    stream = shim.attach(stdin=True)
    shim.start()
    stream.write(b"x\n")
    stream.close_stdin()  # not stdin_once: the container's stdin stays open
    time.sleep(0.2)
    assert shim.state().status == "running"
    shim.close_stdin()
    assert stream.output() == (b"x\ndone\n", b"")


def test_attachers_see_the_same_output_and_may_detach(shims: ShimEnv) -> None:
    shim, _ = shims.container("m", ["sh", "-c", "read x; echo got $x; echo bad >&2"], stdin=True)
    first = shim.attach(stdin=True)
    second = shim.attach(stdout=True, stderr=False)
    third = shim.attach()
    shim.start()
    third.detach()
    first.write(b"it\n")
    assert first.output() == (b"got it\n", b"bad\n")
    assert second.output() == (b"got it\n", b"")
    assert second.exit_code == 0


def test_tty_with_resize(shims: ShimEnv) -> None:
    shim, state = shims.container("t", ["sh", "-c", "read x; stty size"], tty=True, stdin=True)
    assert state.tty
    stream = shim.attach(stdin=True)
    assert stream.tty
    shim.start()
    shim.resize(30, 100)
    stream.write(b"go\r")
    out, err = stream.output()
    assert b"30 100" in out
    assert err == b""
    assert stream.exit_code == 0
    logged = b"".join(e.line for e in read_logs(str(shims.base / "t" / "log.json")))
    assert b"30 100" in logged


def test_exec_output_exit_code_stdin_tty_and_detached(shims: ShimEnv) -> None:
    shim, _ = shims.container("e", ["sleep", "60"])
    with pytest.raises(Conflict, match="not running"):
        shim.exec("early", shims.process("e", ["true"]))
    shim.start()

    stream = shim.exec("one", shims.process("e", ["sh", "-c", "echo out; echo err >&2; exit 7"]))
    assert not isinstance(stream, int)
    assert stream.pid > 0
    assert stream.output() == (b"out\n", b"err\n")
    assert stream.exit_code == 7
    state = shim.exec_state("one")
    assert (state.running, state.exit_code) == (False, 7)
    with pytest.raises(Conflict, match="exists"):
        shim.exec("one", shims.process("e", ["true"]))

    cat = shim.exec("cat", shims.process("e", ["cat"]), stdin=True)
    assert not isinstance(cat, int)
    cat.write(b"through exec\n")
    cat.close_stdin()
    assert cat.output() == (b"through exec\n", b"")
    assert cat.exit_code == 0

    tty = shim.exec("tty", shims.process("e", ["sh", "-c", "tty; stty size"], terminal=True))
    assert not isinstance(tty, int)
    out, _ = tty.output()
    assert b"/dev/pts/" in out

    # Detached: it runs until the test signals it (by the pid the shim gave).
    script = 'trap "exit 4" TERM; while :; do sleep 0.05; done'
    pid = shim.exec("bg", shims.process("e", ["sh", "-c", script]), attach=False)
    assert isinstance(pid, int)
    assert pid > 0
    assert shim.exec_state("bg").running
    _wait_for_handler(pid, signal.SIGTERM)  # the trap is set: TERM now makes it exit 4
    os.kill(pid, signal.SIGTERM)
    assert shim.wait_exec("bg").exit_code == 4

    missing = shims.process("e", ["no-such-program"])
    with pytest.raises(Exception, match="no-such-program"):
        shim.exec("missing", missing)
    # Exec output is not the container's log.
    assert list(read_logs(str(shims.base / "e" / "log.json"))) == []


def _wait_for_handler(pid: int, sig: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{pid}/status") as f:
            caught = next(line for line in f if line.startswith("SigCgt:")).split()[1]
        if int(caught, 16) & (1 << (sig - 1)):
            return
        assert time.monotonic() < deadline, f"{pid} set no handler for {sig}"
        time.sleep(0.01)


def test_kill_wait_and_the_exit_file(shims: ShimEnv) -> None:
    shim, created = shims.container("k", ["sleep", "60"])
    shim.start()
    assert shim.state().status == "running"
    with pytest.raises(NotModified):
        shim.start()
    with pytest.raises(Conflict):
        shim.shutdown()
    got: list[ExitStatus] = []
    waiter = threading.Thread(target=lambda: got.append(shim.wait()))
    waiter.start()
    time.sleep(0.1)
    shim.kill("SIGKILL")
    waiter.join(10)
    assert got[0].exit_code == 137
    assert not alive(created.pid)
    exit_file = json.loads((shims.base / "k" / "exit.json").read_text())
    assert exit_file["exit_code"] == 137
    assert exit_file["pid"] == created.pid
    with pytest.raises(Conflict, match="not running"):
        shim.kill("SIGTERM")


def test_kill_all_reaches_every_process(shims: ShimEnv) -> None:
    shim, _ = shims.container("ka", ["sh", "-c", "sleep 60 & sleep 60; wait"])
    shim.start()
    time.sleep(0.2)
    shim.kill(9, all=True)
    assert shim.wait().exit_code == 137


def test_restart_creates_again_and_wait_next(shims: ShimEnv) -> None:
    shim, _ = shims.container("r", ["sh", "-c", "echo run; exit 2"])
    shim.start()
    assert shim.wait().exit_code == 2
    got: list[ExitStatus] = []
    waiter = threading.Thread(target=lambda: got.append(shim.wait(next_exit=True)))
    waiter.start()
    time.sleep(0.1)
    assert not got  # stopped, but it waits for the next exit
    state = shim.start()
    assert state.status in ("running", "exiting", "stopped")
    waiter.join(10)
    assert got[0].exit_code == 2
    assert shim.state().runs == 2
    logged = [e.line for e in read_logs(str(shims.base / "r" / "log.json"))]
    assert logged == [b"run\n", b"run\n"]


def test_attach_while_stopped_gets_the_next_run(shims: ShimEnv) -> None:
    shim, _ = shims.container("n", ["cat"], stdin=True)
    shim.start()
    shim.close_stdin()
    assert shim.wait().exit_code == 0
    stream = shim.attach(stdin=True, stdin_once=True)
    stream.write(b"again\n")
    stream.close_stdin()
    shim.start()
    assert stream.output() == (b"again\n", b"")


def test_pause_and_resume(shims: ShimEnv) -> None:
    shim, _ = shims.container("p", ["sleep", "60"])
    shim.start()
    assert shim.pause().status == "paused"
    assert shim.resume().status == "running"


def test_logs_follow_while_running_and_rotation(shims: ShimEnv) -> None:
    script = "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done; sleep 0.3; echo last"
    shims.bundle("f", ["sh", "-c", script])
    req = shims.request("f", max_size=2000, max_file=3)
    spawn(shims.socket, req)
    shim = Shim(req.dir)
    shim.start()
    log = str(shims.base / "f" / "log.json")
    entries = list(
        read_logs(log, tail=5, follow=True, stopped=lambda: shim.state().status == "stopped")
    )
    assert entries[-1].line == b"last\n"
    assert sorted(os.listdir(shims.base / "f")).count("log.json.2") == 1
    assert not (shims.base / "f" / "log.json.3").exists()
    assert [e.line for e in read_logs(log, tail=1)] == [b"last\n"]


def test_create_failure_reports_the_runtime_error_and_leaves_nothing(shims: ShimEnv) -> None:
    shims.bundle("bad", ["/no/such/program"])
    with pytest.raises(Exception, match="/no/such/program"):
        spawn(shims.socket, shims.request("bad"))
    folder = shims.base / "bad"
    assert not (folder / "shim.sock").exists()
    assert not os.listdir(shims.runtime_root)


def test_shim_gone_tells_the_last_exit(shims: ShimEnv) -> None:
    shim, _ = shims.container("g", ["sh", "-c", "exit 5"])
    shim.start()
    shim.wait()
    pid = shim.state().shim_pid
    os.kill(pid, 9)
    assert wait_gone(pid)
    with pytest.raises(ShimGone) as info:
        Shim.connect(str(shims.base / "g"))
    assert info.value.exit is not None
    assert info.value.exit.exit_code == 5


def test_outputs_are_tagged_by_stream(shims: ShimEnv) -> None:
    shim, _ = shims.container("s", ["sh", "-c", "echo 1; echo 2 >&2; echo 3"])
    stream = shim.attach()
    shim.start()
    frames = list(stream)
    assert b"".join(d for k, d in frames if k == STDOUT) == b"1\n3\n"
    assert b"".join(d for k, d in frames if k == STDERR) == b"2\n"


def test_a_long_socket_path_still_works(shims: ShimEnv) -> None:
    name = "x" * 90
    shim, _ = shims.container(name, ["sh", "-c", "echo long"])
    assert len(str(Path(shim.socket))) > 108
    stream = shim.attach()
    shim.start()
    assert stream.output() == (b"long\n", b"")
