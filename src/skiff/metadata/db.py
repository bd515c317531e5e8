"""The image metadata in SQLite (`<data root>/metadata.db`, WAL): images, references, leases.

    images          id (sha256 of the config) -> manifest digest and media type, parent,
                    size (unpacked bytes), created_at (when it arrived here)
    image_layers    (image_id, idx) -> blob digest, media type, diff_id, chain_id, size
    refs            full normalised reference (docker.io/library/busybox:latest or
                    ...@sha256:<manifest>) -> image id
    leases          work in flight (a load, an import): id, owner pid, expiry
    lease_resources (lease_id, kind, name): a blob ("content", digest) or a snapshot
                    ("snapshot", chain id) the lease protects from garbage collection

Every state change is one transaction (`BEGIN IMMEDIATE ... COMMIT`), so a kill -9
leaves either the old or the new state. Blobs and snapshots are written *before* the
transaction that makes an image refer to them; until then a lease protects them, and
once the lease is gone whatever nothing refers to is garbage (see `metadata.gc`).

An image record is a GC root by itself: an untagged image lives until `rmi` or
`image prune` deletes its record, as in Docker.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from skiff.errors import NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    parent TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id),
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image_id);
CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS lease_resources (
    lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (lease_id, kind, name)
);
"""

CONTENT = "content"
SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True)
class LayerRecord:
    digest: str  # the blob, as stored (maybe compressed)
    media_type: str
    diff_id: str
    chain_id: str
    size: int  # bytes once unpacked


@dataclass(frozen=True, slots=True)
class ImageRecord:
    id: str
    manifest_digest: str
    manifest_media_type: str
    parent: str
    size: int
    created_at: float
    layers: tuple[LayerRecord, ...]

    @property
    def config_digest(self) -> str:
        return self.id


