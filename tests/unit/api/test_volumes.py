"""The volume routes over a real VolumeService on a temporary root, driven by skiff's
client and the Docker SDK for Python."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from skiff.api.volumes import VolumesApi
from skiff.client import ApiError
from skiff.client.extras import Extras
from skiff.services.events import EventBus
from skiff.services.volumes import VolumeService
from skiff.testing.apiserver import ApiServer, serve_api


@pytest.fixture
def users() -> dict[str, list[str]]:
    return {}


@pytest.fixture
def volumes(tmp_path: Path, users: dict[str, list[str]]) -> VolumeService:
    svc = VolumeService(tmp_path / "volumes")
    svc.set_in_use(lambda: users)
    return svc


@pytest.fixture
def server(tmp_path: Path, volumes: VolumeService) -> Iterator[ApiServer]:
    events = EventBus()
    api = VolumesApi(volumes, events)
    with serve_api(str(tmp_path / "api.sock"), api.routes(), events) as srv:
        srv.registry.add_disk_usage_provider(api)
        yield srv


def test_wire_shapes(server: ApiServer, volumes: VolumeService) -> None:
    extras = Extras(server.client())
    created = extras.create_volume("data", labels={"k": "v"})
    assert created == {
        "CreatedAt": created["CreatedAt"],
        "Driver": "local",
        "Labels": {"k": "v"},
        "Mountpoint": volumes.get("data").mountpoint,
        "Name": "data",
        "Options": None,
        "Scope": "local",
    }
    assert extras.inspect_volume("data") == created
    assert extras.volumes() == [created]
    assert extras.volumes({"label": ["k=nope"]}) == []
    df = server.client().disk_usage(["volume"])
    assert df["Volumes"][0]["UsageData"] == {"Size": 0, "RefCount": 0}


def test_errors(server: ApiServer, users: dict[str, list[str]]) -> None:
    extras = Extras(server.client())
    with pytest.raises(ApiError) as exc:
        extras.inspect_volume("nope")
    assert exc.value.status == 404
    assert exc.value.message == "get nope: no such volume"
    with pytest.raises(ApiError) as exc:
        extras.create_volume("x")
    assert exc.value.status == 400
    extras.create_volume("busy")
    users["busy"] = ["abc"]
    with pytest.raises(ApiError) as exc:
        extras.remove_volume("busy", force=True)
    assert exc.value.status == 409
    assert "volume is in use" in exc.value.message


def test_docker_sdk(server: ApiServer) -> None:
    sdk = docker.DockerClient(base_url=f"unix://{server.path}", version="1.44")
    try:
        v = sdk.volumes.create("sdkvol", labels={"a": "1"})
        assert v.name == "sdkvol"
        assert v.attrs["Labels"] == {"a": "1"}
        assert [x.name for x in sdk.volumes.list()] == ["sdkvol"]
        assert sdk.volumes.get("sdkvol").id == "sdkvol"
        anon = sdk.volumes.create()
        report = sdk.volumes.prune()
        assert report["VolumesDeleted"] == [anon.name]
        v.remove()
        assert sdk.volumes.list() == []
    finally:
        sdk.close()
