from __future__ import annotations

import json
import os

import pytest

from skiff.content.local import LocalStore
from skiff.content.types import write_blob
from skiff.distribution.client import RegistryClient
from skiff.distribution.credentials import Credentials, StaticCredentials
from skiff.distribution.errors import RegistryUnauthorized
from skiff.distribution.progress import ProgressEvent
from skiff.distribution.pull import Puller
from skiff.distribution.push import Pusher
from skiff.oci import mediatypes as mt
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest
from skiff.oci.reference import parse_familiar
from skiff.testing.registry import FakeRegistry
from tests.unit.distribution.conftest import layer


def _local_image(store: LocalStore, n: int = 2, size: int = 300_000) -> Descriptor:
    layers = [layer({f"f{i}": os.urandom(size)}) for i in range(n)]
    descs = []
    for data, _ in layers:
        d = Digest.from_bytes(data)
        write_blob(store, "t", [data], d, len(data))
        descs.append(Descriptor(mt.OCI_LAYER_GZIP, d, len(data)))
    cfg = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [x for _, x in layers]},
        }
    ).encode()
    cfg_d = Digest.from_bytes(cfg)
    write_blob(store, "t", [cfg], cfg_d, len(cfg))
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": Descriptor(mt.OCI_CONFIG, cfg_d, len(cfg)).to_json(),
            "layers": [d.to_json() for d in descs],
        }
    ).encode()
    md = Digest.from_bytes(manifest)
    write_blob(store, "t", [manifest], md, len(manifest))
    return Descriptor(mt.OCI_MANIFEST, md, len(manifest))


def test_push_then_pull_round_trip_with_docker_progress(
    registry: FakeRegistry, store: LocalStore, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    top = _local_image(store)
    events: list[ProgressEvent] = []
    target = parse_familiar(f"{registry.host}/team/app:v2")
    Pusher(RegistryClient(), store, progress=events.append).push(target, top)
    assert registry.tags[("team/app", "v2")] == str(top.digest)
    lines = [e.to_json() for e in events]
    assert lines[0] == {"status": f"The push refers to repository [{registry.host}/team/app]"}
    assert sum(line.get("status") == "Pushed" for line in lines) == 2
    assert sum(line.get("status") == "Preparing" for line in lines) == 2
    assert lines[-2] == {"status": f"v2: digest: {top.digest} size: {top.size}"}
    assert lines[-1]["aux"] == {"Tag": "v2", "Digest": str(top.digest), "Size": top.size}
    fresh = LocalStore(tmp_path / "fresh")
    result = Puller(RegistryClient(), fresh).pull(target)
    assert result.top.digest == top.digest


def test_second_push_skips_existing_layers(registry: FakeRegistry, store: LocalStore) -> None:
    top = _local_image(store)
    target = parse_familiar(f"{registry.host}/app:v1")
    Pusher(RegistryClient(), store).push(target, top)
    events: list[ProgressEvent] = []
    Pusher(RegistryClient(), store, progress=events.append).push(target, top)
    assert sum(e.status == "Layer already exists" for e in events) == 2
    assert registry.requests_for("PUT", "/blobs/uploads/").__len__() == 3  # 2 layers + config once


def test_cross_repository_mount(registry: FakeRegistry, store: LocalStore) -> None:
    top = _local_image(store)
    Pusher(RegistryClient(), store).push(parse_familiar(f"{registry.host}/base:v1"), top)
    events: list[ProgressEvent] = []
    Pusher(RegistryClient(), store, progress=events.append).push(
        parse_familiar(f"{registry.host}/derived:v1"), top, mount_sources=lambda d: ["base"]
    )
    assert sum(e.status == "Mounted from base" for e in events) == 2
    assert registry.requests_for("POST", r"mount=")
    assert len(registry.requests_for("PUT", "/blobs/uploads/")) == 3


def test_chunked_upload(registry: FakeRegistry, store: LocalStore) -> None:
    top = _local_image(store, n=1, size=500_000)
    Pusher(RegistryClient(), store, chunk_size=100_000).push(
        parse_familiar(f"{registry.host}/c:1"), top
    )
    patches = registry.requests_for("PATCH", "/blobs/uploads/")
    assert len(patches) >= 5
    assert patches[0].headers["Content-Range"] == "0-99999"
    assert registry.tags[("c", "1")] == str(top.digest)


def test_push_by_digest(registry: FakeRegistry, store: LocalStore) -> None:
    top = _local_image(store, n=1)
    Pusher(RegistryClient(), store).push(parse_familiar(f"{registry.host}/d@{top.digest}"), top)
    assert str(top.digest) in registry.manifests
    assert not [k for k in registry.tags if k[0] == "d"]


def test_push_needs_credentials_with_bearer(store: LocalStore) -> None:
    top = _local_image(store, n=1)
    with FakeRegistry(auth="bearer", users={"alice": "pw"}) as reg:
        target = parse_familiar(f"{reg.host}/app:v1")
        with pytest.raises(RegistryUnauthorized, match="app"):
            Pusher(RegistryClient(), store).push(target, top)
        client = RegistryClient(StaticCredentials(Credentials("alice", "pw")))
        Pusher(client, store).push(target, top)
        assert reg.tags[("app", "v1")] == str(top.digest)
        scopes = [q.get("scope") for q in reg.token_requests]
        assert ["repository:app:pull,push"] in scopes
