"""POST /build and /build/prune over the fake executor, driven by the skiff client and
the Docker SDK for Python: the JSON stream, in-band errors with the RUN's code, a parse
error as a plain 400 before anything ran."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from skiff.api.build import BuildApi
from skiff.build.builder import MemoryCache
from skiff.client import ApiError
from skiff.services.build import BuildService
from skiff.testing.apiserver import ApiServer, serve_api
from skiff.testing.build import FakeExecutor


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeExecutor]:
    ex = FakeExecutor(str(tmp_path / "fake"))
    ex.add_image("busybox:latest", {"/bin/sh": ""})
    yield ex
    ex.close()


@pytest.fixture
def server(tmp_path: Path, fake: FakeExecutor) -> Iterator[ApiServer]:
    service = BuildService(fake, MemoryCache(), str(tmp_path / "tmp"))
    with serve_api(str(tmp_path / "api.sock"), BuildApi(service).routes()) as s:
        yield s


def context(files: dict[str, str], gzip: bool = False) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gzip else "w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def messages(server: ApiServer, files: dict[str, str], **kw: Any) -> list[dict[str, Any]]:
    return list(server.client().build(context(files, kw.pop("gzip", False)), **kw))


def test_stream_of_a_build(server: ApiServer, fake: FakeExecutor) -> None:
    files = {"Dockerfile": "FROM busybox\nCOPY f /f\nRUN echo hi\n", "f": "x"}
    out = messages(server, files, tags=["a:1", "b:2"], gzip=True)
    text = "".join(m.get("stream", "") for m in out)
    assert text.startswith("Step 1/3 : FROM busybox\n ---> ")
    assert "Step 3/3 : RUN echo hi\n ---> Running in " in text
    assert "hi\n" in text
    assert text.endswith("Successfully tagged a:1\nSuccessfully tagged b:2\n")
    aux = [m["aux"]["ID"] for m in out if "aux" in m]
    assert fake.refs["a:1"] == fake.refs["b:2"] == aux[0]
    again = messages(server, files)
    assert "".join(m.get("stream", "") for m in again).count(" ---> Using cache") == 2


def test_failing_run_is_in_band_with_its_code(server: ApiServer) -> None:
    out = messages(server, {"Dockerfile": "FROM busybox\nRUN exit 3\n"})
    message = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert out[-1] == {"errorDetail": {"code": 3, "message": message}, "error": message}


def test_parse_error_is_a_400_before_anything(server: ApiServer, fake: FakeExecutor) -> None:
    with pytest.raises(ApiError) as info:
        messages(server, {"Dockerfile": "FROM busybox\nRUN echo\nFORM x\n"})
    assert info.value.status == 400
    assert "dockerfile parse error line 3: unknown instruction: FORM" in str(info.value)
    with pytest.raises(ApiError, match="Cannot locate specified Dockerfile: Other"):
        messages(server, {"Dockerfile": "FROM busybox\n"}, dockerfile="Other")
    assert not fake.runs


def test_context_escape_refused(server: ApiServer) -> None:
    with pytest.raises(ApiError, match="Forbidden path outside the build context"):
        messages(server, {"Dockerfile": "FROM busybox\n", "../evil": "x"})


def test_docker_sdk_build_and_prune(server: ApiServer) -> None:
    client = docker.DockerClient(base_url="unix://" + server.path, version="1.44")
    try:
        dockerfile = io.BytesIO(b"FROM busybox\nLABEL a=b\nARG V\nRUN echo $V\n")
        image_id = None
        for chunk in client.api.build(
            fileobj=dockerfile, tag="sdk:1", buildargs={"V": "v1"}, decode=True
        ):
            if "aux" in chunk:
                image_id = chunk["aux"]["ID"]
        assert image_id is not None
        pruned = client.api.prune_builds()
        assert image_id in pruned["CachesDeleted"]
    finally:
        client.close()


def test_large_context_through_a_small_read_ahead(
    server: ApiServer, fake: FakeExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upload task waits for the worker whenever READ_AHEAD bytes are queued."""
    import skiff.api.bridge

    monkeypatch.setattr(skiff.api.bridge, "READ_AHEAD", 4096)
    big = "".join(f"line {i}\n" for i in range(200_000))  # ~2 MB
    files = {"Dockerfile": "FROM busybox\nCOPY big /big\n", "big": big, "other": "o"}
    out = messages(server, files)
    image_id = next(m["aux"]["ID"] for m in out if "aux" in m)
    assert fake.read(image_id, "/big") == big
    again = messages(server, files)
    assert "".join(m.get("stream", "") for m in again).count(" ---> Using cache") == 1
