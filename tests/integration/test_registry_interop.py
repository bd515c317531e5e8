"""A real skiffd, the real docker CLI, Debian's docker-registry and a private dockerd.

    interop     dockerd pushes, skiffd pulls (and the other way round), digests identical
    SIGKILL     skiffd killed mid-download and mid-unpack: nothing visible, nothing half
                stored, the next pull completes
    errors      404, 401 and a registry that is down: "Error response from daemon: ..."
                naming the image and the cause, exit 1, and skiffd keeps serving

Every process here is started by the test and stopped by its PID; every folder is one
the test made (short paths under /tmp: unix socket paths are limited).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from skiff.testing import realregistry
from skiff.testing.bundles import make_busybox_rootfs
from skiff.testing.daemon import PrivateSkiffd
from skiff.testing.peers import PrivateDockerd
from skiff.testing.realregistry import DistributionRegistry, free_port

DOCKER = shutil.which("docker")


def _missing(*tools: str) -> str:
    gone = [t for t in tools if shutil.which(t) is None]
    return f"needs {', '.join(gone)}" if gone else ""


pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not realregistry.available(), reason="docker-registry is not installed"),
    pytest.mark.skipif(DOCKER is None, reason="docker CLI is not installed"),
    pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox-static is not installed"),
]


# -- a skiffd we can kill and restart -------------------------------------------------


class Skiffd(PrivateSkiffd):
    """skiffd on its own data root, exec root and socket under `base`, with a docker CLI."""

    def __init__(self, base: Path) -> None:
        super().__init__(base)
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(base),
            "DOCKER_CONFIG": str(base / "docker-config"),
            "DOCKER_HOST": self.host,
        }

    def docker(
        self, *args: str, timeout: float = 120, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert DOCKER is not None
        proc = subprocess.run(
            [DOCKER, *args], env=self.env, input=input, capture_output=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        return subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )  # fmt: skip

    def popen_docker(self, *args: str) -> subprocess.Popen[bytes]:
        assert DOCKER is not None
        return subprocess.Popen(
            [DOCKER, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="/tmp/skr-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def skiffd(base: Path) -> Iterator[Skiffd]:
    daemon = Skiffd(base / "skiffd")
    daemon.root.mkdir()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.fixture
def registry(base: Path) -> Iterator[DistributionRegistry]:
    with DistributionRegistry(base / "registry") as reg:
        yield reg


@pytest.fixture(scope="module")
def dockerd() -> Iterator[PrivateDockerd]:
    if reason := _missing("dockerd", "containerd", "runc"):
        pytest.skip(reason)
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    daemon = PrivateDockerd({})  # loopback registries are insecure (plain HTTP) by default
    try:
        yield daemon
    finally:
        problems = daemon.stop()
    assert not problems, f"dockerd left things behind: {problems}"


def _busybox_tar(workdir: Path) -> Path:
    rootfs = make_busybox_rootfs(str(workdir / "rootfs"))
    path = workdir / "busybox.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs, arcname=".")
    shutil.rmtree(rootfs)
    return path


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"{proc.args}: {proc.stderr}"
    return proc.stdout


def _pushed_digest(out: str) -> str:
    found = re.search(r": digest: (sha256:[0-9a-f]{64}) size: \d+", out)
    assert found, out
    return found.group(1)


def _identity(
    docker: Callable[..., subprocess.CompletedProcess[str]], ref: str
) -> tuple[str, list[str], list[str]]:
    """(config digest, diffIDs, RepoDigests) of an image as `docker image inspect` shows."""
    [doc] = json.loads(_ok(docker("image", "inspect", ref)))
    return doc["Id"], doc["RootFS"]["Layers"], doc["RepoDigests"]


# -- 1. interop with the real dockerd ---------------------------------------------------


def test_dockerd_pushes_and_skiffd_pulls_the_same_image(
    dockerd: PrivateDockerd, skiffd: Skiffd, registry: DistributionRegistry, base: Path
) -> None:
    repo = f"{registry.host}/interop/fromdocker"
    tar = _busybox_tar(base)
    _ok(dockerd.docker("import", "-c", 'CMD ["sh"]', str(tar), f"{repo}:base"))
    # a second layer: a container's change, committed
    _ok(dockerd.docker("run", "--network", "none", "--name", "layer2", f"{repo}:base",
                       "sh", "-c", "echo second > /layer2.txt"))  # fmt: skip
    _ok(dockerd.docker("commit", "layer2", f"{repo}:2"))
    _ok(dockerd.docker("rm", "layer2"))
    digest = _pushed_digest(_ok(dockerd.docker("push", f"{repo}:2", timeout=120)))
    config, diff_ids, _ = _identity(dockerd.docker, f"{repo}:2")
    assert len(diff_ids) == 2

    pulled = skiffd.docker("pull", f"{repo}:2")
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {digest}" in pulled.stdout
    ours = _identity(skiffd.docker, f"{repo}:2")
    assert ours == (config, diff_ids, [f"{repo}@{digest}"])
    # by digest too: nothing to fetch again
    again = skiffd.docker("pull", f"{repo}@{digest}")
    assert again.returncode == 0, again.stderr
    assert "Image is up to date" in again.stdout, again.stdout
    assert "Pulling fs layer" not in again.stdout


def test_skiffd_pushes_and_dockerd_pulls_and_runs(
    dockerd: PrivateDockerd, skiffd: Skiffd, registry: DistributionRegistry, base: Path
) -> None:
    # a two-layer image made by dockerd, loaded into skiffd (uncompressed layers: skiffd
    # compresses them on push), and skiffd's own single-layer busybox
    src = "twolayer:src"
    tar = _busybox_tar(base)
    _ok(dockerd.docker("import", "-c", 'CMD ["sh"]', str(tar), "onelayer:src"))
    _ok(dockerd.docker("run", "--network", "none", "--name", "l2", "onelayer:src",
                       "sh", "-c", "echo from-layer-2 > /l2"))  # fmt: skip
    _ok(dockerd.docker("commit", "l2", src))
    _ok(dockerd.docker("rm", "l2"))
    archive = base / "twolayer.tar"
    _ok(dockerd.docker("save", "-o", str(archive), src))
    _ok(dockerd.docker("rmi", src, "onelayer:src"))
    _ok(skiffd.docker("load", "-i", str(archive)))
    _ok(_bootstrap(skiffd))

    for local, remote in [(src, f"{registry.host}/interop/two:1"),
                          ("busybox", f"{registry.host}/interop/busybox:1")]:  # fmt: skip
        _ok(skiffd.docker("tag", local, remote))
        digest = _pushed_digest(_ok(skiffd.docker("push", remote)))
        config, diff_ids, _ = _identity(skiffd.docker, remote)

        pulled = dockerd.docker("pull", remote, timeout=120)
        assert pulled.returncode == 0, pulled.stderr
        assert f"Digest: {digest}" in pulled.stdout
        name = remote.rsplit(":", 1)[0]
        assert _identity(dockerd.docker, remote) == (config, diff_ids, [f"{name}@{digest}"])
        ran = dockerd.docker("run", "--rm", "--network", "none", remote, "echo", "ok")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == "ok\n"
        if local == src:
            ran = dockerd.docker("run", "--rm", "--network", "none", remote, "cat", "/l2")
            assert ran.stdout == "from-layer-2\n", ran.stderr
        _ok(dockerd.docker("rmi", remote))


def _bootstrap(skiffd: Skiffd) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "skiff.cli.main", "-H", "unix://" + skiffd.socket,
            "image", "bootstrap", "busybox"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


# -- 2. SIGKILL of skiffd mid-pull ------------------------------------------------------

BIG_LAYERS = 4
BIG_LAYER_SIZE = 25 << 20  # ~100 MB of random data: the pull takes a while


def _blob(layout: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def _write_big_layout(layout: Path) -> list[str]:
    """An OCI image layout of BIG_LAYERS gzip layers of random bytes; returns the diffIDs."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    layers, diff_ids = [], []
    for i in range(BIG_LAYERS):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(f"big{i}.bin")
            info.size = BIG_LAYER_SIZE
            tar.addfile(info, io.BytesIO(os.urandom(BIG_LAYER_SIZE)))
        raw = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        layers.append(
            _blob(layout, gzip.compress(raw, 1), "application/vnd.oci.image.layer.v1.tar+gzip")
        )
    config = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, "amd64"),
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _blob(
            layout, json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"
        ),
        "layers": layers,
    }
    top = _blob(layout, json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    top["annotations"] = {"org.opencontainers.image.ref.name": "1"}
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    return diff_ids


@pytest.fixture(scope="module")
def big_layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    layout = tmp_path_factory.mktemp("big") / "layout"
    return layout, _write_big_layout(layout)


@pytest.fixture
def big_image(
    big_layout: tuple[Path, list[str]], registry: DistributionRegistry
) -> tuple[str, str, list[str]]:
    """(reference, manifest digest, diffIDs) of the big image, pushed by skopeo."""
    if reason := _missing("skopeo"):
        pytest.skip(reason)
    layout, diff_ids = big_layout
    ref = f"{registry.host}/big/random:1"
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{ref}"],
        capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    index = json.loads((layout / "index.json").read_text())
    return ref, index["manifests"][0]["digest"], diff_ids


def _ingest_bytes(daemon: Skiffd) -> int:
    total = 0
    for data in (daemon.data_root / "content" / "ingest").glob("*/data"):
        try:
            total += data.stat().st_size
        except FileNotFoundError:
            pass  # committed meanwhile
    return total


def _snapshot_folders(daemon: Skiffd) -> list[str]:
    root = daemon.data_root / "snapshots"
    return sorted(p.name for p in root.iterdir() if p.name.isdigit()) if root.exists() else []


def _downloading(daemon: Skiffd) -> bool:
    return _ingest_bytes(daemon) > 4 << 20 and not _snapshot_folders(daemon)


def _unpacking(daemon: Skiffd) -> bool:
    # every layer is downloaded (nothing left in the ingest) and a layer is being unpacked
    return bool(_snapshot_folders(daemon)) and _ingest_bytes(daemon) == 0


def _bad_blobs(daemon: Skiffd) -> list[str]:
    """Blobs whose bytes do not hash to their name: a half-written blob."""
    bad = []
    for path in (daemon.data_root / "content" / "blobs" / "sha256").iterdir():
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != path.name:
            bad.append(path.name)
    return bad


def _unreferenced(daemon: Skiffd) -> tuple[list[str], list[str]]:
    """What a collection over the stopped daemon's store would sweep (blobs, snapshots)."""
    from skiff.content.local import LocalStore
    from skiff.metadata import gc
    from skiff.metadata.db import MetadataStore
    from skiff.snapshots.overlay import OverlaySnapshotter

    meta = MetadataStore(daemon.data_root / "metadata.db")
    snapshotter = OverlaySnapshotter(daemon.data_root / "snapshots")
    try:
        done = gc.collect(meta, LocalStore(daemon.data_root / "content"), snapshotter)
    finally:
        snapshotter.close()
        meta.close()
    return done.blobs, done.snapshots


@pytest.mark.parametrize("phase", ["download", "unpack"])
def test_sigkill_mid_pull_leaves_a_consistent_store_and_the_next_pull_completes(
    skiffd: Skiffd, big_image: tuple[str, str, list[str]], phase: str
) -> None:
    ref, digest, diff_ids = big_image
    reached = _downloading if phase == "download" else _unpacking
    pull = skiffd.popen_docker("pull", ref)
    try:
        deadline = time.monotonic() + 120
        while not reached(skiffd):
            assert pull.poll() is None, f"the pull ended before the {phase} phase was seen"
            assert time.monotonic() < deadline, f"no {phase} phase seen"
            time.sleep(0.005)
        skiffd.kill()
    finally:
        _, err = pull.communicate(timeout=60)
    assert pull.returncode == 1, err
    if phase == "download":
        assert _ingest_bytes(skiffd) > 4 << 20  # kept for the next pull to continue
    assert _bad_blobs(skiffd) == []

    skiffd.start()
    assert _ok(skiffd.docker("images", "-a", "-q")) == ""
    assert skiffd.docker("image", "inspect", ref).returncode == 1
    skiffd.stop()
    assert _bad_blobs(skiffd) == []
    assert _snapshot_folders(skiffd) == []  # no half-unpacked layer left behind
    assert _unreferenced(skiffd) == ([], [])

    skiffd.start()
    pulled = skiffd.docker("pull", ref)
    assert pulled.returncode == 0, pulled.stderr + skiffd.log_tail()
    assert f"Digest: {digest}" in pulled.stdout
    _, layers, repo_digests = _identity(skiffd.docker, ref)
    assert layers == diff_ids
    assert repo_digests == [f"{ref.rsplit(':', 1)[0]}@{digest}"]
    assert _ingest_bytes(skiffd) == 0
    assert not list((skiffd.data_root / "content" / "ingest").iterdir())
    assert _bad_blobs(skiffd) == []


# -- 3. errors from a real registry -----------------------------------------------------


def _failed_pull(skiffd: Skiffd, ref: str) -> str:
    proc = skiffd.docker("pull", ref, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.startswith("Error response from daemon: "), proc.stderr
    assert ref in proc.stderr  # the message names the image
    assert _ok(skiffd.docker("version", "--format", "{{.Server.Version}}")).strip()  # still up
    return proc.stderr


def test_registry_errors_name_the_image_and_the_cause(
    skiffd: Skiffd, registry: DistributionRegistry, base: Path
) -> None:
    _ok(_bootstrap(skiffd))
    repo = f"{registry.host}/errors/busybox"
    _ok(skiffd.docker("tag", "busybox", f"{repo}:1"))
    _ok(skiffd.docker("push", f"{repo}:1"))

    # distribution answers MANIFEST_UNKNOWN for a repository it does not know too;
    # dockerd words both as skiffd does
    unknown_repo = _failed_pull(skiffd, f"{registry.host}/no/such:1")
    assert "not found: manifest unknown" in unknown_repo, unknown_repo
    unknown_tag = _failed_pull(skiffd, f"{repo}:nope")
    assert "not found: manifest unknown" in unknown_tag, unknown_tag
    missing = f"{repo}@sha256:{'0' * 64}"
    assert "not found" in _failed_pull(skiffd, missing)

    with DistributionRegistry(base / "authreg", users={"alice": "s3cret"}) as auth:
        _ok(skiffd.docker("tag", "busybox", f"{auth.host}/private/busybox:1"))
        denied = _failed_pull(skiffd, f"{auth.host}/private/busybox:1")
        assert "docker login" in denied, denied
        assert "unauthorized" in denied.lower(), denied
        pushed = skiffd.docker("push", f"{auth.host}/private/busybox:1")
        assert pushed.returncode == 1
        assert "unauthorized" in (pushed.stdout + pushed.stderr).lower(), pushed

    port = free_port()  # nothing listens there
    started = time.monotonic()
    down = _failed_pull(skiffd, f"127.0.0.1:{port}/gone/busybox:1")
    assert "connection refused" in down.lower(), down
    assert time.monotonic() - started < 30
    assert skiffd.docker("images", "-q", f"127.0.0.1:{port}/gone/busybox").stdout == ""
    _ok(skiffd.docker("tag", "busybox", f"127.0.0.1:{port}/gone/busybox:1"))
    pushed = skiffd.docker("push", f"127.0.0.1:{port}/gone/busybox:1")
    assert pushed.returncode == 1
    assert "connection refused" in (pushed.stdout + pushed.stderr).lower(), pushed
    # and after all that, skiffd still pulls
    _ok(skiffd.docker("rmi", f"{repo}:1"))
    _ok(skiffd.docker("pull", f"{repo}:1"))
