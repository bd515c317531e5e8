"""Versions every layer agrees on: skiff's own and the Docker Engine API it speaks.

Pure constants so the CLI can read them without importing the server stack.
"""

from __future__ import annotations

__version__ = "0.1.0"

API_VERSION = "1.44"
"""The Docker Engine API version skiffd advertises (docker CLI 29 refuses older daemons)."""

MIN_API_VERSION = "1.24"
"""The oldest API version a client may ask for in a /v1.NN prefix."""


def parse_api_version(text: str) -> tuple[int, int]:
    """'1.44' -> (1, 44); raises ValueError on anything else."""
    major, _, minor = text.partition(".")
    if not major.isdigit() or not minor.isdigit():
        raise ValueError(f"invalid API version {text!r}")
    return int(major), int(minor)
