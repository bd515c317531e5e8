"""skiff-runtime vs runc, side by side on the same busybox bundle.

    sudo .venv/bin/python bench/runtime.py [-n ROUNDS] [--runc PATH]

Two operations, timed as whole commands from this process (what a caller such
as containerd pays), alternating between the runtimes every round so that
machine noise hits both alike:

    lifecycle   create + start + (wait for exit) + delete, of `true`
    run         run of `true` in the foreground

Prints the median of each and the ratio skiff/runc (goal: at most 1.0).
Bytecode is compiled first: Python without .pyc files pays for compiling.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
sys.path.insert(0, SRC)

from skiff.testing.bundles import make_bundle, make_busybox_rootfs  # noqa: E402


def skiff_runtime() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "skiff-runtime")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-m", "skiff.runtime.cli.main"]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def quiet(runtime: list[str], *args: str) -> None:
    subprocess.run(
        [*runtime, *args], check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )


def lifecycle(runtime: list[str], root: str, bundle: str, cid: str) -> float:
    start = time.perf_counter()
    quiet(runtime, "--root", root, "create", "--bundle", bundle, cid)
    quiet(runtime, "--root", root, "start", cid)
    while True:
        out = subprocess.run(
            [*runtime, "--root", root, "state", cid], capture_output=True, text=True, check=True
        ).stdout
        if json.loads(out)["status"] == "stopped":
            break
    quiet(runtime, "--root", root, "delete", cid)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20, help="rounds (default 20)")
    parser.add_argument("--runc", default=shutil.which("runc") or "runc")
    args = parser.parse_args()
    compileall.compile_dir(SRC, quiet=1)
    work = tempfile.mkdtemp(prefix="skiff-bench-")
    try:
        bundle = os.path.join(work, "bundle")
        make_busybox_rootfs(os.path.join(bundle, "rootfs"))
        make_bundle(bundle, os.path.join(bundle, "rootfs"), ["true"], cgroups_path="")
        runtimes = {"runc": [args.runc], "skiff": skiff_runtime()}
        results: dict[str, dict[str, list[float]]] = {
            n: {"lifecycle": [], "run": []} for n in runtimes
        }
        for i in range(args.n):
            for name, argv in runtimes.items():
                root = os.path.join(work, f"state-{name}")
                cid = f"bench-{name}-{i}"
                results[name]["lifecycle"].append(lifecycle(argv, root, bundle, cid))
                run = [*argv, "--root", root, "run", "--bundle", bundle, cid + "-run"]
                results[name]["run"].append(timed(run))
        print(f"{'operation':<12}{'runc ms':>10}{'skiff ms':>10}{'ratio':>8}")
        for op in ("lifecycle", "run"):
            runc = statistics.median(results["runc"][op]) * 1000
            skiff = statistics.median(results["skiff"][op]) * 1000
            print(f"{op:<12}{runc:>10.1f}{skiff:>10.1f}{skiff / runc:>8.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
