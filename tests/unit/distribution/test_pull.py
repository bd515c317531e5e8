from __future__ import annotations

import json
import os

import pytest

from skiff.content.local import LocalStore
from skiff.distribution.client import INGEST_PREFIX, RegistryClient
from skiff.distribution.errors import (
    ManifestTooLarge,
    ManifestUnknown,
    RegistryUnauthorized,
    RegistryUnavailable,
    RepositoryUnknown,
    UnsupportedMediaType,
    VerificationFailed,
)
from skiff.distribution.manifests import NoMatchingPlatform
from skiff.distribution.progress import ProgressEvent
from skiff.distribution.pull import Puller
from skiff.errors import Forbidden, NotFound, Unauthorized, Unavailable
from skiff.oci.digest import Digest
from skiff.oci.platform import Platform
from skiff.oci.reference import parse_familiar
from skiff.testing.registry import OCI_INDEX, OCI_MANIFEST, FakeRegistry, Fault, digest_of
from tests.unit.distribution.conftest import layer


def _client(retries: int = 0) -> RegistryClient:
    return RegistryClient(retries=retries, backoff=0.01)


def _image(reg: FakeRegistry, repo: str = "app", tag: str = "v1", n: int = 3) -> list[bytes]:
    layers = [layer({f"f{i}": os.urandom(200_000)}) for i in range(n)]
    reg.add_image(repo, tag, [la for la, _ in layers], diff_ids=[d for _, d in layers])
    return [la for la, _ in layers]


def test_pull_stores_manifest_config_and_layers_with_docker_progress(
    registry: FakeRegistry, store: LocalStore
) -> None:
    blobs = _image(registry)
    events: list[ProgressEvent] = []
    order: list[int] = []
    result = Puller(_client(), store, progress=events.append).pull(
        parse_familiar(f"{registry.host}/app:v1"), on_layer=lambda i, d: order.append(i)
    )
    assert order == [0, 1, 2]
    assert result.top == result.manifest
    assert result.downloaded == 4
    for data in blobs:
        assert store.info(Digest.parse(digest_of(data))).size == len(data)
    assert store.info(result.manifest.digest).size == result.manifest.size
    assert store.info(result.config.digest)
    statuses = [e.to_json() for e in events]
    assert statuses[0] == {"status": "Pulling from app", "id": "v1"}
    assert {
        "status": "Pulling fs layer",
        "progressDetail": {},
        "id": digest_of(blobs[0])[7:19],
    } in statuses
    assert any(
        s["status"] == "Downloading" and s["progressDetail"]["total"] == len(blobs[0])
        for s in statuses
    )
    assert sum(s["status"] == "Download complete" for s in statuses) == 3
    assert statuses[-1] == {"status": f"Digest: {result.top.digest}"}
    assert store.statuses() == []


def test_second_pull_says_already_exists_and_downloads_nothing(
    registry: FakeRegistry, store: LocalStore
) -> None:
    _image(registry)
    ref = parse_familiar(f"{registry.host}/app:v1")
    Puller(_client(), store).pull(ref)
    before = len(registry.requests_for("GET", "/blobs/"))
    events: list[ProgressEvent] = []
    result = Puller(_client(), store, progress=events.append).pull(ref)
    assert result.downloaded == 0
    assert len(registry.requests_for("GET", "/blobs/")) == before
    assert sum(e.status == "Already exists" for e in events) == 3


def test_platform_is_selected_from_an_index(registry: FakeRegistry, store: LocalStore) -> None:
    arm_layer, arm_diff = layer({"arm": b"arm"})
    amd_layer, amd_diff = layer({"amd": b"amd"})
    arm_digest, arm_data = registry.add_image("multi", "arm-only", [arm_layer], diff_ids=[arm_diff])
    amd_digest, amd_data = registry.add_image("multi", "amd-only", [amd_layer], diff_ids=[amd_diff])
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": arm_digest, "size": len(arm_data),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": OCI_MANIFEST, "digest": amd_digest, "size": len(amd_data),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": amd_digest, "size": len(amd_data),
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ],
    }  # fmt: skip
    index_digest = registry.put_manifest("multi", "latest", OCI_INDEX, json.dumps(index).encode())
    ref = parse_familiar(f"{registry.host}/multi")
    amd = Puller(_client(), store).pull(ref)
    assert str(amd.top.digest) == index_digest
    assert str(amd.manifest.digest) == amd_digest
    arm = Puller(_client(), store, platform=Platform("linux", "arm64")).pull(ref)
    assert str(arm.manifest.digest) == arm_digest
    with pytest.raises(NoMatchingPlatform, match="linux/s390x"):
        Puller(_client(), store, platform=Platform("linux", "s390x")).pull(ref)


