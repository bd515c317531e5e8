"""Pull and push against Debian's docker-registry (distribution 2.8), skopeo and a kill -9.

Each test starts its own registry on 127.0.0.1 (no auth, htpasswd basic auth, or a
token server for bearer auth) with storage under tmp, and stops it by PID.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.distribution.credentials import Credentials, StaticCredentials
from skiff.distribution.errors import RegistryUnauthorized
from skiff.distribution.progress import ProgressEvent
from skiff.images.service import ImageService
from skiff.services.distribution import DistributionService
from skiff.testing.realregistry import DistributionRegistry, available
from skiff.testing.tokenserver import TokenServer

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not available(), reason="docker-registry not installed"),
    pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox-static not installed"),
]
skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


@pytest.fixture
def source(tmp_path: Path) -> Iterator[ImageService]:
    svc = ImageService.open(tmp_path / "source")
    yield svc
    svc.close()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ImageService]:
    svc = ImageService.open(tmp_path / "fresh")
    yield svc
    svc.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DistributionRegistry]:
    with DistributionRegistry(tmp_path / "registry") as reg:
        yield reg


def _skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, check=True).stdout


def _run_in(images: ImageService, chain_id: str, *argv: str) -> str:
    """Run a command in a single-layer image's unpacked tree (chroot): proof it runs."""
    [mount] = images.snapshotter.view("view-test", chain_id)
    try:
        out = subprocess.run(
            ["chroot", mount.source, *argv], capture_output=True, text=True, check=True
        )
        return out.stdout
    finally:
        images.snapshotter.remove("view-test")


def test_push_then_pull_into_a_fresh_root_and_run(
    source: ImageService, fresh: ImageService, registry: DistributionRegistry
) -> None:
    image = source.bootstrap_busybox("busybox:latest")
    ref = f"{registry.host}/tools/busybox:1"
    source.tag(image.id, f"{registry.host}/tools/busybox", "1")
    events: list[ProgressEvent] = []
    [pushed] = DistributionService(source).push(ref, progress=events.append)
    assert pushed.digest == image.manifest_digest
    assert [e.status for e in events].count("Pushed") == 1
    pulled = DistributionService(fresh).pull(ref)
    assert pulled.id == image.id
    assert pulled.manifest_digest == image.manifest_digest
    assert pulled.repo_digests == [f"{registry.host}/tools/busybox@{pushed.digest}"]
    assert _run_in(fresh, pulled.chain_id, "/bin/sh", "-c", "echo hello from $0") == (
        "hello from /bin/sh\n"
    )
    # pushing again: the registry has everything
    events.clear()
    DistributionService(source).push(ref, progress=events.append)
    assert [e.status for e in events].count("Layer already exists") == 1


def test_chunked_push_and_cross_repository_mount(
    source: ImageService, fresh: ImageService, registry: DistributionRegistry
) -> None:
    image = source.bootstrap_busybox(f"{registry.host}/a:1")
    svc = DistributionService(source, chunk_size=256 * 1024)
    svc.push(f"{registry.host}/a:1")
    source.tag(image.id, f"{registry.host}/b", "1")
    events: list[ProgressEvent] = []
    svc.push(f"{registry.host}/b:1", progress=events.append)
    assert [e.status for e in events].count("Mounted from a") == 1
    assert DistributionService(fresh).pull(f"{registry.host}/b:1").id == image.id


def test_basic_auth_with_htpasswd(
    tmp_path: Path, source: ImageService, fresh: ImageService
) -> None:
    image = source.bootstrap_busybox("busybox:latest")
    with DistributionRegistry(tmp_path / "reg", users={"alice": "s3cret"}) as reg:
        ref = f"{reg.host}/private/busybox:latest"
        source.tag(image.id, f"{reg.host}/private/busybox", "latest")
        with pytest.raises(RegistryUnauthorized):
            DistributionService(source).push(ref)
        config = tmp_path / "docker" / "config.json"
        with pytest.raises(RegistryUnauthorized):
            DistributionService(source).login(reg.host, "alice", "wrong", config)
        DistributionService(source).login(reg.host, "alice", "s3cret", config)
        from skiff.distribution.credentials import DockerConfig

        DistributionService(source, credentials=DockerConfig(config)).push(ref)
        with pytest.raises(RegistryUnauthorized, match="private/busybox"):
            DistributionService(fresh).pull(ref)
        creds = StaticCredentials(Credentials("alice", "s3cret"))
        assert DistributionService(fresh).pull(ref, credentials=creds).id == image.id


