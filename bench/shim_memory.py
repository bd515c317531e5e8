"""Memory per idle container: N busybox `sleep` containers, each with its shim.

    sudo .venv/bin/python bench/shim_memory.py [-n 100] [-r ROUNDS]

Reports, per container:
    used     growth of MemTotal - MemAvailable over the N containers (the goal:
             at most 2 MiB; it counts everything: shim, container process, kernel
             objects such as cgroups, namespaces, mounts and pipes). Other work on
             the machine adds noise to it, often more than the whole answer.
    shim     the shim's own pages: USS (private) and PSS (shared pages divided
             among the processes sharing them), from /proc/PID/smaps_rollup
    init     the same for the container's process (USS)
    kernel   growth of unreclaimable slab, page tables and kernel stacks
    counted  shim USS + init USS + kernel: the same cost counted piece by piece,
             much steadier than `used` on a shared machine (it leaves out
             reclaimable slab and page cache)
With -r, each round's line and then the median (min-max) of each.

Measured on this machine kind (2 cores, Python 3.11, cgroup v1; other work
running), 10 rounds of 100, median (min-max) MiB per container:
    used 1.97 (0.95-3.92); shim USS 1.57 (1.54-1.59), PSS 1.68 (1.64-1.69);
    init 0.05; kernel 0.46 (0.37-0.55); counted 2.07 (2.01-2.17).
The shim as of 2ad6763, 5 rounds run between those: shim USS 2.11
(2.10-2.11), counted 2.54 (2.42-2.60), used 2.36 (0.55-2.87). Docker's
shim costs about 4 MiB per container (DESIGN.md; this bench runs no dockerd).
A later session measured the same commit (b20ab14) at shim USS 1.70 and
counted 2.23: the machine, not the code, moved. With the shim's OOM listener
(505f67f) and the init layer, three runs of 3, 5 and 8 rounds: shim USS
1.72-1.76, counted 2.26-2.29, used 1.90, 2.05 and 1.58 (medians; 1.18-2.19).

Everything runs under a temporary folder with its own runtime --root and
cgroup prefix, and is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from skiff.shim.client import Shim, ShimGone, ping_parent, spawn  # noqa: E402
from skiff.shim.protocol import SpawnRequest  # noqa: E402
from skiff.testing.bundles import make_bundle, make_busybox_rootfs  # noqa: E402

MIB = 1024 * 1024
RUNTIME = [sys.executable, "-m", "skiff.runtime.cli.main"]


# Kernel memory that grows with each container and that MemAvailable never counts
# as available; less disturbed by other work on the machine than MemAvailable.
KERNEL_FIELDS = ("SUnreclaim", "PageTables", "KernelStack")


def meminfo() -> dict[str, int]:
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, value = line.split(":", 1)
            fields[name] = int(value.split()[0]) * 1024
    return fields


def used_bytes(fields: dict[str, int]) -> int:
    return fields["MemTotal"] - fields["MemAvailable"]


def kernel_bytes(fields: dict[str, int]) -> int:
    return sum(fields[name] for name in KERNEL_FIELDS)


def private_and_pss(pid: int) -> tuple[int, int]:
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                fields[parts[0][:-1]] = int(parts[1]) * 1024
    return fields["Private_Clean"] + fields["Private_Dirty"], fields["Pss"]


class Result:
    def __init__(self, count: int, cgroup_prefix: str) -> None:
        self.count = count
        self.cgroup_prefix = cgroup_prefix
        self.used_per_container = 0.0
        self.kernel_per_container = 0.0
        self.shim_uss = self.shim_pss = self.init_uss = 0.0
        self.seconds = 0.0

    @property
    def counted(self) -> float:
        """What each container adds that was counted one by one: the private pages of
        its shim and its process, and the kernel's growth."""
        return self.shim_uss + self.init_uss + self.kernel_per_container

    def report(self) -> str:
        return (
            f"{self.count} idle containers in {self.seconds:.1f}s: "
            f"used {self.used_per_container / MIB:.2f} MiB/container; "
            f"shim USS {self.shim_uss / MIB:.2f} MiB, PSS {self.shim_pss / MIB:.2f} MiB; "
            f"container process USS {self.init_uss / MIB:.2f} MiB; "
            f"kernel {self.kernel_per_container / MIB:.2f} MiB; "
            f"counted {self.counted / MIB:.2f} MiB"
        )


