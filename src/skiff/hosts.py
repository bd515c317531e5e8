"""Daemon addresses as dockerd and the docker CLI write them.

    unix:///run/skiff/skiff.sock     a unix socket (the default)
    tcp://127.0.0.1:2376             TCP; TLS unless explicitly made insecure
    /run/skiff/skiff.sock            shorthand for unix://

Shared by skiffd (where to listen) and the client (where to connect); pure.
"""

from __future__ import annotations

from skiff.errors import InvalidArgument

DEFAULT_EXEC_ROOT = "/run/skiff"
DEFAULT_SOCKET = "/run/skiff/skiff.sock"
DEFAULT_HOST = "unix://" + DEFAULT_SOCKET
DEFAULT_TLS_PORT = 2376


class Host:
    # A plain class, not a dataclass or NamedTuple: the CLI imports this, and those import
    # inspect or typing, which cost more start-up time than the rest of `skiff images`.
    __slots__ = ("address", "path", "port", "scheme")

    def __init__(self, scheme: str, path: str = "", address: str = "", port: int = 0) -> None:
        self.scheme = scheme  # "unix" or "tcp"
        self.path = path  # unix socket path
        self.address = address  # tcp host
        self.port = port

    def _key(self) -> tuple[str, str, str, int]:
        return (self.scheme, self.path, self.address, self.port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Host) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        scheme, path, address, port = self._key()
        return f"Host({scheme=}, {path=}, {address=}, {port=})"

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
        from urllib.parse import urlsplit  # only here: the unix path is the CLI's hot one

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
