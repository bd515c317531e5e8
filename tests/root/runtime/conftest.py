"""Fixtures for driving the real skiff-runtime binary against busybox bundles.

Every test gets its own state root and a unique cgroup path, and the `runtime`
fixture checks on teardown that nothing is left: no state folder, no cgroup
directory, no process of the container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skiff.runtime.create import SECCOMP_CACHE
from skiff.testing.bundles import make_bundle, make_busybox_rootfs

CGROUP_ROOT = "/sys/fs/cgroup"


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("busybox")))


class Runtime:
    def __init__(self, root: Path, tmp: Path, rootfs: str) -> None:
        self.root = root
        self.tmp = tmp
        self.rootfs = rootfs
        self.test_id = uuid.uuid4().hex[:12]
        self.cgroup_prefix = f"skiff-test-{self.test_id}"
        self.created: list[str] = []

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "skiff.runtime.cli.main", "--root", str(self.root), *args]

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        # Files, not pipes: a created container inherits the runtime's stdio
        # and would hold a pipe open long after the runtime has exited.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.run(
                self.argv(*args),
                stdout=out,
                stderr=err,
                input=input.encode() if input is not None else None,
                timeout=timeout,
                check=False,
            ).returncode
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(args, code, out.read().decode(), err.read().decode())
        if check and proc.returncode != 0:
            raise AssertionError(f"skiff-runtime {' '.join(args)} failed: {proc.stderr}")
        return proc

    def bundle(self, name: str, args: list[str], **changes: Any) -> str:
        """A bundle whose config can be edited through `changes` (top-level keys)."""
        path = self.tmp / f"bundle-{name}"
        self.created.append(name)
        return make_bundle(
            str(path), self.rootfs, args, cgroups_path=self.cgroup_path(name), **changes
        )

    @staticmethod
    def state_pid_gone(pid: int, timeout: float = 5) -> bool:
        """True once `pid` has exited (gone or a zombie awaiting its reaper)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        return True
            except FileNotFoundError:
                return True
            time.sleep(0.02)
        return False

    def cgroup_path(self, name: str) -> str:
        return f"/{self.cgroup_prefix}-{name}"

    def edit(self, bundle: str, edit: Any) -> None:
        path = os.path.join(bundle, "config.json")
        with open(path) as f:
            config = json.load(f)
        edit(config)
        with open(path, "w") as f:
            json.dump(config, f)

    def state(self, container_id: str) -> dict[str, Any]:
        return json.loads(self("state", container_id).stdout)  # type: ignore[no-any-return]

    def cgroup_dirs(self) -> list[str]:
        found = []
        for hierarchy in os.listdir(CGROUP_ROOT):
            base = os.path.join(CGROUP_ROOT, hierarchy)
            for parent in _own_cgroup_candidates(hierarchy):
                where = os.path.join(base, parent.lstrip("/"))
                if os.path.isdir(where):
                    found += [
                        os.path.join(where, name)
                        for name in os.listdir(where)
                        if name.startswith(self.cgroup_prefix)
                    ]
        return sorted(set(found))


def _own_cgroup_candidates(hierarchy: str) -> list[str]:
    """The cgroup this process sits in for `hierarchy`, and the root."""
    out = ["/"]
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            names = controllers.split(",") if controllers else ["unified"]
            names = [n.removeprefix("name=") for n in names]
            if hierarchy in names or (hierarchy == "unified" and not controllers):
                out.append(path)
    return out


@pytest.fixture
def runtime(tmp_path: Path, rootfs: str) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "state", tmp_path, rootfs)
    yield rt
    # Teardown: force-delete anything the test left, then insist nothing remains.
    leftovers = os.listdir(rt.root) if rt.root.exists() else []
    leftovers = [name for name in leftovers if name != SECCOMP_CACHE]
    for name in leftovers:
        rt("delete", "--force", name, check=False)
    dirs = rt.cgroup_dirs()
    for path in sorted(dirs, key=len, reverse=True):
        for sub, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
            try:
                os.rmdir(sub)
            except OSError:
                pass
    assert not leftovers, f"test left containers behind: {leftovers}"
    assert not dirs, f"test left cgroups behind: {dirs}"
