"""A hijacked connection from the client side (attach): send the HTTP request with
`Connection: Upgrade`, read the 101 head, then the socket is a raw byte pipe."""

from __future__ import annotations

from skiff.client.client import Client, _encode_query, _error_message
from skiff.client.errors import ApiError, DaemonUnreachable
from skiff.client.http import quote
from skiff.version import API_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping

    from skiff.client.client import QueryValue


def hijack(
    client: Client,
    path: str,
    query: Mapping[str, QueryValue] | None = None,
    body: bytes = b"",
) -> tuple[socket.socket, bytes]:
    """Returns the raw socket and the bytes that came after the response head.
    A `body` (exec start's JSON) is sent as application/json."""
    try:
        sock = client._connect(timeout=None)
    except OSError as exc:
        raise DaemonUnreachable(str(client.host), str(exc)) from None
    url = f"/v{API_VERSION}{quote(path)}{_encode_query(query)}"
    content_type = "Content-Type: application/json\r\n" if body else ""
    head = (
        f"POST {url} HTTP/1.1\r\nHost: skiff\r\nContent-Length: {len(body)}\r\n"
        f"{content_type}Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    head_bytes, _, rest = buf.partition(b"\r\n\r\n")
    status_line = head_bytes.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    if status != 101:
        body = rest
        while chunk := sock.recv(65536):
            body += chunk
        sock.close()
        raise ApiError(status, _error_message(body, parts[2] if len(parts) > 2 else ""))
    return sock, rest
