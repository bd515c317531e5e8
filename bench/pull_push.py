"""Pull and push of a five-layer ~200 MB image with a local registry: skiff vs dockerd.

    sudo .venv/bin/python bench/pull_push.py [-n ROUNDS] [--size-mb 200] [--layers 5]

Needs docker-registry (distribution 2.8), dockerd 20.10 and the docker CLI. Everything
runs on temporary roots under /tmp with short paths and is stopped by PID afterwards:
two registries on 127.0.0.1 (a source holding the image, and a push target restarted
empty before each push so nothing can be skipped or mounted), and a private dockerd
(`--bridge none --iptables=false --insecure-registry 127.0.0.1:PORT`); /var/lib/docker
and the default socket are never touched.

The image: five gzip layers (half random bytes, half compressible text), pushed to the
source registry once. Each round, alternating which side goes first:

    pull   skiff: DistributionService.pull into a fresh data root (download, verify,
           unpack into overlay snapshots, record); dockerd: `docker pull` after `docker
           rmi` of the previous round (download, verify, extract)
    push   to the empty target registry: skiff pushes the blobs it stores (already
           gzip); dockerd recompresses its layers for a registry it has no record of

skiff runs in this process (the registry client and image service as skiffd would
call them, without the Engine API hop); dockerd is driven through the docker CLI.
Prints the median of each and the ratio skiff/dockerd (the goal: at most 1.0).
"""

from __future__ import annotations

import argparse
import gzip
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from skiff.content.local import LocalStore
from skiff.content.types import write_blob
from skiff.distribution.client import RegistryClient
from skiff.distribution.push import Pusher
from skiff.images.service import ImageService
from skiff.oci import mediatypes as mt
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest
from skiff.oci.reference import parse_familiar
from skiff.services.distribution import DistributionService
from skiff.testing.daemon import terminate, wait_for_socket
from skiff.testing.realregistry import DistributionRegistry

WORDS = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "


def _layer(size: int, seed: int) -> tuple[bytes, str]:
    """A gzip layer tar of about `size` uncompressed bytes, and its diffID."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for i in range(max(1, size // (4 << 20))):
            half = 2 << 20
            text = (WORDS * (half // len(WORDS) + 1))[:half]
            data = os.urandom(half) + text
            info = tarfile.TarInfo(f"layer{seed}/f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, 6, mtime=0), str(Digest.from_bytes(tar_bytes))


def seed_image(store: LocalStore, total_mb: int, layers: int) -> Descriptor:
    descs, diff_ids = [], []
    for i in range(layers):
        data, diff_id = _layer(total_mb * 1_000_000 // layers, i)
        d = Digest.from_bytes(data)
        write_blob(store, f"l{i}", [data], d, len(data))
        descs.append(Descriptor(mt.OCI_LAYER_GZIP, d, len(data)))
        diff_ids.append(diff_id)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()  # fmt: skip
    cd = Digest.from_bytes(config)
    write_blob(store, "c", [config], cd, len(config))
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": Descriptor(mt.OCI_CONFIG, cd, len(config)).to_json(),
        "layers": [d.to_json() for d in descs],
    }).encode()  # fmt: skip
    md = Digest.from_bytes(manifest)
    write_blob(store, "m", [manifest], md, len(manifest))
    return Descriptor(mt.OCI_MANIFEST, md, len(manifest))


@contextmanager
def dockerd(root: str, insecure: list[str]) -> Iterator[str]:
    sock = os.path.join(root, "d.sock")
    argv = ["dockerd", "--data-root", os.path.join(root, "dd"), "--exec-root",
            os.path.join(root, "de"), "--pidfile", os.path.join(root, "d.pid"),
            "-H", "unix://" + sock, "--bridge", "none", "--iptables=false"]  # fmt: skip
    for reg in insecure:
        argv += ["--insecure-registry", reg]
    log = open(os.path.join(root, "dockerd.log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_socket(sock, proc, "dockerd", timeout=60, log=Path(root, "dockerd.log"))
        yield "unix://" + sock
    finally:
        terminate(proc)
        log.close()


def docker(host: str, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(["docker", *args], env=dict(os.environ, DOCKER_HOST=host), check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - start


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-n", "--rounds", type=int, default=3)
    p.add_argument("--size-mb", type=int, default=200)
    p.add_argument("--layers", type=int, default=5)
    ns = p.parse_args()
    root = tempfile.mkdtemp(prefix="skp-")
    try:
        with ExitStack() as stack:
            source = stack.enter_context(DistributionRegistry(os.path.join(root, "rs")))
            target = DistributionRegistry(os.path.join(root, "rt"))
            stack.callback(target.stop)
            target.start()
            print(f"making a {ns.layers}-layer ~{ns.size_mb} MB image ...", flush=True)
            seed = LocalStore(os.path.join(root, "seed"))
            top = seed_image(seed, ns.size_mb, ns.layers)
            size = sum(i.size for i in seed.walk())
            print(f"compressed: {size / 1e6:.0f} MB", flush=True)
            image = f"{source.host}/bench:1"
            Pusher(RegistryClient(), seed).push(parse_familiar(image), top)
            host = stack.enter_context(dockerd(root, [source.host, target.host]))
            times: dict[tuple[str, str], list[float]] = {}

            def restart_target() -> None:
                target.stop()
                shutil.rmtree(os.path.join(root, "rt", "data"), ignore_errors=True)
                target.start()

            def skiff_round(r: int) -> None:
                data_root = os.path.join(root, f"s{r}")
                images = ImageService.open(data_root)
                try:
                    svc = DistributionService(images)
                    times.setdefault(("skiff", "pull"), []).append(timed(lambda: svc.pull(image)))
                    pushed = f"{target.host}/pushed:1"
                    images.tag(image, f"{target.host}/pushed", "1")
                    restart_target()
                    times.setdefault(("skiff", "push"), []).append(timed(lambda: svc.push(pushed)))
                finally:
                    images.close()
                    shutil.rmtree(data_root, ignore_errors=True)

            def dockerd_round(r: int) -> None:
                times.setdefault(("dockerd", "pull"), []).append(docker(host, "pull", "-q", image))
                pushed = f"{target.host}/pushed:1"
                docker(host, "tag", image, pushed)
                restart_target()
                times.setdefault(("dockerd", "push"), []).append(docker(host, "push", pushed))
                docker(host, "rmi", image, pushed)

            for r in range(ns.rounds):
                order = [skiff_round, dockerd_round]
                if r % 2:
                    order.reverse()
                for fn in order:
                    fn(r)
                print(f"round {r + 1}/{ns.rounds} done", flush=True)
            print(f"\n{'':8}{'skiff':>10}{'dockerd':>10}{'ratio':>8}")
            for op in ("pull", "push"):
                s = statistics.median(times[("skiff", op)])
                d = statistics.median(times[("dockerd", op)])
                print(f"{op:8}{s:>9.2f}s{d:>9.2f}s{s / d:>8.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
