"""The content store's small protocols, as containerd composes them.

    Provider  open_blob(digest), info(digest)       read verified blobs
    Ingester  writer(ref, expected, expected_size)  stream new blobs in
    Manager   walk(), delete(digest), statuses(), abort(ref)
    Store     all three

A function that only reads blobs takes a `Provider`. A blob becomes visible
to `Provider` only after its writer's `commit()` verified its size and digest.
`ref` names one ingest (for example `layer-sha256:abc...`); writing to a ref
that is still open elsewhere raises `IngestLocked`, and opening a writer on a
ref whose earlier writer was closed (or killed) resumes after its last byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Protocol

from skiff.errors import Conflict, InvalidArgument, NotFound, Unavailable

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import TracebackType

    from skiff.oci.digest import Digest


class BlobNotFound(NotFound):
    def __init__(self, digest: Digest) -> None:
        super().__init__(f"content digest {digest}: not found")
        self.digest = digest


class BlobExists(Conflict):
    """`writer()` was asked for content the store already holds (not a failure)."""

    def __init__(self, digest: Digest) -> None:
        super().__init__(f"content {digest}: already exists")
        self.digest = digest


class IngestLocked(Unavailable):
    def __init__(self, ref: str) -> None:
        super().__init__(f"ref {ref!r} is locked: another writer has it open")
        self.ref = ref


class VerifyFailed(InvalidArgument):
    """Committed bytes did not match the expected size or digest; nothing was stored."""


@dataclass(frozen=True, slots=True)
class Info:
    digest: Digest
    size: int
    created_at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class Status:
    """An ingest in progress (or abandoned): how far it got and what it expects."""

    ref: str
    offset: int
    total: int | None
    expected: Digest | None
    started_at: float
    updated_at: float


class Writer(Protocol):
    """Streams one blob in; hashes as it writes. Close keeps the bytes for a resume."""

    @property
    def ref(self) -> str: ...

    @property
    def offset(self) -> int:
        """Bytes held so far, including those found on resume."""
        ...

    def write(self, data: bytes) -> int: ...

    def digest(self) -> Digest:
        """The digest of the bytes written so far."""
        ...

    def commit(self, expected: Digest | None = None, size: int | None = None) -> Digest:
        """Verify, then make the blob visible atomically. Falls back to the
        expected digest and size given to `writer()`. On a mismatch the
        ingest is discarded and VerifyFailed raised. Committing content that
        already exists is a no-op that returns its digest."""
        ...

    def close(self) -> None:
        """Release the ref; the bytes stay in the ingest for a later resume."""
        ...

    def abort(self) -> None:
        """Release the ref and delete the ingest."""
        ...

    def __enter__(self) -> Writer: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Provider(Protocol):
    def open_blob(self, digest: Digest) -> BinaryIO:
        """A binary file object over a verified blob; raises BlobNotFound."""
        ...

    def info(self, digest: Digest) -> Info: ...


class Ingester(Protocol):
    def writer(
        self, ref: str, expected: Digest | None = None, expected_size: int | None = None
    ) -> Writer:
        """Open (or resume) the ingest `ref`. Raises BlobExists when `expected`
        is already stored and IngestLocked when `ref` is open elsewhere."""
        ...


class Manager(Protocol):
    def info(self, digest: Digest) -> Info: ...

    def walk(self) -> Iterator[Info]:
        """Every committed blob, in no particular order."""
        ...

    def delete(self, digest: Digest) -> None:
        """Remove a blob; raises BlobNotFound if it is not there."""
        ...

    def statuses(self) -> list[Status]:
        """Ingests in progress or abandoned."""
        ...

    def abort(self, ref: str) -> None:
        """Delete the ingest `ref`; raises NotFound if there is none."""
        ...


class Store(Provider, Ingester, Manager, Protocol):
    pass


def write_blob(
    ingester: Ingester,
    ref: str,
    chunks: Iterable[bytes] | BinaryIO,
    expected: Digest | None = None,
    size: int | None = None,
) -> Digest:
    """Write a whole blob; content already stored is a cheap no-op.

    `chunks` is an iterable of bytes or a binary file object read in 1 MiB
    pieces. On resume, the bytes the ingest already holds are skipped from
    the source, so a restarted copy does not write them twice.
    """
    try:
        w = ingester.writer(ref, expected, size)
    except BlobExists as e:
        return e.digest
    try:
        skip = w.offset
        for chunk in _iter_chunks(chunks):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            w.write(chunk[skip:] if skip else chunk)
            skip = 0
        return w.commit(expected, size)
    except BaseException:
        w.close()
        raise


def read_blob(provider: Provider, digest: Digest, max_size: int = 64 << 20) -> bytes:
    """A small blob (manifest, config) in memory; refuses blobs over `max_size`."""
    info = provider.info(digest)
    if info.size > max_size:
        raise InvalidArgument(f"content {digest} is {info.size} bytes, over {max_size}")
    with provider.open_blob(digest) as f:
        return f.read()


def _iter_chunks(source: Iterable[bytes] | BinaryIO) -> Iterator[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        yield from source
        return
    while chunk := read(1 << 20):
        yield chunk
