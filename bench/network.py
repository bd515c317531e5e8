"""What the bridge costs, with the same docker CLI against skiffd and a private dockerd.

    sudo .venv/bin/python bench/network.py [-n ROUNDS] [--batch 20] [--no-dockerd]

Starts its own skiffd on its own bridge, subnet and chain prefix (`--bridge sknf0 --bip
10.231.0.1/24 --iptables-chain-prefix SKNF` by default) and a private dockerd
(skiff.testing.peers.PrivateDockerd) on a bridge this script creates itself (`nfdk0`,
10.233.0.1/24) with `--iptables=false --ip-forward=false`: dockerd never takes docker0
and never touches the host's firewall. Both get the same busybox rootfs through
`docker import`. Then, rounds alternating between the daemons:

    run --rm none    docker run --rm --network none busybox true
    run --rm bridge  docker run --rm busybox true                  (the default bridge)
    run -d x20       20 x docker run -d busybox sleep 600, all at once, on the bridge
                     (batch time; rm -f after)

Prints the medians, the bridge's overhead (bridge minus none of the same round, the
median over rounds, per daemon) and the parallel ratio skiff/dockerd against issue 6's
goals: the bridge adds < 20 ms, 20 parallel starts on a bridge >= 3x faster than
dockerd's (ratio <= 0.33).
Measured 2026-11-28 on a 2-core machine shared with other work (load 2-24), three runs
of -n 20: skiff's bridge adds 5, 35 and 8 ms (dockerd's 55, 120 and 82 ms); skiffd's own
timestamps give start->started 77 vs 77 ms and exit->removed 20 vs 22 ms for bridge vs
none, as the veth work runs during the runtime's create and after the exit. 20 parallel
starts on the bridge: 0.27, 0.29 and 0.27 of dockerd's time. (Before: +61 ms, 0.36.)
At the end it stops both daemons by PID, removes everything skiffd's network made
(bridge, veths, chains) and the bridge it made for dockerd, and only the folders it made.
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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager

from skiff.testing.dockercli import DockerCLI

IMAGE = "busybox:latest"
OVERHEAD_GOAL_MS = 20.0
PARALLEL_GOAL = 1 / 3


@contextmanager
def skiffd(base: str, ns: argparse.Namespace) -> Iterator[str]:
    """skiffd on its own bridge, subnet and chain prefix (skiff.testing.daemon); its
    network state is destroyed after it stops (rules, bridge, the pool's records)."""
    from skiff.network import NetworkConfig, NetworkManager
    from skiff.testing.daemon import PrivateSkiffd, SkiffdFlags

    flags = SkiffdFlags(
        bridge=ns.bridge,
        bip=ns.bip,
        address_pool=ns.pool,
        chain_prefix=ns.chain_prefix,
        debug=ns.debug,  # request timings in EXEC_ROOT/skiffd.log
    )
    daemon = PrivateSkiffd(base, flags=flags)
    try:
        daemon.start(timeout=60)
        yield daemon.host
    finally:
        daemon.stop()
        daemon.stop_shim_parent()
        state_dir = os.path.join(daemon.data_root, "network")
        NetworkManager(NetworkConfig(state_dir=state_dir, chain_prefix=ns.chain_prefix)).destroy()
        if ns.debug:
            log = os.path.join(daemon.exec_root, "skiffd.log")
            shutil.copy(log, f"/tmp/{ns.bridge}-skiffd.log")


@contextmanager
def own_bridge(name: str, address: str) -> Iterator[None]:
    """A bridge for dockerd's default network (dockerd uses a given --bridge as it is)."""
    from pyroute2 import IPRoute

    ip, _, length = address.partition("/")
    with IPRoute() as ipr:
        if ipr.link_lookup(ifname=name):
            raise SystemExit(f"{name} exists already")
        ipr.link("add", ifname=name, kind="bridge")
        index = ipr.link_lookup(ifname=name)[0]
        try:
            ipr.addr("add", index=index, address=ip, prefixlen=int(length))
            ipr.link("set", index=index, state="up")
            yield
        finally:
            ipr.link("del", index=index)


def clean(d: DockerCLI) -> None:
    ids = d.docker("ps", "-aq").split()
    if ids:
        d.docker("rm", "-f", *ids)


def bench(daemons: list[DockerCLI], rounds: int, batch: int) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {}

    def record(op: str, d: DockerCLI, seconds: float) -> None:
        times.setdefault(op, {}).setdefault(d.name, []).append(seconds)

    def alternate(r: int) -> list[DockerCLI]:
        return daemons if r % 2 == 0 else daemons[::-1]

    for d in daemons:  # warm-up: first-use costs, page cache
        for net in ("none", "bridge"):
            d.timed("run", "--rm", "--network", net, IMAGE, "true")
    print("run --rm, none and bridge ...", flush=True)
    for r in range(rounds):
        for d in alternate(r):
            for net in ("none", "bridge") if r % 2 == 0 else ("bridge", "none"):
                record(
                    f"run --rm {net}", d, d.timed("run", "--rm", "--network", net, IMAGE, "true")
                )
    print(f"run -d x{batch} at once, on the bridge ...", flush=True)
    with ThreadPoolExecutor(batch) as pool:
        for r in range(max(3, rounds // 3)):
            for d in alternate(r):
                start = time.perf_counter()
                list(
                    pool.map(
                        lambda _, d=d: d.docker("run", "-d", IMAGE, "sleep", "600"), range(batch)
                    )
                )
                record(f"run -d x{batch}", d, time.perf_counter() - start)
                clean(d)
    return times


def report(times: dict[str, dict[str, list[float]]], names: list[str], batch: int) -> None:
    med = {op: {n: statistics.median(v) for n, v in by.items()} for op, by in times.items()}
    print(f"\n{'':18}" + "".join(f"{n:>10}" for n in names) + "   (median, seconds)")
    for op, by in med.items():
        print(f"{op:18}" + "".join(f"{by[n]:10.3f}" for n in names if n in by))
    for n in names:
        # Each round ran none and bridge back to back: the median of those differences
        # is steadier on a busy machine than the difference of the medians.
        pairs = zip(times["run --rm bridge"][n], times["run --rm none"][n], strict=True)
        extra = statistics.median(b - o for b, o in pairs) * 1000
        goal = (
            f"   goal < {OVERHEAD_GOAL_MS:.0f} ms: {'ok' if extra < OVERHEAD_GOAL_MS else 'MISSED'}"
        )
        print(
            f"bridge overhead {n:8} {extra:6.1f} ms (median of paired rounds)"
            + (goal if n == "skiff" else "")
        )
    if "dockerd" in names:
        op = f"run -d x{batch}"
        ratio = med[op]["skiff"] / med[op]["dockerd"]
        mark = "ok" if ratio <= PARALLEL_GOAL else "MISSED"
        print(f"{op} skiff/dockerd {ratio:.2f}   goal <= {PARALLEL_GOAL:.2f}: {mark}")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-n", "--rounds", type=int, default=10)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--no-dockerd", action="store_true", help="measure skiffd alone")
    p.add_argument("-D", "--debug", action="store_true", help="skiffd -D; its log kept in /tmp")
    p.add_argument("--bridge", default="sknf0", help="skiffd's bridge")
    p.add_argument("--bip", default="10.231.0.1/24")
    p.add_argument("--pool", default="base=10.231.64.0/18,size=24")
    p.add_argument("--chain-prefix", default="SKNF")
    p.add_argument("--dockerd-bridge", default="nfdk0", help="made here, removed at the end")
    p.add_argument("--dockerd-bip", default="10.233.0.1/24")
    ns = p.parse_args()
    if os.geteuid() != 0:
        print("needs root (containers, bridges)", file=sys.stderr)
        return 1
    from skiff.testing.peers import PrivateDockerd, busybox_tar

    base = tempfile.mkdtemp(prefix="skb-", dir="/tmp")  # short: unix socket paths
    problems: list[str] = []
    try:
        with ExitStack() as stack:
            tar = busybox_tar(base)
            daemons = [DockerCLI("skiff", stack.enter_context(skiffd(base, ns)), base)]
            if not ns.no_dockerd:
                stack.enter_context(own_bridge(ns.dockerd_bridge, ns.dockerd_bip))
                dockerd = PrivateDockerd({}, bridge=ns.dockerd_bridge)
                stack.callback(lambda: problems.extend(dockerd.stop()))
                daemons.append(DockerCLI("dockerd", "unix://" + dockerd.socket, dockerd.base))
            for d in daemons:
                d.docker("import", "-", IMAGE, stdin=tar)
            try:
                times = bench(daemons, ns.rounds, ns.batch)
            finally:
                for d in daemons:
                    clean(d)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(times, [d.name for d in daemons], ns.batch)
    if problems:
        print(f"\ndockerd left things behind: {problems}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
