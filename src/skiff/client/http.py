"""Just enough HTTP/1.1 for the client, over any connected stream socket (unix, TCP, TLS).

Why not http.client: it imports email (parser, utils, header, ...), which with urllib.parse
costs more than everything else `skiff images` does. This module needs only the socket it
is handed. One request per connection:

    send_request(sock, "GET", "/v1.44/images/json?all=1", "localhost")
    response = read_response(sock.makefile("rb"), "GET")
    response.read()             all of the body
    response.read_some()        the next piece as it arrives; b"" at the end

A request body is bytes (sent with Content-Length) or a binary file (sent chunked, as it is
read). A response body is framed by chunked transfer coding, Content-Length, or the end of
the connection, in that order of precedence (RFC 9112 §6.3).
"""

from __future__ import annotations

from skiff.client.errors import ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable, Mapping
    from io import BufferedReader
    from typing import BinaryIO

    Body = bytes | BinaryIO | None

CHUNK = 1 << 20
MAX_LINE = 1 << 16  # a status, header or chunk-size line longer than this is refused
MAX_HEADERS = 100

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "/") -> str:
    """Percent-encode like urllib.parse.quote: UTF-8, unreserved characters and `safe` kept."""
    keep = _UNRESERVED | frozenset(safe.encode("ascii"))
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))


def encode_query(pairs: Iterable[tuple[str, str]]) -> str:
    """A query string like urllib.parse.urlencode: spaces become "+", the rest %XX."""

    def plus(text: str) -> str:
        return quote(text, safe=" ").replace(" ", "+")

    return "&".join(f"{plus(key)}={plus(value)}" for key, value in pairs)


def send_request(
    sock: socket.socket,
    method: str,
    target: str,
    host: str,
    headers: Mapping[str, str] | None = None,
    body: Body = None,
) -> None:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if isinstance(body, bytes):
        lines.append(f"Content-Length: {len(body)}")
    elif body is not None:
        lines.append("Transfer-Encoding: chunked")
    elif method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if isinstance(body, bytes):
        sock.sendall(head + body)
        return
    sock.sendall(head)
    if body is None:
        return
    while data := body.read(CHUNK):
        sock.sendall(b"".join((f"{len(data):x}\r\n".encode(), data, b"\r\n")))
    sock.sendall(b"0\r\n\r\n")


def _line(file: BufferedReader) -> bytes:
    line = file.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError("line too long")
    if not line.endswith(b"\n"):
        raise ProtocolError("the connection closed early")
    return line.rstrip(b"\r\n")


def _headers(file: BufferedReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = _line(file)
        if not line:
            return headers
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        name, value = name.strip(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise ProtocolError(f"more than {MAX_HEADERS} headers")


class HttpResponse:
    """A status, headers as sent (names keep their case), and a body read on demand."""

    __slots__ = ("_chunked", "_done", "_file", "_remaining", "headers", "reason", "status")

    def __init__(
        self, file: BufferedReader, method: str, status: int, reason: str, headers: dict[str, str]
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._file = file
        self._chunked = False
        self._remaining = -1  # bytes left in the body (or chunk); -1: until the connection ends
        self._done = False
        self._frame(method)

    def header(self, name: str) -> str | None:
        """A header's value, its name matched without regard to case."""
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return None

    def _frame(self, method: str) -> None:
        if method == "HEAD" or self.status in (204, 304) or self.status < 200:
            self._done = True
        elif "chunked" in (self.header("Transfer-Encoding") or "").lower():
            self._chunked = True
            self._remaining = 0
        elif (length := self.header("Content-Length")) is not None:
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length {length!r}")
            self._remaining = int(length)
            self._done = self._remaining == 0

    def _next_chunk(self) -> None:
        size, _, _extensions = _line(self._file).partition(b";")
        try:
            self._remaining = int(size, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size[:20]!r}") from None
        if self._remaining == 0:
            while _line(self._file):  # trailer fields, unused
                pass
            self._done = True

    def read_some(self, limit: int = CHUNK) -> bytes:
        """Up to `limit` bytes of the body, as soon as some arrive; b"" at its end."""
        if self._done:
            return b""
        if self._chunked and self._remaining == 0:
            self._next_chunk()
            if self._done:
                return b""
        want = limit if self._remaining < 0 else min(limit, self._remaining)
        data = self._file.read1(want)
        if not data:
            if self._remaining < 0:
                self._done = True
                return b""
            raise ProtocolError("the connection closed in the middle of the body")
        if self._remaining > 0:
            self._remaining -= len(data)
            if self._remaining == 0:
                if self._chunked:
                    if _line(self._file):
                        raise ProtocolError("chunk longer than its size")
                else:
                    self._done = True
        return data

    def close(self) -> None:
        self._file.close()

    def read(self) -> bytes:
        parts = []
        while data := self.read_some():
            parts.append(data)
        return b"".join(parts)


def read_response(file: BufferedReader, method: str) -> HttpResponse:
    """Read the status line and headers (skipping interim 1xx answers), not the body."""
    while True:
        version, _, rest = _line(file).decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
            raise ProtocolError(f"malformed status line {version} {rest[:80]!r}")
        headers = _headers(file)
        if not 100 <= int(code) < 200:
            break
    return HttpResponse(file, method, int(code), reason.strip(), headers)