def test_pull_by_digest_verifies_the_manifest(registry: FakeRegistry, store: LocalStore) -> None:
    _image(registry)
    digest = registry.tags[("app", "v1")]
    result = Puller(_client(), store).pull(parse_familiar(f"{registry.host}/app@{digest}"))
    assert str(result.top.digest) == digest
    registry.faults.append(Fault("GET", "/manifests/", corrupt=True))
    store2 = LocalStore(store.root.parent / "other")
    with pytest.raises(VerificationFailed, match="manifest verification failed"):
        Puller(_client(), store2).pull(parse_familiar(f"{registry.host}/app@{digest}"))


def test_truncated_blob_is_resumed_with_range_by_the_next_pull(
    registry: FakeRegistry, store: LocalStore
) -> None:
    blobs = _image(registry, n=1)
    registry.faults.append(Fault("GET", "/blobs/" + digest_of(blobs[0]), truncate_after=50_000))
    ref = parse_familiar(f"{registry.host}/app:v1")
    with pytest.raises(RegistryUnavailable, match=r"truncated|connection closed"):
        Puller(_client(retries=0), store).pull(ref)
    [status] = [s for s in store.statuses() if s.ref.startswith(INGEST_PREFIX)]
    assert status.offset == 50_000
    with pytest.raises(NotFound):
        store.info(Digest.parse(digest_of(blobs[0])))
    Puller(_client(), store).pull(ref)
    assert store.info(Digest.parse(digest_of(blobs[0]))).size == len(blobs[0])
    ranged = [r for r in registry.requests_for("GET", "/blobs/") if "Range" in r.headers]
    assert [r.headers["Range"] for r in ranged] == ["bytes=50000-"]
    assert store.statuses() == []


def test_truncation_is_retried_within_one_pull(registry: FakeRegistry, store: LocalStore) -> None:
    blobs = _image(registry, n=1)
    registry.faults.append(Fault("GET", "/blobs/" + digest_of(blobs[0]), truncate_after=1000))
    Puller(_client(retries=2), store).pull(parse_familiar(f"{registry.host}/app:v1"))
    assert store.info(Digest.parse(digest_of(blobs[0]))).size == len(blobs[0])


def test_resume_against_a_registry_that_ignores_range(store: LocalStore) -> None:
    with FakeRegistry(ignore_range=True) as reg:
        blobs = _image(reg, n=1)
        reg.faults.append(Fault("GET", "/blobs/" + digest_of(blobs[0]), truncate_after=70_000))
        ref = parse_familiar(f"{reg.host}/app:v1")
        with pytest.raises(RegistryUnavailable):
            Puller(_client(), store).pull(ref)
        Puller(_client(), store).pull(ref)
        assert store.info(Digest.parse(digest_of(blobs[0]))).size == len(blobs[0])


def test_wrong_digest_stores_nothing_and_a_retry_succeeds(
    registry: FakeRegistry, store: LocalStore
) -> None:
    blobs = _image(registry, n=2)
    registry.faults.append(Fault("GET", "/blobs/" + digest_of(blobs[1]), corrupt=True))
    ref = parse_familiar(f"{registry.host}/app:v1")
    with pytest.raises(VerificationFailed, match=rf"{digest_of(blobs[1])}.*app"):
        Puller(_client(), store).pull(ref)
    with pytest.raises(NotFound):
        store.info(Digest.parse(digest_of(blobs[1])))
    assert store.statuses() == []
    Puller(_client(), store).pull(ref)
    assert store.info(Digest.parse(digest_of(blobs[1])))


def test_a_blob_longer_than_its_descriptor_is_refused(
    registry: FakeRegistry, store: LocalStore
) -> None:
    blobs = _image(registry, n=1)
    registry.blobs[digest_of(blobs[0])] = blobs[0] + b"extra"
    with pytest.raises(VerificationFailed):
        Puller(_client(), store).pull(parse_familiar(f"{registry.host}/app:v1"))
    assert store.statuses() == []


def test_oversized_manifest_is_refused(registry: FakeRegistry, store: LocalStore) -> None:
    big = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "pad": "x" * (4 << 20)})
    registry.put_manifest("big", "latest", OCI_MANIFEST, big.encode())
    with pytest.raises(ManifestTooLarge, match="big:latest"):
        Puller(_client(), store).pull(parse_familiar(f"{registry.host}/big"))