def test_bearer_token_auth(tmp_path: Path, source: ImageService, fresh: ImageService) -> None:
    image = source.bootstrap_busybox("busybox:latest")
    with (
        TokenServer(users={"alice": "pw"}) as tokens,
        DistributionRegistry(tmp_path / "reg", token=tokens) as reg,
    ):
        ref = f"{reg.host}/team/busybox:v1"
        source.tag(image.id, f"{reg.host}/team/busybox", "v1")
        with pytest.raises(RegistryUnauthorized):
            DistributionService(source).push(ref)
        alice = StaticCredentials(Credentials("alice", "pw"))
        DistributionService(source, credentials=alice).push(ref)
        assert any(
            "repository:team/busybox:pull,push" in q.get("scope", []) for q in tokens.requests
        )
        # anonymous pull is granted by the token server
        assert DistributionService(fresh).pull(ref).id == image.id
        assert DistributionService(fresh).check_login(reg.host, "alice", "pw") == "Login Succeeded"
        with pytest.raises(RegistryUnauthorized):
            DistributionService(fresh).check_login(reg.host, "alice", "nope")


@skopeo
@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_skopeo_pushes_and_skiff_pulls(
    tmp_path: Path, source: ImageService, fresh: ImageService, registry: DistributionRegistry,
    fmt: str,
) -> None:  # fmt: skip
    source.bootstrap_busybox("busybox:latest")
    layout = tmp_path / "layout"
    source.export_oci_layout("busybox:latest", layout)
    dest = f"docker://{registry.host}/sk/busybox:{fmt}"
    _skopeo("copy", "--dest-tls-verify=false", "--format", fmt, f"oci:{layout}:latest", dest)
    inspected = json.loads(_skopeo("inspect", "--tls-verify=false", dest))
    pulled = DistributionService(fresh).pull(f"{registry.host}/sk/busybox:{fmt}")
    assert pulled.repo_digests == [f"{registry.host}/sk/busybox@{inspected['Digest']}"]
    assert _run_in(fresh, pulled.chain_id, "/bin/busybox", "true") == ""


@skopeo
def test_skiff_pushes_and_skopeo_sees_the_same_digests(
    source: ImageService, registry: DistributionRegistry
) -> None:
    image = source.bootstrap_busybox(f"{registry.host}/x/y:z")
    [pushed] = DistributionService(source).push(f"{registry.host}/x/y:z")
    inspected = json.loads(
        _skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/x/y:z")
    )
    assert inspected["Digest"] == pushed.digest == image.manifest_digest
    raw = json.loads(
        _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/x/y:z")
    )
    assert [la["digest"] for la in raw["layers"]] == inspected["Layers"]
    config = json.loads(
        _skopeo("inspect", "--config", "--tls-verify=false", f"docker://{registry.host}/x/y:z")
    )
    assert config["rootfs"]["diff_ids"] == image.diff_ids


_CHILD = """
import sys, time
import skiff.distribution.pull as pull
from skiff.distribution.progress import Throttle
from skiff.images.service import ImageService
from skiff.services.distribution import DistributionService
pull.Throttle = lambda emit, interval=0.0: Throttle(emit, 0.0)
root, ref = sys.argv[1:3]
def progress(e):
    if e.status == "Downloading" and e.current and e.total and 8 << 20 < e.current < e.total:
        print("MID", flush=True)
        time.sleep(120)
DistributionService(ImageService.open(root), max_concurrent_downloads=1).pull(ref, progress=progress)
"""


def _random_rootfs_tar(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(os.urandom(size)))
    return buf.getvalue()


def test_sigkill_mid_download_leaves_a_consistent_store_and_the_next_pull_resumes(
    tmp_path: Path, source: ImageService, registry: DistributionRegistry
) -> None:
    ref = f"{registry.host}/big:1"
    image = source.import_rootfs(io.BytesIO(_random_rootfs_tar(48 << 20)), ref)
    DistributionService(source).push(ref)
    root = tmp_path / "victim"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(root), ref], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "MID"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    images = ImageService.open(root)  # sweeps what the dead pull's lease held
    try:
        assert images.list() == []
        partial = [s for s in images.store.statuses() if s.ref.startswith("pull-")]
        assert len(partial) == 1
        assert partial[0].offset > 8 << 20
        pulled = DistributionService(images).pull(ref)
        assert pulled.id == image.id
        assert images.store.statuses() == []
        assert pulled.manifest_digest == image.manifest_digest
    finally:
        images.close()
