"""Container lifecycle with the same docker CLI against skiffd and a private dockerd.

    sudo .venv/bin/python bench/containers.py [-n ROUNDS] [--batch 20] [--log-lines 100000]

Starts its own skiffd and a private dockerd (skiff.testing.peers.PrivateDockerd:
`--data-root --exec-root --pidfile -H unix://... --bridge none --iptables=false`, its own
cgroup parent) on short temporary paths; imports the same busybox rootfs tar into both
with `docker import`; then, rounds alternating between the daemons:

    run --rm   docker run --rm --network none busybox true          (each round)
    run -d     20 x docker run -d --network none busybox sleep 600   (batch time; rm -f after)
    exec       docker exec C true into a running container           (each round)
    logs       docker logs L > /dev/null, L having printed `seq 100000`
    commit     docker commit C, C having written a 10 MB file        (image removed after)

Prints the medians, the ratio skiff/dockerd and issue 4's goal for each. Stops both
daemons by PID (and skiffd's shim parent) and removes only the folders it made.
Not a test: run it by hand, as root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack

from skiff.testing.daemon import PrivateSkiffd
from skiff.testing.dockercli import DockerCLI

IMAGE = "busybox:latest"
GOALS = {"run --rm": 1 / 3, "run -d x20": 1 / 3, "exec": 1 / 2, "logs": 1.0, "commit": 1.0}


def clean(d: DockerCLI) -> None:
    ids = d.docker("ps", "-aq").split()
    if ids:
        d.docker("rm", "-f", *ids)


def bench(
    daemons: list[DockerCLI], rounds: int, batch: int, log_lines: int
) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {}

    def record(op: str, d: DockerCLI, seconds: float) -> None:
        times.setdefault(op, {}).setdefault(d.name, []).append(seconds)

    def alternate(r: int) -> list[DockerCLI]:
        return daemons if r % 2 == 0 else daemons[::-1]

    for d in daemons:  # warm-up: first-use costs, page cache
        d.timed("run", "--rm", "--network", "none", IMAGE, "true")
    print("run --rm ...", flush=True)
    for r in range(rounds):
        for d in alternate(r):
            record("run --rm", d, d.timed("run", "--rm", "--network", "none", IMAGE, "true"))
    print(f"run -d x{batch} ...", flush=True)
    for r in range(max(3, rounds // 3)):
        for d in alternate(r):
            start = time.perf_counter()
            for _ in range(batch):
                d.timed("run", "-d", "--network", "none", IMAGE, "sleep", "600")
            record(f"run -d x{batch}", d, time.perf_counter() - start)
            clean(d)
    print("exec ...", flush=True)
    for d in daemons:
        d.docker("run", "-d", "--name", "bench-exec", "--network", "none", IMAGE, "sleep", "600")
        d.timed("exec", "bench-exec", "true")
    for r in range(rounds):
        for d in alternate(r):
            record("exec", d, d.timed("exec", "bench-exec", "true"))
    print(f"logs of {log_lines} lines ...", flush=True)
    for d in daemons:
        d.docker("run", "--name", "bench-logs", "--network", "none", IMAGE, "seq", str(log_lines))
        out = d.docker("logs", "bench-logs")
        if len(out.splitlines()) != log_lines:
            raise SystemExit(f"{d.name}: logs gave {len(out.splitlines())} lines")
    for r in range(rounds):
        for d in alternate(r):
            record("logs", d, d.timed("logs", "bench-logs"))
    print("commit of a 10 MB file ...", flush=True)
    for d in daemons:
        d.docker("run", "--name", "bench-commit", "--network", "none", IMAGE, "sh", "-c",
                 "head -c 10485760 /dev/urandom > /big")  # fmt: skip
    for r in range(rounds):
        for d in alternate(r):
            record("commit", d, d.timed("commit", "bench-commit", f"bench-commit:{r}"))
            d.docker("rmi", f"bench-commit:{r}")
    for d in daemons:
        clean(d)
    return times


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-n", "--rounds", type=int, default=10)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--log-lines", type=int, default=100_000)
    ns = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (containers)", file=sys.stderr)
        return 1
    from skiff.testing.peers import PrivateDockerd, busybox_tar

    base = tempfile.mkdtemp(prefix="skb-", dir="/tmp")  # short: unix socket paths
    problems: list[str] = []
    try:
        with ExitStack() as stack:
            tar = busybox_tar(base)
            skiff = DockerCLI("skiff", stack.enter_context(PrivateSkiffd(base)).host, base)
            dockerd = PrivateDockerd({})
            stack.callback(lambda: problems.extend(dockerd.stop()))
            peer = DockerCLI("dockerd", "unix://" + dockerd.socket, dockerd.base)
            daemons = [skiff, peer]
            for d in daemons:
                d.docker("import", "-", IMAGE, stdin=tar)
            try:
                times = bench(daemons, ns.rounds, ns.batch, ns.log_lines)
            finally:
                for d in daemons:
                    clean(d)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\n{'':14}{'skiff':>10}{'dockerd':>10}{'ratio':>8}{'goal':>8}   (median, seconds)")
    for op, by in times.items():
        ours, theirs = statistics.median(by["skiff"]), statistics.median(by["dockerd"])
        goal = GOALS.get(op if not op.startswith("run -d") else "run -d x20", 1.0)
        mark = "ok" if ours / theirs <= goal else "MISSED"
        print(f"{op:14}{ours:10.3f}{theirs:10.3f}{ours / theirs:8.2f}{goal:8.2f}   {mark}")
    if problems:
        print(f"\ndockerd left things behind: {problems}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
