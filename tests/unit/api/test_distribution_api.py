"""Pull, push and login through the API with the Docker SDK's low-level client."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from skiff.api.distribution import DistributionApi
from skiff.api.registry import Route
from skiff.content.local import LocalStore
from skiff.images.service import ImageService
from skiff.metadata.db import MetadataStore
from skiff.services.distribution import DistributionService
from skiff.testing.apiserver import serve_api
from skiff.testing.registry import FakeRegistry
from skiff.testing.snapshots import MemorySnapshotter
from tests.unit.distribution.conftest import layer


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[docker.APIClient, ImageService, FakeRegistry]]:
    images = ImageService(
        LocalStore(tmp_path / "content"),
        MemorySnapshotter(tmp_path / "snapshots"),
        MetadataStore(tmp_path / "metadata.db"),
    )
    api = DistributionApi(DistributionService(images, retries=0))
    routes = [*api.routes(), Route("POST", "/images/create", api.pull)]
    sock = str(tmp_path / "api.sock")
    with FakeRegistry(auth="basic", users={"alice": "pw"}) as reg, serve_api(sock, routes):
        client = docker.APIClient(base_url=f"unix://{sock}", version="1.44")
        yield client, images, reg
        client.close()
    images.close()


def test_pull_push_and_login_with_the_docker_sdk(
    setup: tuple[docker.APIClient, ImageService, FakeRegistry],
) -> None:
    client, images, reg = setup
    layers = [layer({f"f{i}": os.urandom(50_000)}) for i in range(2)]
    manifest, _ = reg.add_image(
        "app", "v1", [la for la, _ in layers], diff_ids=[d for _, d in layers]
    )
    auth = {"username": "alice", "password": "pw"}
    with pytest.raises(docker.errors.APIError) as e:
        list(client.pull(f"{reg.host}/app", "v1", stream=True, decode=True))
    # dockerd's status: a 401 would make the docker CLI prompt for a login
    assert e.value.status_code == 500
    assert "docker login" in str(e.value.explanation)
    events = list(client.pull(f"{reg.host}/app", "v1", stream=True, decode=True, auth_config=auth))
    statuses = [e.get("status") for e in events]
    assert statuses[0] == "Pulling from app"
    assert statuses.count("Pull complete") == 2
    assert statuses[-1] == f"Status: Downloaded newer image for {reg.host}/app:v1"
    assert images.get(f"{reg.host}/app:v1").manifest_digest == manifest

    images.tag(f"{reg.host}/app:v1", f"{reg.host}/other", "v2")
    events = list(
        client.push(f"{reg.host}/other", "v2", stream=True, decode=True, auth_config=auth)
    )
    assert events[-1]["aux"]["Digest"] == manifest
    assert reg.tags[("other", "v2")] == manifest

    assert client.login("alice", "pw", registry=reg.host)["Status"] == "Login Succeeded"
    with pytest.raises(docker.errors.APIError) as e:
        client.login("alice", "nope", registry=reg.host, reauth=True)
    assert e.value.status_code == 401


def test_unknown_image_is_a_404_before_the_stream(
    setup: tuple[docker.APIClient, ImageService, FakeRegistry],
) -> None:
    client, _, reg = setup
    auth = {"username": "alice", "password": "pw"}
    with pytest.raises(docker.errors.APIError) as e:
        list(client.pull(f"{reg.host}/nope", "v1", stream=True, decode=True, auth_config=auth))
    assert e.value.status_code == 404
    assert "manifest for" in str(e.value)
    assert "not found" in str(e.value)
