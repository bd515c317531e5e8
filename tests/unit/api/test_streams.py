from __future__ import annotations

import pytest
from aiohttp import web

from skiff.api.registry import Route
from skiff.api.streams import JsonStream
from skiff.client import ApiError
from skiff.errors import NotFound
from skiff.testing.apiserver import ApiServer


async def progress_then_fail(request: web.Request) -> web.StreamResponse:
    stream = JsonStream(request)
    async with stream:
        await stream.send({"status": "Pulling", "id": "latest"})
        raise NotFound("manifest unknown")
    return stream.response


async def fail_before_output(request: web.Request) -> web.StreamResponse:
    stream = JsonStream(request)
    async with stream:
        raise NotFound("No such image: nothing:latest")
    return stream.response


async def crash_midway(request: web.Request) -> web.StreamResponse:
    stream = JsonStream(request)
    async with stream:
        await stream.send({"status": "working"})
        raise RuntimeError("secret detail")
    return stream.response


@pytest.fixture
def extra_routes() -> list[Route]:
    return [
        Route("POST", "/t/progress", progress_then_fail),
        Route("POST", "/t/early", fail_before_output),
        Route("POST", "/t/crash", crash_midway),
    ]


def test_error_after_start_goes_in_band(server: ApiServer) -> None:
    messages = list(server.client().stream_json("POST", "/t/progress"))
    assert messages == [
        {"status": "Pulling", "id": "latest"},
        {"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"},
    ]


def test_error_before_output_is_a_real_status(server: ApiServer) -> None:
    with pytest.raises(ApiError) as info:
        list(server.client().stream_json("POST", "/t/early"))
    assert info.value.status == 404
    assert info.value.message == "No such image: nothing:latest"


def test_unexpected_error_in_band_hides_details(server: ApiServer) -> None:
    messages = list(server.client().stream_json("POST", "/t/crash"))
    assert messages[-1]["error"] == "internal error"
    assert "secret" not in str(messages)
