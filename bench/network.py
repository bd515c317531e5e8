"""What the bridge costs: `docker run --rm busybox true` on the default bridge vs
`--network none`, one at a time and 20 in parallel, against a private skiffd (own bridge
name, subnet and chain prefix; everything it made is removed at the end).

    .venv/bin/python bench/network.py [-n ROUNDS] [--dockerd-host unix:///...]

With --dockerd-host the same runs go to that dockerd too (it must have a busybox image
and a bridge of its own; see DESIGN.md: never start one that takes docker0).
Goal (issue 6): the bridge adds < 20 ms; 20 parallel starts on a bridge >= 3x dockerd's.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor


def _run(host: str, network: str) -> float:
    t = time.perf_counter()
    r = subprocess.run(
        ["docker", "run", "--rm", "--network", network, "busybox", "true"],
        env={**os.environ, "DOCKER_HOST": host},
        capture_output=True,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(r.stderr.decode())
    return time.perf_counter() - t


def _parallel(host: str, network: str, n: int = 20) -> float:
    t = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        list(pool.map(lambda _: _run(host, network), range(n)))
    return time.perf_counter() - t


def measure(name: str, host: str, rounds: int) -> None:
    for network in ("none", "bridge"):
        _run(host, network)  # warm
        times = [_run(host, network) for _ in range(rounds)]
        par = _parallel(host, network)
        print(
            f"{name:7} {network:7} run --rm median {statistics.median(times) * 1000:7.1f} ms"
            f"   20 parallel {par:6.2f} s"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", "--rounds", type=int, default=10)
    ap.add_argument("--dockerd-host", default="")
    ns = ap.parse_args()
    root = tempfile.mkdtemp(prefix="skb-", dir="/tmp")
    tag = secrets.token_hex(3)
    sock = os.path.join(root, "s.sock")
    host = "unix://" + sock
    prefix = f"SKB{tag.upper()}"
    argv = [sys.executable, "-m", "skiff.daemon.main", "--data-root", os.path.join(root, "d"),
            "--exec-root", os.path.join(root, "e"), "-H", host, "--bridge", f"skb{tag}",
            "--bip", f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}.1/24",
            "--iptables-chain-prefix", prefix]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(sock)
                    break
                except OSError:
                    time.sleep(0.05)
        subprocess.run(
            [sys.executable, "-m", "skiff.cli.main", "image", "bootstrap", "busybox"],
            env={**os.environ, "SKIFF_HOST": host},
            capture_output=True,
            check=True,
        )
        measure("skiff", host, ns.rounds)
        if ns.dockerd_host:
            measure("dockerd", ns.dockerd_host, ns.rounds)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)
        from skiff.network import NetworkConfig, NetworkManager
        from skiff.shim.client import ping_parent

        parent = ping_parent(os.path.join(root, "e", "shim-parent.sock"))
        if parent:
            os.kill(parent, signal.SIGKILL)
        NetworkManager(
            NetworkConfig(state_dir=os.path.join(root, "d", "network"), chain_prefix=prefix)
        ).destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
