"""A hijacked connection from the client side (attach): send the HTTP request with
`Connection: Upgrade`, read the 101 head, then the socket is a raw byte pipe."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote

from skiff.client.client import Client, _encode_query, _error_message
from skiff.client.errors import ApiError, DaemonUnreachable
from skiff.version import API_VERSION

if TYPE_CHECKING:  # the lean client defines it for type checking only
    from skiff.client.client import QueryValue


def hijack(
    client: Client, path: str, query: Mapping[str, QueryValue] | None = None
) -> tuple[socket.socket, bytes]:
    """Returns the raw socket and the bytes that came after the response head."""
    host = client.host
    try:
        if host.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(host.path)
        else:
            sock = socket.create_connection((host.address, host.port))
            if client.tls is not None:
                sock = client.tls.context().wrap_socket(sock, server_hostname=host.address)
    except (OSError, ssl.SSLError) as exc:
        raise DaemonUnreachable(str(host), str(exc)) from None
    url = f"/v{API_VERSION}{quote(path)}{_encode_query(query)}"
    head = (
        f"POST {url} HTTP/1.1\r\nHost: skiff\r\nContent-Length: 0\r\n"
        "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    sock.sendall(head.encode())
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
