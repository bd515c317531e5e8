from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.client import ApiError, Client, DaemonUnreachable
from skiff.client.client import encode_filters
from skiff.hosts import Host
from skiff.testing.apiserver import ApiServer, serve_api


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    with serve_api(str(tmp_path / "c.sock")) as srv:
        yield srv


def test_ping_and_version(server: ApiServer) -> None:
    client = server.client()
    assert client.ping()["Api-Version"] == "1.44"
    assert client.version()["ApiVersion"] == "1.44"


def test_api_error_carries_status_and_message(server: ApiServer) -> None:
    with pytest.raises(ApiError) as info:
        server.client().request("GET", "/no/such/thing")
    assert info.value.status == 404
    assert info.value.message == "page not found"
    assert str(info.value) == "Error response from daemon: page not found"


def test_unreachable(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnreachable, match="Cannot connect to the skiff daemon"):
        Client(Host("unix", path=str(tmp_path / "none.sock"))).ping()


def test_filters_encoded_like_the_docker_cli() -> None:
    assert encode_filters({"type": ["container"]}) == '{"type": {"container": true}}'
