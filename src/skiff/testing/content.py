"""An in-memory content store with the same behaviour as `content.local.LocalStore`.

The conformance suite in tests/unit/content runs against both, so a service
test that uses this fake exercises the same contract.
"""

from __future__ import annotations

import hashlib
import io
import time
from typing import TYPE_CHECKING, BinaryIO

from skiff.content.types import (
    BlobExists,
    BlobNotFound,
    Info,
    IngestLocked,
    Status,
    VerifyFailed,
)
from skiff.errors import NotFound
from skiff.oci.digest import SHA256, Digest, new_hasher

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType


class _Ingest:
    def __init__(self, ref: str, expected: Digest | None, total: int | None) -> None:
        self.ref = ref
        self.expected = expected
        self.total = total
        self.data = bytearray()
        self.started_at = self.updated_at = time.time()
        self.locked = False


class MemoryStore:
    def __init__(self) -> None:
        self.blobs: dict[Digest, tuple[bytes, float]] = {}
        self.ingests: dict[str, _Ingest] = {}

    def open_blob(self, digest: Digest) -> BinaryIO:
        try:
            return io.BytesIO(self.blobs[digest][0])
        except KeyError:
            raise BlobNotFound(digest) from None

    def info(self, digest: Digest) -> Info:
        try:
            data, created = self.blobs[digest]
        except KeyError:
            raise BlobNotFound(digest) from None
        return Info(digest, len(data), created)

    def writer(
        self, ref: str, expected: Digest | None = None, expected_size: int | None = None
    ) -> MemoryWriter:
        if not ref:
            raise ValueError("ref must not be empty")
        if expected is not None and expected in self.blobs:
            raise BlobExists(expected)
        ingest = self.ingests.get(ref)
        if ingest is not None and ingest.locked:
            raise IngestLocked(ref)
        if ingest is None or (expected is not None and ingest.expected not in (None, expected)):
            ingest = self.ingests[ref] = _Ingest(ref, expected, expected_size)
        if expected_size is not None and len(ingest.data) > expected_size:
            ingest.data.clear()
        ingest.locked = True
        return MemoryWriter(self, ingest, expected, expected_size)

    def walk(self) -> Iterator[Info]:
        for digest, (data, created) in sorted(self.blobs.items()):
            yield Info(digest, len(data), created)

    def delete(self, digest: Digest) -> None:
        if self.blobs.pop(digest, None) is None:
            raise BlobNotFound(digest)

    def statuses(self) -> list[Status]:
        return [
            Status(i.ref, len(i.data), i.total, i.expected, i.started_at, i.updated_at)
            for i in self.ingests.values()
        ]

    def abort(self, ref: str) -> None:
        if self.ingests.pop(ref, None) is None:
            raise NotFound(f"ingest ref {ref!r}: not found")


class MemoryWriter:
    def __init__(
        self,
        store: MemoryStore,
        ingest: _Ingest,
        expected: Digest | None,
        expected_size: int | None,
    ) -> None:
        self._store = store
        self._ingest: _Ingest | None = ingest
        self._ref = ingest.ref
        self._expected = expected
        self._expected_size = expected_size
        algorithm = expected.algorithm if expected is not None else SHA256
        self._hasher = new_hasher(algorithm)
        self._hasher.update(ingest.data)

    @property
    def ref(self) -> str:
        return self._ref

    @property
    def offset(self) -> int:
        return len(self._require_open().data)

    def write(self, data: bytes) -> int:
        ingest = self._require_open()
        ingest.data += data
        ingest.updated_at = time.time()
        self._hasher.update(data)
        return len(data)

    def digest(self) -> Digest:
        return Digest.from_hasher(self._hasher.copy())

    def commit(self, expected: Digest | None = None, size: int | None = None) -> Digest:
        ingest = self._require_open()
        expected = expected or self._expected
        size = self._expected_size if size is None else size
        data = bytes(ingest.data)
        if size is not None and size != len(data):
            self.abort()
            raise VerifyFailed(f"ref {self._ref!r}: expected {size} bytes, got {len(data)}")
        algorithm = expected.algorithm if expected is not None else SHA256
        actual = Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
        if expected is not None and actual != expected:
            self.abort()
            raise VerifyFailed(f"ref {self._ref!r}: expected {expected}, got {actual}")
        self._store.blobs.setdefault(actual, (data, time.time()))
        self.abort()
        return actual

    def close(self) -> None:
        if self._ingest is not None:
            self._ingest.locked = False
            self._ingest = None

    def abort(self) -> None:
        if self._ingest is not None:
            self._store.ingests.pop(self._ref, None)
        self.close()

    def _require_open(self) -> _Ingest:
        if self._ingest is None:
            raise ValueError(f"writer for ref {self._ref!r} is closed")
        return self._ingest

    def __enter__(self) -> MemoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
