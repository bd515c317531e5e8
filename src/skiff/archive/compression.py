"""Layer compression: detect, decompress while hashing, compress while hashing.

A layer has two digests: the digest of the blob as stored (compressed) and the
diffID, the digest of the uncompressed tar. Both are computed in the one pass
that reads or writes the layer: `HashingReader` / `LayerWriter` sit on either
side of the (de)compressor.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from skiff.archive.errors import CorruptLayer, LayerError
from skiff.oci.digest import SHA256, Digest, new_hasher

if TYPE_CHECKING:
    from typing import Protocol

    class _Decompressor(Protocol):
        @property
        def eof(self) -> bool: ...
        @property
        def unused_data(self) -> bytes: ...

        def decompress(self, data: bytes, /) -> bytes: ...


NONE = ""
GZIP = "gzip"
ZSTD = "zstd"

_CHUNK = 1 << 20
# zstd's decompressobj cannot bound its output, so feed it small inputs.
_ZSTD_INPUT = 64 << 10

_ZLIB_TYPE = type(zlib.decompressobj())
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def detect(head: bytes) -> str:
    """The compression of a stream from its first bytes: GZIP, ZSTD or NONE."""
    if head.startswith(_GZIP_MAGIC):
        return GZIP
    if head.startswith(_ZSTD_MAGIC):
        return ZSTD
    if head.startswith((b"BZh", b"\xfd7zXZ\x00")):
        raise LayerError("bzip2 and xz layers are not supported (gzip, zstd or plain tar)")
    return NONE


class HashingReader(io.RawIOBase):
    """Counts and hashes every byte read through it."""

    def __init__(self, raw: BinaryIO | io.RawIOBase | io.BufferedIOBase, algorithm: str = SHA256):
        self._raw = raw
        self._hasher = new_hasher(algorithm)
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(b))
        if not data:
            return 0
        n = len(data)
        b[:n] = data
        self._hasher.update(data)
        self.size += n
        return n

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def digest(self) -> Digest:
        return Digest.from_hasher(self._hasher.copy())


class DecompressingReader(io.RawIOBase):
    """Decompresses gzip (multi-member) or zstd (multi-frame) and refuses a
    stream that ends inside a member or frame: truncation is an error, not EOF."""

    def __init__(self, raw: BinaryIO | io.RawIOBase | io.BufferedIOBase, compression: str):
        if compression not in (GZIP, ZSTD):
            raise ValueError(f"not a compression: {compression!r}")
        self._raw = raw
        self._kind = compression
        self._d = self._new()
        self._tail = b""  # gzip input not yet consumed (zlib's unconsumed_tail)
        self._out = memoryview(b"")
        self._done = False

    def _new(self) -> _Decompressor:
        if self._kind == GZIP:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._out:
            if self._done:
                return 0
            self._fill(len(b))
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _fill(self, want: int) -> None:
        if self._tail:
            data, self._tail = self._tail, b""
        elif self._d.eof:
            data = self._d.unused_data or self._raw.read(_CHUNK)
            if not data.strip(b"\0"):
                # End of stream; NUL padding after the last member is allowed.
                while rest := self._raw.read(_CHUNK):
                    if rest.strip(b"\0"):
                        raise CorruptLayer(f"{self._kind} layer: trailing data after the end")
                self._done = True
                return
            self._d = self._new()
        else:
            data = self._raw.read(_CHUNK if self._kind == GZIP else _ZSTD_INPUT)
            if not data:
                raise CorruptLayer(f"{self._kind} layer is truncated")
        try:
            if isinstance(self._d, _ZLIB_TYPE):
                out = self._d.decompress(data, max(want, _CHUNK))
                self._tail = self._d.unconsumed_tail
            else:
                # Split big inputs so one call never inflates more than it must.
                out = self._d.decompress(data[:_ZSTD_INPUT])
                self._tail = data[_ZSTD_INPUT:]
        except Exception as e:  # zlib.error, zstandard.ZstdError
            raise CorruptLayer(f"{self._kind} layer is corrupt: {e}") from None
        self._out = memoryview(out)


@dataclass(frozen=True, slots=True)
class LayerDigests:
    digest: Digest  # of the blob as written (compressed)
    size: int  # bytes of the blob as written
    diff_id: Digest  # of the uncompressed tar
    tar_size: int
    compression: str


class LayerWriter(io.RawIOBase):
    """A writable file for tarfile: hashes the tar (diffID), compresses it,
    writes the result to `out` while hashing that too (digest)."""

    def __init__(
        self, out: BinaryIO | io.RawIOBase, compression: str = GZIP, level: int | None = None
    ):
        self._out = out
        self._compression = compression
        self._tar_hash = new_hasher()
        self._blob_hash = new_hasher()
        self._tar_size = 0
        self._size = 0
        self._compressor: zlib._Compress | None = None
        self._zstd: object | None = None
        if compression == GZIP:
            self._compressor = zlib.compressobj(
                6 if level is None else level, zlib.DEFLATED, 16 + zlib.MAX_WBITS
            )
        elif compression == ZSTD:
            import zstandard

            self._zstd = zstandard.ZstdCompressor(level=3 if level is None else level).compressobj()
        elif compression != NONE:
            raise ValueError(f"unknown compression {compression!r}")

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        data = bytes(b)
        self._tar_hash.update(data)
        self._tar_size += len(data)
        if self._compressor is not None:
            self._emit(self._compressor.compress(data))
        elif self._zstd is not None:
            self._emit(self._zstd.compress(data))  # type: ignore[attr-defined]
        else:
            self._emit(data)
        return len(data)

    def _emit(self, data: bytes) -> None:
        if data:
            self._blob_hash.update(data)
            self._size += len(data)
            self._out.write(data)

    def finish(self) -> LayerDigests:
        """Flush the compressor; returns both digests. Does not close `out`."""
        if self._compressor is not None:
            self._emit(self._compressor.flush())
            self._compressor = None
        elif self._zstd is not None:
            self._emit(self._zstd.flush())  # type: ignore[attr-defined]
            self._zstd = None
        return LayerDigests(
            digest=Digest.from_hasher(self._blob_hash),
            size=self._size,
            diff_id=Digest.from_hasher(self._tar_hash),
            tar_size=self._tar_size,
            compression=self._compression,
        )
