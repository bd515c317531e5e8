"""A small typed client for skiffd over its unix socket or TCP+TLS, on its own minimal
HTTP/1.1 (skiff.client.http) so the CLI starts fast.

    ClientError
    ├── DaemonUnreachable   nothing answers at the address (the CLI may start skiffd)
    ├── ApiError            the daemon answered with an error status: .status, .message
    └── ProtocolError       the answer is not HTTP, or broke off mid-body
"""

from skiff.client.client import Client, Response, TlsConfig
from skiff.client.errors import ApiError, ClientError, DaemonUnreachable, ProtocolError

__all__ = [
    "ApiError",
    "Client",
    "ClientError",
    "DaemonUnreachable",
    "ProtocolError",
    "Response",
    "TlsConfig",
]
