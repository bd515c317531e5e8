from __future__ import annotations

import http.client
import json
import socket

import pytest
from aiohttp import web

from skiff import errors
from skiff.api.registry import Route
from skiff.client import ApiError
from skiff.testing.apiserver import ApiServer as Server

CATEGORIES = [
    (errors.NotFound("No such container: web"), 404),
    (errors.InvalidArgument("bad thing"), 400),
    (errors.Conflict("name in use"), 409),
    (errors.Unauthorized("who are you"), 401),
    (errors.Forbidden("no"), 403),
    (errors.Unsupported("not yet"), 501),
    (errors.Unavailable("busy"), 503),
]


def _raiser(exc: BaseException) -> Route:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise exc

    return Route("GET", f"/raise/{type(exc).__name__}", handler)


@pytest.fixture
def extra_routes() -> list[Route]:
    routes = [_raiser(exc) for exc, _ in CATEGORIES]
    routes.append(_raiser(errors.NotModified("same")))
    routes.append(_raiser(RuntimeError("secret internals")))
    return routes


def raw_get(server: Server, path: str, method: str = "GET") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("localhost")
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(server.path)
    conn.sock = sock
    conn.request(method, path)
    return conn.getresponse()


def test_ping_get_and_head_carry_version_headers(server: Server) -> None:
    for method, body in (("GET", b"OK"), ("HEAD", b"")):
        resp = raw_get(server, "/_ping", method)
        assert resp.status == 200
        assert resp.read() == body
        assert resp.headers["Api-Version"] == "1.44"
        assert resp.headers["Ostype"] == "linux"
        assert resp.headers["Docker-Experimental"] == "false"
        assert resp.headers["Server"].startswith("skiff/")


@pytest.mark.parametrize("prefix", ["", "/v1.24", "/v1.41", "/v1.44"])
def test_paths_with_and_without_version_prefix(server: Server, prefix: str) -> None:
    resp = raw_get(server, prefix + "/version")
    assert resp.status == 200
    assert json.loads(resp.read())["ApiVersion"] == "1.44"


def test_too_new_and_too_old_versions_get_dockers_wording(server: Server) -> None:
    resp = raw_get(server, "/v1.45/version")
    assert resp.status == 400
    assert json.loads(resp.read()) == {
        "message": "client version 1.45 is too new. Maximum supported API version is 1.44"
    }
    resp = raw_get(server, "/v1.23/_ping")
    assert resp.status == 400
    message = json.loads(resp.read())["message"]
    assert message.startswith("client version 1.23 is too old. Minimum supported API version")


@pytest.mark.parametrize(("path", "method"), [("/nope", "GET"), ("/version", "DELETE")])
def test_unknown_route_is_json_404(server: Server, path: str, method: str) -> None:
    resp = raw_get(server, path, method)
    assert resp.status == 404
    assert json.loads(resp.read()) == {"message": "page not found"}
    assert resp.headers["Api-Version"] == "1.44"


@pytest.mark.parametrize(("exc", "status"), CATEGORIES)
def test_error_table(server: Server, exc: BaseException, status: int) -> None:
    with pytest.raises(ApiError) as info:
        server.client().request("GET", f"/raise/{type(exc).__name__}")
    assert info.value.status == status
    assert info.value.message == str(exc)


def test_not_modified_has_no_body(server: Server) -> None:
    resp = raw_get(server, "/raise/NotModified")
    assert resp.status == 304
    assert resp.read() == b""


def test_unexpected_error_is_500_without_internals_and_server_keeps_serving(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    resp = raw_get(server, "/raise/RuntimeError")
    assert resp.status == 500
    body = resp.read().decode()
    assert "secret internals" not in body
    assert "Traceback" not in body
    assert json.loads(body) == {"message": "internal server error"}
    assert raw_get(server, "/_ping").status == 200


def test_malformed_http_gets_400_and_server_keeps_serving(server: Server) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(server.path)
        sock.sendall(b"GARBAGE\x00\x01 / HTTP/9\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.split(b" ")[1] == b"400"
    assert b"Traceback" not in reply
    assert raw_get(server, "/_ping").status == 200


@pytest.mark.parametrize(
    "path",
    ["/events?since=yesterday", "/events?filters=%7Bnot-json", "/system/df?type=cats"],
)
def test_bad_query_values_are_400_json(server: Server, path: str) -> None:
    resp = raw_get(server, path)
    assert resp.status == 400
    assert json.loads(resp.read())["message"]
    assert raw_get(server, "/_ping").status == 200
