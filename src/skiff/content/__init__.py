"""Content store: blobs by digest, ingested by resumable writers, verified on commit.

See `types` for the protocols and `local.LocalStore` for the on-disk store:

    <root>/blobs/<alg>/<hex>       committed blobs, read-only, verified
    <root>/ingest/<sha256(ref)>/   data (partial bytes), ref (the ref and its expectations)
"""

from __future__ import annotations

from skiff.content.types import (
    BlobExists,
    BlobNotFound,
    Info,
    Ingester,
    IngestLocked,
    Manager,
    Provider,
    Status,
    Store,
    VerifyFailed,
    Writer,
    read_blob,
    write_blob,
)

__all__ = [
    "BlobExists",
    "BlobNotFound",
    "Info",
    "IngestLocked",
    "Ingester",
    "Manager",
    "Provider",
    "Status",
    "Store",
    "VerifyFailed",
    "Writer",
    "read_blob",
    "write_blob",
]