def test_unknown_media_types_are_refused_clearly(registry: FakeRegistry, store: LocalStore) -> None:
    registry.put_manifest("odd", "v1", "application/vnd.example+json", b'{"schemaVersion": 2}')
    with pytest.raises(UnsupportedMediaType, match=r"odd:v1.*application/vnd.example"):
        Puller(_client(), store).pull(parse_familiar(f"{registry.host}/odd:v1"))
    data, _ = layer({"a": b"a"})
    registry.add_image("helm", "v1", [data], layer_media_type="application/vnd.cncf.helm.chart")
    with pytest.raises(UnsupportedMediaType, match="unsupported layer media type"):
        Puller(_client(), store).pull(parse_familiar(f"{registry.host}/helm:v1"))


@pytest.mark.parametrize(
    ("status", "code", "category", "text"),
    [
        (404, "MANIFEST_UNKNOWN", ManifestUnknown, "manifest for .*/app:v1 not found: manifest unknown"),
        (404, "NAME_UNKNOWN", RepositoryUnknown, "repository for .*/app:v1 not found"),
        (401, "UNAUTHORIZED", Unauthorized, "pull access denied for .*/app"),
        (403, "DENIED", Forbidden, "pull access denied for .*/app"),
        (429, "TOOMANYREQUESTS", Unavailable, "app:v1: toomanyrequests"),
        (500, "UNKNOWN", Unavailable, "app:v1: unknown: injected 500"),
    ],
)  # fmt: skip
def test_registry_errors_name_the_image_and_the_cause(
    registry: FakeRegistry, store: LocalStore, status: int, code: str, category: type, text: str
) -> None:
    _image(registry)
    registry.faults.append(Fault("GET", "/manifests/", status=status, code=code, times=10))
    with pytest.raises(category, match=text):
        Puller(_client(retries=1), store).pull(parse_familiar(f"{registry.host}/app:v1"))


def test_429_and_500_are_retried(registry: FakeRegistry, store: LocalStore) -> None:
    _image(registry, n=1)
    registry.faults.append(Fault("GET", "/manifests/", status=429, headers={"Retry-After": "0"}))
    registry.faults.append(Fault("GET", "/blobs/", status=500))
    Puller(_client(retries=2), store).pull(parse_familiar(f"{registry.host}/app:v1"))


def test_a_closed_port_is_unavailable(store: LocalStore) -> None:
    reg = FakeRegistry().start()
    host = reg.host
    reg.stop()
    with pytest.raises(Unavailable, match=f"manifest for {host}/app:v1: .*unreachable") as e:
        Puller(_client(), store).pull(parse_familiar(f"{host}/app:v1"))
    assert "connection refused" in str(e.value).lower()


def test_bearer_auth_anonymous_pull_with_token_cached_per_scope(store: LocalStore) -> None:
    with FakeRegistry(auth="bearer") as reg:
        _image(reg, n=3)
        Puller(_client(), store).pull(parse_familiar(f"{reg.host}/app:v1"))
        assert [q["scope"] for q in reg.token_requests] == [["repository:app:pull"]]
        assert all(
            r.headers.get("Authorization", "").startswith("Bearer ")
            for r in reg.requests_for("GET", "/blobs/")
        )


def test_bearer_auth_private_repo_needs_credentials(store: LocalStore) -> None:
    from skiff.distribution.credentials import Credentials, StaticCredentials

    with FakeRegistry(auth="bearer", users={"alice": "pw"}, anonymous_pull=False) as reg:
        _image(reg, n=1)
        ref = parse_familiar(f"{reg.host}/app:v1")
        with pytest.raises(RegistryUnauthorized, match=r"pull access denied for .*app"):
            Puller(_client(), store).pull(ref)
        creds = StaticCredentials(Credentials("alice", "pw"))
        Puller(RegistryClient(creds), store).pull(ref)
        bad = StaticCredentials(Credentials("alice", "nope"))
        with pytest.raises(RegistryUnauthorized, match="app"):
            Puller(RegistryClient(bad), LocalStore(store.root.parent / "b")).pull(ref)


def test_basic_auth(store: LocalStore) -> None:
    from skiff.distribution.credentials import Credentials, StaticCredentials

    with FakeRegistry(auth="basic", users={"bob": "pw"}) as reg:
        _image(reg, n=1)
        ref = parse_familiar(f"{reg.host}/app:v1")
        with pytest.raises(RegistryUnauthorized):
            Puller(_client(), store).pull(ref)
        creds = StaticCredentials(Credentials("bob", "pw"), server=reg.host)
        Puller(RegistryClient(creds), store).pull(ref)
        assert reg.requests_for("GET", "/blobs/")[0].headers["Authorization"].startswith("Basic ")