class MetadataStore:
    """Thread-safe: one connection, one lock; every write one transaction."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def transaction(self) -> _Transaction:
        """`with store.transaction():` groups writes into one atomic change."""
        return _Transaction(self._db, self._lock)

    # images

    def put_image(self, image: ImageRecord, refs: Iterable[str] = ()) -> None:
        """Make an image visible (and point `refs` at it) in one transaction.
        An image already stored keeps its record; the refs still move."""
        now = time.time()
        with self.transaction():
            exists = self._db.execute("SELECT 1 FROM images WHERE id=?", (image.id,)).fetchone()
            if exists is None:
                self._db.execute(
                    "INSERT INTO images (id, manifest_digest, manifest_media_type, parent, size,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        image.id,
                        image.manifest_digest,
                        image.manifest_media_type,
                        image.parent,
                        image.size,
                        image.created_at or now,
                    ),
                )
                self._db.executemany(
                    "INSERT INTO image_layers (image_id, idx, digest, media_type, diff_id,"
                    " chain_id, size) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (image.id, i, la.digest, la.media_type, la.diff_id, la.chain_id, la.size)
                        for i, la in enumerate(image.layers)
                    ],
                )
            for ref in refs:
                self._set_ref(ref, image.id, now)

    def get_image(self, image_id: str) -> ImageRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT id, manifest_digest, manifest_media_type, parent, size, created_at"
                " FROM images WHERE id=?",
                (image_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"No such image: {image_id}")
            return self._record(row)

    def images(self) -> list[ImageRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, manifest_digest, manifest_media_type, parent, size, created_at"
                " FROM images ORDER BY created_at DESC, id"
            ).fetchall()
            return [self._record(row) for row in rows]

    def image_ids_with_prefix(self, prefix: str) -> list[str]:
        """Ids starting with `sha256:<prefix>` (prefix is lower-case hex)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM images WHERE substr(id, 1, ?) = ? LIMIT 2",
                (7 + len(prefix), "sha256:" + prefix),
            ).fetchall()
            return [r[0] for r in rows]

    def children(self, image_id: str) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM images WHERE parent=?", (image_id,))
            return [r[0] for r in rows.fetchall()]

    def layer_size(self, chain_id: str) -> int | None:
        """The recorded unpacked size of a layer any image has at this chain id."""
        with self._lock:
            row = self._db.execute(
                "SELECT size FROM image_layers WHERE chain_id=? LIMIT 1", (chain_id,)
            ).fetchone()
            return int(row[0]) if row is not None else None

    def delete_image(self, image_id: str) -> None:
        """Delete an image and every reference to it, in one transaction."""
        with self.transaction():
            self._db.execute("DELETE FROM refs WHERE image_id=?", (image_id,))
            self._db.execute("DELETE FROM images WHERE id=?", (image_id,))

    def _record(self, row: tuple[str, str, str, str, int, float]) -> ImageRecord:
        layers = self._db.execute(
            "SELECT digest, media_type, diff_id, chain_id, size FROM image_layers"
            " WHERE image_id=? ORDER BY idx",
            (row[0],),
        ).fetchall()
        return ImageRecord(*row, layers=tuple(LayerRecord(*la) for la in layers))

    # references

    def set_ref(self, name: str, image_id: str) -> str | None:
        """Point `name` at `image_id`; returns the image it pointed at before, if any."""
        with self.transaction():
            return self._set_ref(name, image_id, time.time())

    def _set_ref(self, name: str, image_id: str, now: float) -> str | None:
        row = self._db.execute("SELECT image_id FROM refs WHERE name=?", (name,)).fetchone()
        self._db.execute(
            "INSERT INTO refs (name, image_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id,"
            " created_at=excluded.created_at",
            (name, image_id, now),
        )
        return row[0] if row is not None and row[0] != image_id else None

    def get_ref(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT image_id FROM refs WHERE name=?", (name,)).fetchone()
            return row[0] if row is not None else None

    def delete_ref(self, name: str) -> bool:
        with self.transaction():
            cur = self._db.execute("DELETE FROM refs WHERE name=?", (name,))
            return cur.rowcount > 0

    def refs_of(self, image_id: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM refs WHERE image_id=? ORDER BY name", (image_id,)
            )
            return [r[0] for r in rows.fetchall()]

    def all_refs(self) -> dict[str, list[str]]:
        """image id -> its references, sorted."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for name, image_id in self._db.execute(
                "SELECT name, image_id FROM refs ORDER BY name"
            ).fetchall():
                out.setdefault(image_id, []).append(name)
        return out

    def all_refs_flat(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM refs ORDER BY name")]

    # leases

    def create_lease(self, ttl: float = 24 * 3600) -> str:
        lease_id = uuid.uuid4().hex
        now = time.time()
        with self.transaction():
            self._db.execute(
                "INSERT INTO leases (id, pid, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (lease_id, os.getpid(), now, now + ttl),
            )
        return lease_id

    def add_lease_resource(self, lease_id: str, kind: str, name: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO lease_resources (lease_id, kind, name) VALUES (?, ?, ?)",
                (lease_id, kind, name),
            )

    def lease_resources(self, lease_id: str) -> list[tuple[str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, name FROM lease_resources WHERE lease_id=?", (lease_id,)
            )
            return [(r[0], r[1]) for r in rows.fetchall()]

    def delete_lease(self, lease_id: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM leases WHERE id=?", (lease_id,))

    def live_leases(self) -> list[str]:
        """Leases neither expired nor owned by a process that is gone (a kill -9
        mid-load leaves its lease behind; its content becomes garbage)."""
        now = time.time()
        with self.transaction():
            rows = self._db.execute("SELECT id, pid, expires_at FROM leases").fetchall()
            dead = [r[0] for r in rows if r[2] < now or not _alive(r[1])]
            self._db.executemany("DELETE FROM leases WHERE id=?", [(d,) for d in dead])
        return [r[0] for r in rows if r[0] not in dead]

    def leased(self) -> set[tuple[str, str]]:
        """(kind, name) of everything live leases protect."""
        out: set[tuple[str, str]] = set()
        for lease_id in self.live_leases():
            out.update(self.lease_resources(lease_id))
        return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Transaction:
    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock
        self._outer = False

    def __enter__(self) -> None:
        self._lock.acquire()
        self._outer = not self._db.in_transaction
        if self._outer:
            self._db.execute("BEGIN IMMEDIATE")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._outer:
                self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self._lock.release()
