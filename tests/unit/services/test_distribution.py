from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.content.local import LocalStore
from skiff.distribution.errors import RegistryUnauthorized, RegistryUnavailable
from skiff.distribution.progress import ProgressEvent
from skiff.images.service import ImageService
from skiff.metadata.db import MetadataStore
from skiff.services.distribution import DistributionService
from skiff.testing.registry import FakeRegistry, Fault, digest_of
from skiff.testing.snapshots import MemorySnapshotter
from tests.unit.distribution.conftest import layer


@pytest.fixture
def images(tmp_path: Path) -> Iterator[ImageService]:
    svc = ImageService(
        LocalStore(tmp_path / "content"),
        MemorySnapshotter(tmp_path / "snapshots"),
        MetadataStore(tmp_path / "metadata.db"),
    )
    yield svc
    svc.close()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with FakeRegistry() as reg:
        yield reg


def _publish(reg: FakeRegistry, repo: str = "app", tag: str = "v1", n: int = 3) -> list[bytes]:
    layers = [layer({f"file{i}": os.urandom(100_000)}) for i in range(n)]
    reg.add_image(repo, tag, [la for la, _ in layers], diff_ids=[d for _, d in layers])
    return [la for la, _ in layers]


def test_pull_records_the_image_with_tag_and_repo_digest(
    images: ImageService, registry: FakeRegistry
) -> None:
    _publish(registry)
    svc = DistributionService(images, retries=0)
    events: list[ProgressEvent] = []
    image = svc.pull(f"{registry.host}/app", "v1", progress=events.append)
    manifest = registry.tags[("app", "v1")]
    assert image.repo_tags == [f"{registry.host}/app:v1"]
    assert image.repo_digests == [f"{registry.host}/app@{manifest}"]
    assert image.manifest_digest == manifest
    assert images.snapshotter.stat(image.chain_id)
    statuses = [e.status for e in events]
    assert statuses.count("Pull complete") == 3
    assert "Extracting" in statuses
    assert statuses[-1] == f"Status: Downloaded newer image for {registry.host}/app:v1"
    assert statuses[-2] == f"Digest: {manifest}"
    events.clear()
    svc.pull(f"{registry.host}/app:v1", progress=events.append)
    assert events[-1].status == f"Status: Image is up to date for {registry.host}/app:v1"
    assert [e.status for e in events].count("Already exists") == 3
    assert images.meta.live_leases() == []


def test_pull_by_digest_records_only_the_digest(
    images: ImageService, registry: FakeRegistry
) -> None:
    _publish(registry)
    manifest = registry.tags[("app", "v1")]
    image = DistributionService(images).pull(f"{registry.host}/app@{manifest}")
    assert image.repo_tags == []
    assert image.repo_digests == [f"{registry.host}/app@{manifest}"]


def test_failed_pull_keeps_completed_layers_for_the_retry(
    images: ImageService, registry: FakeRegistry
) -> None:
    blobs = _publish(registry, n=2)
    registry.faults.append(Fault("GET", "/blobs/" + digest_of(blobs[1]), status=503, times=5))
    svc = DistributionService(images, retries=0, max_concurrent_downloads=1)
    with pytest.raises(RegistryUnavailable, match="app"):
        svc.pull(f"{registry.host}/app:v1")
    images.gc()  # a collection in between: the lease keeps the completed layer
    before = len(registry.requests_for("GET", "/blobs/" + digest_of(blobs[0])))
    registry.faults.clear()
    svc.pull(f"{registry.host}/app:v1")
    assert len(registry.requests_for("GET", "/blobs/" + digest_of(blobs[0]))) == before


def test_push_records_the_repo_digest_and_mounts_from_a_sibling(
    images: ImageService, registry: FakeRegistry
) -> None:
    _publish(registry)
    svc = DistributionService(images)
    image = svc.pull(f"{registry.host}/app:v1")
    images.tag(image.id, f"{registry.host}/copy", "v9")
    events: list[ProgressEvent] = []
    [result] = svc.push(f"{registry.host}/copy:v9", progress=events.append)
    assert result.digest == image.manifest_digest
    assert [e.status for e in events].count("Mounted from app") == 3
    assert events[-2].status == f"v9: digest: {result.digest} size: {result.size}"
    assert f"{registry.host}/copy@{result.digest}" in images.get(image.id).repo_digests


def test_push_without_a_tag_pushes_every_tag(images: ImageService, registry: FakeRegistry) -> None:
    _publish(registry)
    svc = DistributionService(images)
    image = svc.pull(f"{registry.host}/app:v1")
    images.tag(image.id, f"{registry.host}/app", "v2")
    results = svc.push(f"{registry.host}/app")
    assert sorted(r.tag for r in results) == ["v1", "v2"]
    assert registry.tags[("app", "v2")] == image.manifest_digest


def test_push_of_a_missing_image_is_not_found(images: ImageService, registry: FakeRegistry) -> None:
    from skiff.errors import NotFound

    with pytest.raises(NotFound, match="An image does not exist locally with the tag"):
        DistributionService(images).push(f"{registry.host}/nope:v1")


def test_login_and_logout(images: ImageService, tmp_path: Path) -> None:
    config = tmp_path / "docker" / "config.json"
    with FakeRegistry(auth="bearer", users={"alice": "pw"}) as reg:
        svc = DistributionService(images)
        with pytest.raises(RegistryUnauthorized):
            svc.login(reg.host, "alice", "wrong", config)
        assert not config.exists()
        assert svc.login(reg.host, "alice", "pw", config) == "Login Succeeded"
        assert reg.host in json.loads(config.read_text())["auths"]
        assert svc.logout(reg.host, config)
        assert reg.host not in json.loads(config.read_text())["auths"]
    with FakeRegistry(auth="basic", users={"bob": "pw"}) as reg:
        with pytest.raises(RegistryUnauthorized):
            svc.check_login(reg.host, "bob", "nope")
        assert svc.check_login(reg.host, "bob", "pw") == "Login Succeeded"
