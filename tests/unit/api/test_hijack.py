"""The hijack, driven by a raw socket as the docker CLI drives attach."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web

from skiff.api.framing import STDERR, STDOUT, FrameDecoder, encode_frame
from skiff.api.hijack import MULTIPLEXED_STREAM, hijack
from skiff.api.registry import Route
from skiff.testing.apiserver import ApiServer


async def echo(request: web.Request) -> web.StreamResponse:
    """Uppercase stdin to stdout as frames; after stdin EOF, say bye on stderr and end."""
    async with hijack(request, MULTIPLEXED_STREAM) as conn:
        while data := await conn.read():
            await conn.write(encode_frame(STDOUT, data.upper()))
        await conn.write(encode_frame(STDERR, b"bye\n"))
    return web.Response(status=101)  # already sent; aiohttp only closes the connection


@pytest.fixture
def extra_routes() -> list[Route]:
    return [Route("POST", "/containers/{id}/attach", echo)]


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        assert chunk, "connection closed before the response head"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def test_upgrade_then_raw_bytes_both_ways_with_half_close(server: ApiServer) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(server.path)
    # Like the docker CLI and the SDK: send the request, wait for the 101, then stdin.
    sock.sendall(
        b"POST /v1.44/containers/abc/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
        b"Host: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    head, rest = _read_head(sock)
    sock.sendall(b"hello ")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 101 UPGRADED"
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    assert headers[b"content-type"] == MULTIPLEXED_STREAM.encode()
    assert headers[b"upgrade"] == b"tcp"
    assert headers[b"connection"].lower() == b"upgrade"

    decoder = FrameDecoder()
    frames = decoder.feed(rest)
    sock.sendall(b"world")
    sock.shutdown(socket.SHUT_WR)  # stdin EOF: output must keep coming
    while True:
        data = sock.recv(4096)
        if not data:
            break
        frames += decoder.feed(data)
    sock.close()
    out = b"".join(p for s, p in frames if s == STDOUT)
    assert out == b"HELLO WORLD"
    assert frames[-1] == (STDERR, b"bye\n")
    assert decoder.pending == 0
    # the server is still fine afterwards
    assert server.client().ping()["Api-Version"] == "1.44"


def test_hijack_without_upgrade_is_refused(server: ApiServer) -> None:
    resp = server.client()
    with pytest.raises(Exception, match="connection upgrade"):
        resp.request("POST", "/containers/abc/attach")
