"""skiff.client.http against canned server bytes on a socketpair: framing, streaming,
request bodies, and the errors of a daemon that breaks off."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote as urllib_quote
from urllib.parse import urlencode

import pytest

from skiff.client.errors import ProtocolError
from skiff.client.http import HttpResponse, encode_query, quote, read_response, send_request


@contextmanager
def exchange(answer: bytes, method: str = "GET") -> Iterator[tuple[HttpResponse, list[bytes]]]:
    """Send a request to a peer that records it and writes `answer`, then closes."""
    ours, theirs = socket.socketpair()
    received: list[bytes] = []

    def serve() -> None:
        with theirs:
            theirs.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                data += theirs.recv(65536)
            received.append(data)
            theirs.sendall(answer)

    thread = threading.Thread(target=serve)
    thread.start()
    with ours, ours.makefile("rb") as file:
        send_request(ours, method, "/v1.44/x", "localhost")
        try:
            yield read_response(file, method), received
        finally:
            thread.join(5)


def test_content_length_body() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
    with exchange(answer) as (response, received):
        assert (response.status, response.reason) == (200, "OK")
        assert response.headers["Content-Type"] == "text/plain"
        assert response.header("content-type") == "text/plain"
        assert response.read() == b"hello"
        assert response.read_some() == b""
    assert received[0].startswith(b"GET /v1.44/x HTTP/1.1\r\nHost: localhost\r\n")


def test_chunked_body_streams_piece_by_piece() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n"
    )
    with exchange(answer) as (response, _):
        assert response.read_some() == b"abc"
        assert response.read_some(2) == b"de"
        assert response.read_some() == b"fg"
        assert response.read_some() == b""


def test_body_until_close_and_no_body_statuses() -> None:
    with exchange(b"HTTP/1.1 200 OK\r\n\r\nall of it") as (response, _):
        assert response.read() == b"all of it"
    with exchange(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n") as (resp, _):
        assert resp.status == 204
        assert resp.read() == b""


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
)
def test_malformed_or_truncated_answers_are_protocol_errors(answer: bytes) -> None:
    with pytest.raises(ProtocolError), exchange(answer) as (response, _):
        response.read()


def test_request_bodies() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        send_request(ours, "POST", "/a", "h", {"Content-Type": "x"}, b"12345")
        send_request(ours, "POST", "/b", "h", None, io.BytesIO(b"x" * 10))
        send_request(ours, "POST", "/c", "h")
        ours.shutdown(socket.SHUT_WR)
        with theirs.makefile("rb") as f:
            sent = f.read()
    first, second, third = sent.split(b"POST ")[1:]
    assert first.endswith(b"Content-Type: x\r\nContent-Length: 5\r\n\r\n12345")
    assert second.endswith(b"Transfer-Encoding: chunked\r\n\r\na\r\nxxxxxxxxxx\r\n0\r\n\r\n")
    assert third.endswith(b"Content-Length: 0\r\n\r\n")


def test_quoting_matches_urllib() -> None:
    for text in ["/images/busybox:latest/json", "/images/a b/ü?&=+%", "~_.-"]:
        assert quote(text) == urllib_quote(text)
    pairs = [("filters", '{"reference": {"a b": true}}'), ("names", "x/y:1"), ("q", "ü&+")]
    assert encode_query(pairs) == urlencode(pairs)
