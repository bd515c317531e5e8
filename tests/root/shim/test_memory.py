"""Memory per idle container, with 20 `sleep` containers (bench/shim_memory.py does 100).

The assertion is on what the processes themselves hold (the shim's PSS and the
container process's private pages), which other work on the machine cannot
disturb; the growth of used memory is printed beside it (run with -s), since on
a shared machine it moves by tens of MiB on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.root.runtime.conftest import Runtime

pytestmark = pytest.mark.root

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"))

from shim_memory import MIB, measure  # noqa: E402


def test_idle_containers_cost_under_3_mib_each(tmp_path: Path) -> None:
    result = measure(20)
    print(result.report())
    assert (result.shim_pss + result.init_uss) / MIB < 3.0, result.report()
    runtime = Runtime(tmp_path, tmp_path, "")
    runtime.cgroup_prefix = result.cgroup_prefix
    assert not runtime.cgroup_dirs(), "cgroups left behind"
