"""`docker load` and `docker save` of a multi-layer ~200 MB image: skiffd vs dockerd.

    sudo .venv/bin/python bench/images.py [-n ROUNDS] [--size-mb 200] [--layers 4]
        [--skiff-host unix:///...] [--dockerd-host unix:///...]

The same docker CLI drives both daemons. Without --skiff-host / --dockerd-host the
script starts its own skiffd and a private dockerd (`--bridge none --iptables=false`)
on temporary roots and sockets, stops them by pid and removes what they made; it never
touches /var/lib/docker or the default socket. It builds a docker-archive (manifest.json,
config, layer tars) whose layers hold a mix of many small files and some large ones, of
random bytes (so neither side gains from compression), then for each round and daemon:

    load   docker load -i archive.tar          (timed; the image is removed afterwards)
    save   docker save -o out.tar IMAGE        (timed, on an image loaded beforehand)

Rounds alternate between the daemons so machine noise hits both alike. It prints the
median of each and the ratio skiff/dockerd (the issue's goal: at most 1.0).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from skiff.testing.daemon import PrivateSkiffd, terminate, wait_for_socket

IMAGE = "skiffbench:latest"


def _layer(path: str, size: int, seed: int) -> str:
    """A layer tar of about `size` bytes: 70% in a few big files, 30% in 4 KiB files.
    Returns its sha256 (the diff id)."""
    rnd = hashlib.sha256(str(seed).encode()).digest()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
        for d in ("usr", f"usr/l{seed}", f"usr/l{seed}/small", f"usr/l{seed}/big"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        big_total = int(size * 0.7)
        big_files = max(1, big_total // (16 << 20))
        for i in range(big_files):
            n = big_total // big_files
            info = tarfile.TarInfo(f"usr/l{seed}/big/f{i}")
            info.size = n
            data = (block * (n // len(block) + 1))[:n]
            tar.addfile(info, io.BytesIO(rnd + data[len(rnd) :]))
        for i in range((size - big_total) // 4096):
            info = tarfile.TarInfo(f"usr/l{seed}/small/{i:06d}")
            info.size = 4096
            tar.addfile(info, io.BytesIO(os.urandom(4096)))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def make_archive(dest: str, total_mb: int, layers: int) -> None:
    work = tempfile.mkdtemp(prefix="skb-", dir=os.path.dirname(dest))
    try:
        diff_ids, paths = [], []
        for i in range(layers):
            path = os.path.join(work, f"layer{i}.tar")
            diff_ids.append(_layer(path, total_mb * 1_000_000 // layers, i))
            paths.append(path)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"}
                for i in range(layers)
            ],
        }
        config_bytes = json.dumps(config).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        manifest = [
            {
                "Config": config_name,
                "RepoTags": [IMAGE],
                "Layers": [f"{d[7:]}/layer.tar" for d in diff_ids],
            }
        ]
        with tarfile.open(dest, "w") as tar:
            for diff_id, path in zip(diff_ids, paths, strict=True):
                tar.add(path, arcname=f"{diff_id[7:]}/layer.tar")
            for name, data in (
                (config_name, config_bytes),
                ("manifest.json", json.dumps(manifest).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def dockerd(root: str) -> Iterator[str]:
    sock = os.path.join(root, "d.sock")
    argv = ["dockerd", "--data-root", os.path.join(root, "dd"), "--exec-root",
            os.path.join(root, "de"), "--pidfile", os.path.join(root, "d.pid"),
            "-H", "unix://" + sock, "--bridge", "none", "--iptables=false"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_socket(sock, proc, "dockerd", timeout=60)
        yield "unix://" + sock
    finally:
        terminate(proc)


def docker(host: str, *args: str) -> float:
    env = dict(os.environ, DOCKER_HOST=host)
    start = time.perf_counter()
    subprocess.run(["docker", *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-n", "--rounds", type=int, default=5)
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--skiff-host", default=None)
    p.add_argument("--dockerd-host", default=None)
    ns = p.parse_args()
    root = tempfile.mkdtemp(prefix="skb-")
    try:
        with ExitStack() as stack:
            hosts: dict[str, str] = {}
            if ns.skiff_host:
                hosts["skiff"] = ns.skiff_host
            else:
                hosts["skiff"] = stack.enter_context(PrivateSkiffd(root)).host
            if ns.dockerd_host:
                hosts["dockerd"] = ns.dockerd_host
            else:
                hosts["dockerd"] = stack.enter_context(dockerd(root))
            archive = os.path.join(root, "image.tar")
            print(f"making a {ns.layers}-layer ~{ns.size_mb} MB docker-archive ...", flush=True)
            make_archive(archive, ns.size_mb, ns.layers)
            print(f"archive: {os.path.getsize(archive) / 1e6:.0f} MB", flush=True)
            times: dict[tuple[str, str], list[float]] = {}
            out = os.path.join(root, "out.tar")
            for host in hosts.values():  # warm-up: caches, first-use costs
                docker(host, "load", "-q", "-i", archive)
                docker(host, "rmi", IMAGE)
            for r in range(ns.rounds):
                order = list(hosts.items()) if r % 2 == 0 else list(reversed(hosts.items()))
                for name, host in order:
                    times.setdefault((name, "load"), []).append(
                        docker(host, "load", "-q", "-i", archive)
                    )
                    times.setdefault((name, "save"), []).append(
                        docker(host, "save", "-o", out, IMAGE)
                    )
                    os.unlink(out)
                    docker(host, "rmi", IMAGE)
            print(
                f"\n{'':8}{'skiff':>10}{'dockerd':>10}{'ratio':>8}   (median of {ns.rounds}, seconds)"
            )
            for op in ("load", "save"):
                ours = statistics.median(times[("skiff", op)])
                theirs = statistics.median(times[("dockerd", op)])
                print(f"{op:8}{ours:10.3f}{theirs:10.3f}{ours / theirs:8.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
