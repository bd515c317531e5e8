"""Content digests (`sha256:<64 hex>`), as the OCI descriptor spec defines them.

A `Digest` is parsed once at the boundary and is then known to be valid: the
algorithm is one we can compute (sha256 or sha512) and the encoded part is
lower-case hex of the right length. Unregistered algorithms are refused rather
than passed through, because every digest skiff holds is one it must verify.

Plain classes with `__slots__` (no dataclasses) keep this module cheap to
import for the CLI.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from skiff.errors import InvalidArgument

if TYPE_CHECKING:
    from _hashlib import HASH
    from collections.abc import Iterable

SHA256 = "sha256"
SHA512 = "sha512"

# Hex length of each algorithm we can verify.
_HEX_LENGTH = {SHA256: 64, SHA512: 128}
_HEX = re.compile(r"[a-f0-9]+")


class InvalidDigest(InvalidArgument):
    """A string is not a digest skiff can verify."""


class Digest:
    """An algorithm and its lower-case hex digest; compare and hash by value."""

    __slots__ = ("algorithm", "encoded")

    algorithm: str
    encoded: str

    def __init__(self, algorithm: str, encoded: str) -> None:
        length = _HEX_LENGTH.get(algorithm)
        if length is None:
            raise InvalidDigest(f"unsupported digest algorithm: {algorithm!r}")
        if len(encoded) != length or not _HEX.fullmatch(encoded):
            raise InvalidDigest(
                f"invalid {algorithm} digest: expected {length} lower-case hex characters"
            )
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "encoded", encoded)

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `alg:hex`; raise InvalidDigest with the offending text."""
        if not isinstance(text, str):
            raise InvalidDigest(f"invalid digest: expected a string, got {type(text).__name__}")
        algorithm, sep, encoded = text.partition(":")
        if not sep:
            raise InvalidDigest(f"invalid digest {text[:80]!r}: missing algorithm")
        try:
            return cls(algorithm, encoded)
        except InvalidDigest as e:
            raise InvalidDigest(f"invalid digest {text[:80]!r}: {e}") from None

    @classmethod
    def from_bytes(cls, data: bytes, algorithm: str = SHA256) -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @classmethod
    def from_chunks(cls, chunks: Iterable[bytes], algorithm: str = SHA256) -> Digest:
        h = hashlib.new(algorithm)
        for chunk in chunks:
            h.update(chunk)
        return cls(algorithm, h.hexdigest())

    @classmethod
    def from_hasher(cls, hasher: HASH) -> Digest:
        """The digest of a `hashlib` object made by `hasher()`."""
        return cls(hasher.name, hasher.hexdigest())

    def hasher(self) -> HASH:
        """A fresh `hashlib` object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    @property
    def hex(self) -> str:
        return self.encoded

    def short(self, length: int = 12) -> str:
        """The first hex characters, as `docker images` shows an ID."""
        return self.encoded[:length]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Digest is immutable")

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    def __repr__(self) -> str:
        return f"Digest({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Digest):
            return self.algorithm == other.algorithm and self.encoded == other.encoded
        return NotImplemented

    def __lt__(self, other: Digest) -> bool:
        return (self.algorithm, self.encoded) < (other.algorithm, other.encoded)

    def __hash__(self) -> int:
        return hash((self.algorithm, self.encoded))

    def __reduce__(self) -> tuple[type[Digest], tuple[str, str]]:
        return (Digest, (self.algorithm, self.encoded))


def new_hasher(algorithm: str = SHA256) -> HASH:
    if algorithm not in _HEX_LENGTH:
        raise InvalidDigest(f"unsupported digest algorithm: {algorithm!r}")
    return hashlib.new(algorithm)
