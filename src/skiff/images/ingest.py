"""One image-making operation (load, import, bootstrap, layout import) under a lease.

    with Ingest(store, meta, snapshotter, sweep_lock) as op:
        layer = op.put_stream(tar_member)          # blob of unknown digest, leased
        cfg = op.put_bytes(config_json)            # small blob, leased
        staged = op.stage(cfg, [layer, ...])       # unpack + manifest: still invisible
        op.publish([(staged, ["docker.io/library/x:1"])])   # ONE transaction: visible
    # leaving the block drops the lease and sweeps what it held that nothing uses

Crash safety: every blob and snapshot is written before the transaction that lets an
image refer to it, and is on the lease from the moment it exists (a blob of unknown
digest is committed and leased under `sweep_lock`, which garbage collection also
holds, so a sweep never sees it unleased). A kill -9 leaves a lease whose owner is
dead: the next collection ignores it and sweeps its content.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from skiff.content.types import write_blob
from skiff.errors import InvalidArgument
from skiff.images.types import ConfigDoc, Manifest
from skiff.images.unpack import unpack_layers
from skiff.metadata.db import CONTENT, SNAPSHOT, ImageRecord, LayerRecord
from skiff.oci import mediatypes as mt
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from types import TracebackType

    from skiff.content.types import Store
    from skiff.metadata.db import MetadataStore
    from skiff.snapshots.types import Snapshotter

INGEST_PREFIX = "skiff-op-"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    digest: Digest
    size: int


@dataclass(frozen=True)
class Staged:
    """An image whose blobs and snapshots all exist; not visible until published."""

    record: ImageRecord
    config: ConfigDoc


class Ingest:
    def __init__(
        self,
        store: Store,
        meta: MetadataStore,
        snapshotter: Snapshotter,
        sweep_lock: threading.Lock,
        collect: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.meta = meta
        self.snapshotter = snapshotter
        self._sweep_lock = sweep_lock
        self._collect = collect
        self.lease = ""
        self._n = 0

    def __enter__(self) -> Ingest:
        self.lease = self.meta.create_lease()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.meta.delete_lease(self.lease)
        if self._collect is not None:
            # Nothing of a refused load stays behind, nor the archive's stray files
            # (VERSION, json, ...) that a good load stored and never used.
            try:
                self._collect()
            except Exception:
                if exc_type is None:
                    raise

    def _ref(self) -> str:
        self._n += 1
        return f"{INGEST_PREFIX}{self.lease}-{self._n}"

    def put_stream(self, stream: BinaryIO | Iterable[bytes]) -> Blob:
        """A blob whose digest is known only once read."""
        w = self.store.writer(self._ref())
        try:
            read = getattr(stream, "read", None)
            if read is not None:
                while chunk := read(_CHUNK):
                    w.write(chunk)
            else:
                for chunk in stream:
                    w.write(chunk)
            size = w.offset
            with self._sweep_lock:
                digest = w.commit()
                self.meta.add_lease_resource(self.lease, CONTENT, str(digest))
        except BaseException:
            w.abort()
            raise
        return Blob(digest, size)

    def put_bytes(self, data: bytes) -> Blob:
        digest = Digest.from_bytes(data)
        self.meta.add_lease_resource(self.lease, CONTENT, str(digest))
        write_blob(self.store, self._ref(), [data], digest, len(data))
        return Blob(digest, len(data))

    def put_verified(self, stream: BinaryIO, digest: Digest, size: int) -> Blob:
        """Copy a blob whose digest is known; refused (VerifyFailed) if it differs."""
        self.meta.add_lease_resource(self.lease, CONTENT, str(digest))
        write_blob(self.store, self._ref(), stream, digest, size)
        return Blob(digest, size)

    def stage(
        self,
        config: Blob,
        layers: Sequence[Blob],
        *,
        manifest: Blob | None = None,
        manifest_media_type: str = mt.OCI_MANIFEST,
        layer_media_types: Sequence[str] | None = None,
        parent: str = "",
    ) -> Staged:
        """Unpack the layers (verifying each diffID) and write a manifest if the image
        came without one (a docker-archive from dockerd before 25)."""
        with self.store.open_blob(config.digest) as f:
            data = f.read(64 << 20)
        doc = ConfigDoc.parse(data)
        if len(doc.diff_ids) != len(layers):
            raise InvalidArgument(
                f"image config lists {len(doc.diff_ids)} layers, the image has {len(layers)}"
            )
        unpacked = unpack_layers(
            self.store,
            self.snapshotter,
            [la.digest for la in layers],
            doc.diff_ids,
            before=lambda chain: self.meta.add_lease_resource(self.lease, SNAPSHOT, str(chain)),
            known_size=lambda chain: self.meta.layer_size(str(chain)),
        )
        media_types = list(layer_media_types or [])
        if len(media_types) != len(layers):
            media_types = [self._layer_media_type(la) for la in layers]
        if manifest is None:
            m = Manifest(
                mt.OCI_MANIFEST,
                Descriptor(mt.OCI_CONFIG, config.digest, config.size),
                tuple(
                    Descriptor(media, la.digest, la.size)
                    for media, la in zip(media_types, layers, strict=True)
                ),
            )
            manifest = self.put_bytes(m.to_json())
            manifest_media_type = mt.OCI_MANIFEST
        record = ImageRecord(
            id=str(config.digest),
            manifest_digest=str(manifest.digest),
            manifest_media_type=manifest_media_type,
            parent=parent,
            size=sum(u.size for u in unpacked),
            created_at=time.time(),
            layers=tuple(
                LayerRecord(str(la.digest), media, str(d), str(u.chain_id), u.size)
                for la, media, d, u in zip(layers, media_types, doc.diff_ids, unpacked, strict=True)
            ),
        )
        return Staged(record, doc)

    def _layer_media_type(self, blob: Blob) -> str:
        with self.store.open_blob(blob.digest) as f:
            head = f.read(8)
        from skiff.archive.compression import detect

        return mt.layer_media_type(detect(head))

    def publish(self, images: Sequence[tuple[Staged, Sequence[str]]]) -> dict[str, str]:
        """Make every staged image visible, with its refs, in one transaction.
        Returns {ref: id of the image it pointed at before} for refs that moved."""
        moved: dict[str, str] = {}
        with self.meta.transaction():
            for staged, refs in images:
                for ref in refs:
                    old = self.meta.get_ref(ref)
                    if old is not None and old != staged.record.id:
                        moved[ref] = old
                self.meta.put_image(staged.record, refs)
        return moved


def new_lease_id() -> str:
    return uuid.uuid4().hex
