"""A small typed client for skiffd over its unix socket or TCP+TLS, standard library only
(http.client), so the CLI starts fast.

    ClientError
    ├── DaemonUnreachable   nothing answers at the address (the CLI may start skiffd)
    └── ApiError            the daemon answered with an error status: .status, .message
"""

from skiff.client.client import Client, Response, TlsConfig
from skiff.client.errors import ApiError, ClientError, DaemonUnreachable

__all__ = ["ApiError", "Client", "ClientError", "DaemonUnreachable", "Response", "TlsConfig"]
