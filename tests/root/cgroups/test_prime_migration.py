"""prime_migration: a forked child makes a no-op cgroup v1 move and leaves."""

from __future__ import annotations

import os

import pytest

from skiff.cgroups.v1 import prime_migration

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        os.path.exists("/sys/fs/cgroup/cgroup.controllers"), reason="a cgroup v1 host's layout"
    ),
]


def _own() -> str:
    with open("/proc/self/cgroup") as f:
        return f.read()


def test_the_child_moves_itself_where_it_is_and_exits() -> None:
    before = _own()
    pid = prime_migration()
    assert pid > 0
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0  # it wrote its pid to cgroup.procs
    assert _own() == before  # nothing moved the caller


def test_no_hierarchies_means_no_child(tmp_path: object) -> None:
    assert prime_migration(root=str(tmp_path)) == 0
