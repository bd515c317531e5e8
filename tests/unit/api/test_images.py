"""The image routes over the in-memory backend, driven by skiff's client, raw HTTP and
the Docker SDK for Python."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from skiff.api.images import (
    ImagesApi,
    config_to_wire,
    familiar_match,
    layers_size,
    split_repo_tag,
)
from skiff.client import ApiError
from skiff.errors import InvalidArgument
from skiff.services.events import EventBus
from skiff.services.images import ImageConfig
from skiff.testing.apiserver import ApiServer, serve_api
from skiff.testing.images import FakeImageBackend


@pytest.fixture
def backend_events() -> list[str]:
    return []


@pytest.fixture
def backend(backend_events: list[str]) -> FakeImageBackend:
    return FakeImageBackend(on_event=lambda action, _id, _attrs: backend_events.append(action))


@pytest.fixture
def events() -> EventBus:
    return EventBus()


@pytest.fixture
def server(tmp_path: Path, backend: FakeImageBackend, events: EventBus) -> Iterator[ApiServer]:
    api = ImagesApi(backend, events)
    with serve_api(str(tmp_path / "api.sock"), api.routes(), events) as srv:
        srv.registry.add_disk_usage_provider(api)
        yield srv


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _raw(server: ApiServer, request: bytes) -> tuple[int, bytes]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(server.path)
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


# -- list -------------------------------------------------------------------------------


def test_list_wire_shape(server: ApiServer, backend: FakeImageBackend) -> None:
    image = backend.add("busybox", [b"x" * 100], labels={"a": "b"})
    [item] = server.client().images()
    assert item == {
        "Containers": -1,
        "Created": image.created_unix,
        "Id": image.id,
        "Labels": {"a": "b"},
        "ParentId": "",
        "RepoDigests": [],
        "RepoTags": ["busybox:latest"],
        "SharedSize": -1,
        "Size": 100,
    }


def test_list_before_1_44_has_virtual_size(server: ApiServer, backend: FakeImageBackend) -> None:
    backend.add("busybox", [b"x" * 7])
    response = server.client().request("GET", "/images/json")
    assert "VirtualSize" not in response.json()[0]
    status, body = _raw(
        server, b"GET /v1.41/images/json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    assert json.loads(body)[0]["VirtualSize"] == 7


def test_list_dangling_and_filters(server: ApiServer, backend: FakeImageBackend) -> None:
    old = backend.add("old:1", [b"1"], labels={"team": "a"})
    new = backend.add("new:1", [b"2"])
    untagged = backend.add(None, [b"3"])
    client = server.client()
    assert [i["Id"] for i in client.images()] == [untagged.id, new.id, old.id]  # newest first
    dangling = client.images(filters={"dangling": ["true"]})
    assert [(i["RepoTags"], i["RepoDigests"]) for i in dangling] == [
        (["<none>:<none>"], ["<none>@<none>"])
    ]
    assert [i["Id"] for i in client.images(filters={"label": ["team=a"]})] == [old.id]
    assert [i["Id"] for i in client.images(filters={"before": ["new:1"]})] == [old.id]
    assert [i["Id"] for i in client.images(filters={"since": ["old:1"]})] == [
        untagged.id,
        new.id,
    ]


def test_reference_filter_narrows_repo_tags(server: ApiServer, backend: FakeImageBackend) -> None:
    image = backend.add("pipe:1", [b"1"])
    backend.tag(image.id, "a/b", "c")
    [item] = server.client().images(filters={"reference": ["a/*"]})
    assert item["RepoTags"] == ["a/b:c"]


def test_bad_queries_are_400_in_dockers_words(server: ApiServer) -> None:
    client = server.client()
    with pytest.raises(ApiError) as exc:
        client.images(filters={"bogus": ["1"]})
    assert (exc.value.status, exc.value.message) == (400, "invalid filter 'bogus'")
    with pytest.raises(ApiError) as exc:
        client.images(filters={"dangling": ["maybe"]})
    assert exc.value.status == 400
    with pytest.raises(ApiError) as exc:
        client.request("GET", "/images/json", {"all": "perhaps"})
    assert exc.value.status == 400
    assert "strconv.ParseBool" in exc.value.message
    with pytest.raises(ApiError) as exc:
        client.request("GET", "/images/json", {"filters": "{bad"})
    assert exc.value.status == 400
    with pytest.raises(ApiError) as exc:
        client.prune_images({"before": ["x"]})
    assert exc.value.message == "invalid filter 'before'"


# -- inspect / history ------------------------------------------------------------------


def test_inspect_wire_shape(server: ApiServer, backend: FakeImageBackend) -> None:
    image = backend.add("busybox", [b"abc"], cmd=["sh"], env=["PATH=/bin"])
    wire = server.client().inspect_image("busybox")
    assert wire["Id"] == image.id
    assert wire["RepoTags"] == ["busybox:latest"]
    assert wire["Created"] == image.created
    assert wire["Config"]["Cmd"] == ["sh"]
    assert wire["Config"]["Env"] == ["PATH=/bin"]
    assert wire["Config"]["Hostname"] == ""
    assert wire["Config"]["Entrypoint"] is None
    assert wire["Os"] == "linux"
    assert wire["Architecture"] == "amd64"
    assert wire["Size"] == 3
    assert "VirtualSize" not in wire
    assert wire["GraphDriver"]["Name"] == "overlay2"
    assert wire["RootFS"] == {"Type": "layers", "Layers": image.diff_ids}
    assert wire["Metadata"]["LastTagTime"]
    # by id, short id and sha256: prefix
    for name in (image.id, image.short_id, "sha256:" + image.short_id):
        assert server.client().inspect_image(name)["Id"] == image.id


def test_inspect_missing_is_404(server: ApiServer) -> None:
    with pytest.raises(ApiError) as exc:
        server.client().inspect_image("nope")
    assert (exc.value.status, exc.value.message) == (404, "No such image: nope:latest")


def test_names_with_slashes_and_ports(server: ApiServer, backend: FakeImageBackend) -> None:
    image = backend.add("localhost:5000/team/app:v1", [b"1"])
    assert server.client().inspect_image("localhost:5000/team/app:v1")["Id"] == image.id
    assert server.client().image_history("localhost:5000/team/app:v1")[0]["Id"] == image.id


def test_config_omits_unset_optional_fields() -> None:
    wire = config_to_wire(ImageConfig())
    for key in ("ExposedPorts", "Healthcheck", "ArgsEscaped", "StopSignal", "Shell"):
        assert key not in wire
    assert wire["Env"] is None
    assert wire["Volumes"] is None
    full = config_to_wire(
        ImageConfig(exposed_ports={"80/tcp": {}}, stop_signal="SIGTERM", shell=["/bin/sh"])
    )
    assert full["ExposedPorts"] == {"80/tcp": {}}
    assert full["StopSignal"] == "SIGTERM"


def test_history(server: ApiServer, backend: FakeImageBackend) -> None:
    base = backend.add("base", [b"12345"], comment="Imported from -")
    child = backend.add("child", [b"12345", b"67"], parent=base.id)
    history = server.client().image_history("child")
    assert [h["Id"] for h in history] == [child.id, base.id]
    assert history[0]["Tags"] == ["child:latest"]
    assert history[1]["Comment"] == "Imported from -"
    assert set(history[0]) == {"Comment", "Created", "CreatedBy", "Id", "Size", "Tags"}


# -- tag / remove -----------------------------------------------------------------------


def test_tag_then_remove(
    server: ApiServer, backend: FakeImageBackend, backend_events: list[str]
) -> None:
    image = backend.add("busybox", [b"1"])
    client = server.client()
    response = client.request("POST", "/images/busybox/tag", {"repo": "mine", "tag": "v1"})
    assert response.status == 201
    assert response.body == b""
    client.tag_image("busybox", "other:v2")  # a tag inside repo counts
    assert client.inspect_image("busybox")["RepoTags"] == [
        "busybox:latest",
        "mine:v1",
        "other:v2",
    ]
    assert client.remove_image("mine:v1") == [{"Untagged": "mine:v1"}]
    with pytest.raises(ApiError) as exc:
        client.remove_image(image.short_id)
    assert exc.value.status == 409
    assert "referenced in multiple repositories" in exc.value.message
    removed = client.remove_image(image.short_id, force=True)
    assert removed[:2] == [{"Untagged": "busybox:latest"}, {"Untagged": "other:v2"}]
    assert {"Deleted": image.id} in removed
    assert backend_events[:3] == ["tag", "tag", "tag"]
    assert "delete" in backend_events


def test_tag_errors(server: ApiServer, backend: FakeImageBackend) -> None:
    backend.add("busybox", [b"1"])
    client = server.client()
    with pytest.raises(ApiError) as exc:
        client.request("POST", "/images/busybox/tag")
    assert (exc.value.status, exc.value.message) == (400, "invalid reference format")
    with pytest.raises(ApiError) as exc:
        client.tag_image("busybox", "UPPER")
    assert exc.value.status == 400
    with pytest.raises(ApiError) as exc:
        client.tag_image("nope", "x")
    assert (exc.value.status, exc.value.message) == (404, "No such image: nope:latest")


def test_remove_in_use_is_409(server: ApiServer, backend: FakeImageBackend) -> None:
    image = backend.add("busybox", [b"1"])
    backend.in_use = {image.id}
    with pytest.raises(ApiError) as exc:
        server.client().remove_image("busybox")
    assert exc.value.status == 409
    assert exc.value.message.startswith("conflict: unable to remove repository reference")


def test_remove_missing_is_404(server: ApiServer) -> None:
    with pytest.raises(ApiError) as exc:
        server.client().remove_image("nope")
    assert (exc.value.status, exc.value.message) == (404, "No such image: nope:latest")


# -- import / load / save ---------------------------------------------------------------


def test_import_streams_the_id(server: ApiServer, backend: FakeImageBackend) -> None:
    rootfs = _tar({"etc/hostname": b"x\n"})
    messages = list(
        server.client().import_image(
            io.BytesIO(rootfs), "imp:one", None, "m1", ["ENV A=b", "LABEL x=y", 'CMD ["sh"]']
        )
    )
    [last] = messages
    image = backend.get("imp:one")
    assert last == {"status": image.id}
    assert image.config.env == ["A=b"]
    assert image.config.labels == {"x": "y"}
    assert image.config.cmd == ["sh"]
    assert image.comment == "m1"


def test_import_bad_change_is_400(server: ApiServer) -> None:
    with pytest.raises(ApiError) as exc:
        list(server.client().import_image(io.BytesIO(b""), changes=["BOGUS x"]))
    assert (exc.value.status, exc.value.message) == (400, "bogus is not a valid change command")


def test_create_without_source_or_pull(server: ApiServer) -> None:
    with pytest.raises(ApiError) as exc:
        server.client().request("POST", "/images/create")
    assert exc.value.status == 400
    with pytest.raises(ApiError) as exc:
        server.client().request("POST", "/images/create", {"fromImage": "busybox"})
    assert exc.value.status == 501


def test_save_then_load_round_trip(server: ApiServer, backend: FakeImageBackend) -> None:
    image = backend.add("busybox", [b"layer-one", b"layer-two"], cmd=["sh"])
    client = server.client()
    response = client.request("GET", "/images/busybox/get")
    assert response.headers["Content-Type"] == "application/x-tar"
    archive = b"".join(client.save_images(["busybox"]))
    assert archive == response.body
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    client.remove_image("busybox")
    messages = list(client.load_images(io.BytesIO(archive), quiet=True))
    assert messages == [{"stream": "Loaded image: busybox:latest\n"}]
    assert client.inspect_image("busybox")["RootFS"]["Layers"] == image.diff_ids
    noisy = list(client.load_images(io.BytesIO(archive), quiet=False))
    assert noisy == [{"stream": "Loaded image: busybox:latest\n"}]  # once, not twice


def test_save_missing_is_404_before_any_tar(server: ApiServer, backend: FakeImageBackend) -> None:
    backend.add("busybox", [b"1"])
    with pytest.raises(ApiError) as exc:
        b"".join(server.client().save_images(["busybox", "nope"]))
    assert (exc.value.status, exc.value.message) == (404, "No such image: nope:latest")


def test_load_garbage_reports_an_error(server: ApiServer) -> None:
    with pytest.raises(ApiError) as exc:
        list(server.client().load_images(io.BytesIO(b"not a tar at all"), quiet=True))
    assert exc.value.status == 400


def test_large_upload_streams(server: ApiServer, backend: FakeImageBackend) -> None:
    data = _tar({"big": b"\0" * (8 << 20)})
    [message] = list(server.client().import_image(io.BytesIO(data), "big"))
    assert backend.get("big").size == len(data)
    assert message["status"].startswith("sha256:")


# -- prune / df / bootstrap -------------------------------------------------------------


def test_prune(server: ApiServer, backend: FakeImageBackend, events: EventBus) -> None:
    dangling = backend.add(None, [b"12345"])
    tagged = backend.add("keep", [b"67"])
    client = server.client()
    report = client.prune_images()
    assert report["ImagesDeleted"][0] == {"Deleted": dangling.id}
    assert report["SpaceReclaimed"] == 5
    assert client.prune_images() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    report = client.prune_images({"dangling": ["false"]})
    assert report["ImagesDeleted"][:2] == [{"Untagged": "keep:latest"}, {"Deleted": tagged.id}]
    assert any(e.action == "prune" for e in events._history)


def test_system_df_images(server: ApiServer, backend: FakeImageBackend) -> None:
    base = backend.add("base", [b"x" * 100])
    child = backend.add("child", [b"x" * 100, b"y" * 10], parent=base.id)
    backend.in_use = {child.id}
    df = server.client().disk_usage()
    assert df["LayersSize"] == 110
    by_id = {i["Id"]: i for i in df["Images"]}
    assert by_id[child.id]["SharedSize"] == 100
    assert by_id[child.id]["Containers"] == 1
    assert by_id[base.id]["Containers"] == 0
    assert server.client().disk_usage(["volume"])["Images"] is None


def test_bootstrap(server: ApiServer, backend: FakeImageBackend) -> None:
    result = server.client().bootstrap_image("busybox")
    assert result["RepoTags"] == ["busybox:latest"]
    assert backend.get("busybox").config.cmd == ["sh"]
    with pytest.raises(ApiError) as exc:
        server.client().bootstrap_image("alpine")
    assert exc.value.status == 400


# -- helpers ----------------------------------------------------------------------------


def test_split_repo_tag() -> None:
    assert split_repo_tag("foo", "") == ("foo", "latest")
    assert split_repo_tag("foo:bar", "") == ("foo", "bar")
    assert split_repo_tag("foo:bar", "x") == ("foo", "x")
    assert split_repo_tag("localhost:5000/a", "") == ("localhost:5000/a", "latest")
    with pytest.raises(InvalidArgument):
        split_repo_tag("", "")
    with pytest.raises(InvalidArgument):
        split_repo_tag("a@sha256:" + "0" * 64, "")


def test_familiar_match() -> None:
    assert familiar_match("busy*", "busybox:latest")
    assert familiar_match("busybox:1.*", "busybox:1.36")
    assert not familiar_match("busybox:1.*", "busybox:latest")
    assert familiar_match("a/*", "a/b:c")
    assert not familiar_match("a/*", "pipe:1")


def test_layers_size_counts_shared_once(backend: FakeImageBackend) -> None:
    base = backend.add("base", [b"x" * 100])
    backend.add("child", [b"x" * 100, b"y" * 10], parent=base.id)
    backend.add("other", [b"z" * 5])
    assert layers_size(backend.disk_usage()) == 115


# -- the Docker SDK ---------------------------------------------------------------------


def test_docker_sdk_image_calls(server: ApiServer, backend: FakeImageBackend) -> None:
    backend.add("busybox", [b"layer"], cmd=["sh"])
    sdk = docker.DockerClient(base_url="unix://" + server.path, version="1.44", timeout=10)
    try:
        [image] = sdk.images.list()
        assert image.tags == ["busybox:latest"]
        got = sdk.images.get("busybox")
        assert got.id == image.id
        assert got.attrs["Config"]["Cmd"] == ["sh"]
        assert got.tag("mine", "v1") is True
        assert "mine:v1" in sdk.images.get("busybox").tags
        assert [h["Id"] for h in got.history()] == [image.id]
        archive = b"".join(got.save(named=True))
        sdk.images.remove("mine:v1")
        sdk.images.remove("busybox")
        assert sdk.images.list() == []
        [loaded] = sdk.images.load(archive)
        assert loaded.tags == ["busybox:latest"]
        result = sdk.api.import_image(src=_tar({"a": b"b"}), repository="imp", tag="t")
        assert "sha256:" in str(result)
        assert sdk.images.get("imp:t")
        pruned = sdk.images.prune(filters={"dangling": False})
        assert pruned["SpaceReclaimed"] > 0
        with pytest.raises(docker.errors.ImageNotFound):
            sdk.images.get("nope")
        assert sdk.df()["Images"] == []
    finally:
        sdk.close()


def test_server_keeps_serving_after_bad_requests(server: ApiServer) -> None:
    for request in (
        b"DELETE /images/x?force=maybe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /images/load?quiet=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: 0\r\n\r\n",
        b"GET /images/json?filters=[1] HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ):
        status, body = _raw(server, request)
        assert status == 400
        assert "message" in json.loads(body)
    started = time.monotonic()
    assert server.client().images() == []
    assert time.monotonic() - started < 5
