"""remove_empty_parent: a cgroup parent goes once no child cgroup is left in it."""

from __future__ import annotations

import os
import uuid

import pytest

from skiff.cgroups import remove_empty_parent
from skiff.cgroups.paths import DEFAULT_ROOT, detect_version, v1_hierarchies

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _dirs(parent: str) -> list[str]:
    if detect_version(DEFAULT_ROOT) == 2:
        return [os.path.join(DEFAULT_ROOT, parent.lstrip("/"))]
    hierarchies = v1_hierarchies(DEFAULT_ROOT).values()
    return list(dict.fromkeys(os.path.join(h, parent.lstrip("/")) for h in hierarchies))


def test_parent_stays_while_a_child_is_there_and_goes_after() -> None:
    parent = f"/skiff-test-{uuid.uuid4().hex[:8]}"
    dirs = _dirs(parent)
    for d in dirs:
        os.makedirs(os.path.join(d, "child"))
    try:
        remove_empty_parent(parent)
        assert all(os.path.isdir(d) for d in dirs)
        for d in dirs:
            os.rmdir(os.path.join(d, "child"))
        remove_empty_parent(parent)
        assert not any(os.path.exists(d) for d in dirs)
    finally:
        for d in dirs:
            for path in (os.path.join(d, "child"), d):
                if os.path.isdir(path):
                    os.rmdir(path)