def measure(count: int, base: str | None = None) -> Result:
    """Start `count` idle containers through shims, measure, remove everything."""
    base = base or tempfile.mkdtemp(prefix="skiff-mem-", dir="/tmp")
    prefix = f"skiff-mem-{uuid.uuid4().hex[:8]}"
    rootfs = make_busybox_rootfs(os.path.join(base, "rootfs"))
    sock = os.path.join(base, "parent.sock")
    rt_root = os.path.join(base, "rt")
    parent = subprocess.Popen(
        [sys.executable, "-m", "skiff.shim.parent", "--socket", sock],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    shims: list[Shim] = []
    result = Result(count, prefix)
    try:
        while ping_parent(sock) != parent.pid:
            time.sleep(0.01)
        # One container first, so that what is paid once (page cache of the
        # runtime's files, the parent's first fork) is not counted per container.
        names = ["warm"] + [f"c{i}" for i in range(count)]
        t0 = time.monotonic()
        before: dict[str, int] = {}
        pids: list[tuple[int, int]] = []
        for name in names:
            folder = os.path.join(base, name)
            os.makedirs(folder)
            bundle = make_bundle(
                os.path.join(folder, "bundle"), rootfs, ["sleep", "3600"], f"/{prefix}-{name}"
            )
            req = SpawnRequest(name, folder, bundle, RUNTIME, rt_root)
            state = spawn(sock, req)
            shim = Shim(folder)
            shims.append(shim)
            shim.start()
            pids.append((state.shim_pid, state.pid))
            if name == "warm":
                time.sleep(1)
                before = meminfo()
        time.sleep(2)  # let the last ones settle (the runtime processes are gone)
        after = meminfo()
        result.seconds = time.monotonic() - t0
        result.used_per_container = (used_bytes(after) - used_bytes(before)) / count
        result.kernel_per_container = (kernel_bytes(after) - kernel_bytes(before)) / count
        measured = [(private_and_pss(s), private_and_pss(i)) for s, i in pids[1:]]
        result.shim_uss = sum(s[0] for s, _ in measured) / count
        result.shim_pss = sum(s[1] for s, _ in measured) / count
        result.init_uss = sum(i[0] for _, i in measured) / count
        return result
    finally:
        for shim in shims:
            try:
                shim.kill("SIGKILL")
                shim.wait()
                shim.shutdown()
            except (ShimGone, OSError, Exception):
                pass
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        shutil.rmtree(base, ignore_errors=True)


def spread(values: list[float]) -> str:
    """Median (min-max) in MiB."""
    ordered = sorted(v / MIB for v in values)
    return f"{statistics.median(ordered):.2f} ({ordered[0]:.2f}-{ordered[-1]:.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=100, help="containers (default 100)")
    parser.add_argument("-r", "--rounds", type=int, default=1, help="measurements (default 1)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    results = []
    for _ in range(args.rounds):
        results.append(measure(args.n))
        print(results[-1].report(), flush=True)
    if len(results) > 1:
        print(
            f"median (min-max) of {len(results)} rounds, MiB/container: "
            f"used {spread([r.used_per_container for r in results])}; "
            f"shim USS {spread([r.shim_uss for r in results])}, "
            f"PSS {spread([r.shim_pss for r in results])}; "
            f"kernel {spread([r.kernel_per_container for r in results])}; "
            f"counted {spread([r.counted for r in results])}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
