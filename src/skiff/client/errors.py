"""Client exceptions; the tree is drawn in the package docstring."""

from __future__ import annotations


class ClientError(Exception):
    pass


class DaemonUnreachable(ClientError):
    def __init__(self, address: str, reason: str) -> None:
        super().__init__(
            f"Cannot connect to the skiff daemon at {address}. Is the skiff daemon running? "
            f"({reason})"
        )
        self.address = address
        self.reason = reason


class ApiError(ClientError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class ProtocolError(ClientError):
    """The daemon's answer is not HTTP we understand, or it broke off mid-body."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error reading the response from the skiff daemon: {message}")
