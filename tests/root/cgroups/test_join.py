"""CgroupManager.join: a process with one thread moves itself into the cgroup."""

from __future__ import annotations

import os
import uuid

import pytest

from skiff.cgroups import open_manager
from skiff.cgroups.files import remove_tree
from skiff.cgroups.paths import detect_version

pytestmark = pytest.mark.root

ROOT = "/sys/fs/cgroup"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_a_forked_child_joins_every_hierarchy_and_its_parent_stays() -> None:
    name = f"/skiff-jointest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    manager = open_manager(name, "unused", systemd=False)
    manager.create()
    with open("/proc/self/cgroup") as f:
        before = f.read()
    rd, wr = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(rd)
                manager.join()
                with open("/proc/self/cgroup", "rb") as f:
                    os.write(wr, f.read())
                code = 0
            finally:
                os._exit(code)
        os.close(wr)
        with os.fdopen(rd, "rb") as f:
            seen = f.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        joined = {line.split(":")[1]: line.split(":")[2] for line in seen.splitlines()}
        if detect_version(ROOT) == 1:
            for controller in manager.paths():
                hierarchy = next(k for k in joined if controller in k.split(","))
                assert joined[hierarchy] == name, (controller, seen)
        else:
            assert joined[""] == name
        with open("/proc/self/cgroup") as f:
            assert f.read() == before  # the caller did not move
    finally:
        for d in dict.fromkeys(manager.paths().values()):
            remove_tree(d)
