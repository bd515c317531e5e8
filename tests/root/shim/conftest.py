"""Fixtures for shims over real containers: a shim parent on a temporary socket,
busybox bundles, and a teardown that insists nothing is left.

Every test gets its own short temporary folder (container folders, runtime
--root, the parent's socket), its own cgroup prefix, and on teardown: every
container is killed and deleted, every shim shut down (or killed, by the pid it
wrote), the parent killed by its pid, and then no state, cgroup or process of
the test may remain.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.shim.client import Shim, ShimGone, ping_parent, spawn
from skiff.shim.protocol import ShimState, SpawnRequest
from skiff.testing.bundles import make_bundle, make_busybox_rootfs
from tests.root.runtime.conftest import Runtime

RUNTIME = [sys.executable, "-m", "skiff.runtime.cli.main"]


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("busybox")))


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read_pid(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


class ShimEnv:
    def __init__(self, base: Path, rootfs: str) -> None:
        self.base = base
        self.rootfs = rootfs
        self.socket = str(base / "parent.sock")
        self.runtime_root = str(base / "rt")
        self.prefix = f"skiff-shimtest-{uuid.uuid4().hex[:10]}"
        self.runtime = Runtime(Path(self.runtime_root), base, rootfs)
        self.runtime.cgroup_prefix = self.prefix
        self.dirs: list[Path] = []
        self.shim_pids: set[int] = set()
        self.parent = self.start_parent()

    def start_parent(self) -> subprocess.Popen[bytes]:
        log = open(self.base / "parent.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "skiff.shim.parent", "--socket", self.socket],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while ping_parent(self.socket) != proc.pid:
            assert proc.poll() is None, (self.base / "parent.log").read_text()
            assert time.monotonic() < deadline, "the shim parent did not come up"
            time.sleep(0.01)
        return proc

    def bundle(self, name: str, args: list[str], tty: bool = False, **changes: Any) -> str:
        folder = self.base / name
        folder.mkdir()
        self.dirs.append(folder)
        bundle = make_bundle(
            str(folder / "bundle"),
            self.rootfs,
            args,
            cgroups_path=f"/{self.prefix}-{name}",
            **changes,
        )
        if tty:
            path = Path(bundle) / "config.json"
            config = json.loads(path.read_text())
            config["process"]["terminal"] = True
            path.write_text(json.dumps(config))
        return bundle

    def process(self, name: str, args: list[str], terminal: bool = False) -> dict[str, Any]:
        """An exec process: the container's own, with other args."""
        config = json.loads((self.base / name / "bundle" / "config.json").read_text())
        process: dict[str, Any] = config["process"]
        process["args"] = args
        process["terminal"] = terminal
        return process

    def request(
        self, name: str, tty: bool = False, stdin: bool = False, **log: Any
    ) -> SpawnRequest:
        folder = self.base / name
        return SpawnRequest(
            id=name,
            dir=str(folder),
            bundle=str(folder / "bundle"),
            runtime=RUNTIME,
            runtime_root=self.runtime_root,
            tty=tty,
            stdin=stdin,
            log=log,
        )

    def container(
        self,
        name: str,
        args: list[str],
        tty: bool = False,
        stdin: bool = False,
        **changes: Any,
    ) -> tuple[Shim, ShimState]:
        """A created container (not started) and its shim."""
        self.bundle(name, args, tty=tty, **changes)
        state = spawn(self.socket, self.request(name, tty=tty, stdin=stdin))
        self.shim_pids.add(state.shim_pid)
        return Shim(str(self.base / name)), state

    def cleanup(self) -> None:
        for folder in self.dirs:
            shim = Shim(str(folder), timeout=30)
            try:
                state = shim.state()
                if state.status in ("running", "paused", "exiting"):
                    if state.status == "paused":
                        shim.resume()
                    if shim.state().status == "running":
                        shim.kill("SIGKILL")
                    shim.wait()
                shim.shutdown()
            except ShimGone:
                pass
            pid = read_pid(folder / "shim.pid")
            if pid:
                self.shim_pids.add(pid)
        for pid in self.shim_pids:
            if alive(pid) and not wait_gone(pid, 2):
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid)
        if self.parent.poll() is None:
            os.kill(self.parent.pid, signal.SIGKILL)
            self.parent.wait()
        leftovers = os.listdir(self.runtime_root) if os.path.exists(self.runtime_root) else []
        for name in leftovers:
            self.runtime("delete", "--force", name, check=False)
        cgroups = self.runtime.cgroup_dirs()
        for path in sorted(cgroups, key=len, reverse=True):
            for sub, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass
        assert not leftovers, f"containers left behind: {leftovers}"
        assert not cgroups, f"cgroups left behind: {cgroups}"
        assert not [p for p in self.shim_pids if alive(p)], "shims left running"


@pytest.fixture
def shims(rootfs: str) -> Iterator[ShimEnv]:
    # Short: a unix socket path holds at most 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="skiff-shim-", dir="/tmp"))
    env = ShimEnv(base, rootfs)
    try:
        yield env
    finally:
        try:
            env.cleanup()
        finally:
            shutil.rmtree(base, ignore_errors=True)
