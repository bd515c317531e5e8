"""Daemon addresses as dockerd and the docker CLI write them.

    unix:///run/skiff/skiff.sock     a unix socket (the default)
    tcp://127.0.0.1:2376             TCP; TLS unless explicitly made insecure
    /run/skiff/skiff.sock            shorthand for unix://

Shared by skiffd (where to listen) and the client (where to connect); pure.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from skiff.errors import InvalidArgument

DEFAULT_EXEC_ROOT = "/run/skiff"
DEFAULT_SOCKET = "/run/skiff/skiff.sock"
DEFAULT_HOST = "unix://" + DEFAULT_SOCKET
DEFAULT_TLS_PORT = 2376


class Host(NamedTuple):
    # A NamedTuple rather than a dataclass: the CLI imports this, and dataclasses costs
    # ~40 ms of start-up (it imports inspect).
    scheme: str  # "unix" or "tcp"
    path: str = ""  # unix socket path
    address: str = ""  # tcp host
    port: int = 0

    def __str__(self) -> str:
        if self.scheme == "unix":
            return "unix://" + self.path
        return f"tcp://{self.address}:{self.port}"


def parse_host(text: str) -> Host:
    """Parse a -H value; raise InvalidArgument with dockerd's wording when it is not one."""
    text = text.strip()
    if text.startswith("/"):
        return Host("unix", path=text)
    if "://" not in text:
        raise InvalidArgument(f"Invalid bind address format: {text}")
    scheme, _, rest = text.partition("://")
    if scheme == "unix":
        if not rest:
            return Host("unix", path=DEFAULT_SOCKET)
        return Host("unix", path=rest)
    if scheme in ("tcp", "https", "http"):
        parts = urlsplit("//" + rest)
        try:
            port = parts.port
        except ValueError:
            raise InvalidArgument(f"Invalid bind address format: {text}") from None
        if parts.path not in ("", "/"):
            raise InvalidArgument(f"Invalid bind address format: {text}")
        address = parts.hostname or "127.0.0.1"
        return Host("tcp", address=address, port=port or DEFAULT_TLS_PORT)
    raise InvalidArgument(f"Invalid bind address format: {text}")
