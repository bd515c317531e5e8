"""The overlayfs snapshotter.

    <root>/metadata.db     SQLite: one row per snapshot (id, key, kind, parent id, labels, usage)
    <root>/<id>/fs         the snapshot's tree (an overlay upperdir, or a lowerdir once committed)
    <root>/<id>/work       overlay workdir (active snapshots)

Why SQLite rather than JSON files: commit renames a key and changes its kind,
remove must check for children, and prepare must check the parent, all
atomically; one SQLite transaction does each, with locking across processes and
crash safety from its journal, where JSON files would need our own lock and
multi-file atomicity. Folders are named by the row id, so commit never renames
a folder and a key can be any string.

Crash safety (kill -9 at any point): the invariant is "every row has its
folder". prepare creates the folder *before* it commits the row; remove
deletes the row *before* the folder. A crash can therefore leave only folders
without rows (orphans), which `cleanup()`, run on open, deletes.

Overlay mounts are made with index=off, redirect_dir=off and metacopy=off so
that an upper folder is a plain, self-describing diff (see archive.diff).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.snapshots.types import Info, Kind, Mount, Usage

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    key      TEXT NOT NULL UNIQUE,
    kind     TEXT NOT NULL,
    parent   INTEGER REFERENCES snapshots(id),
    created  REAL NOT NULL,
    updated  REAL NOT NULL,
    labels   TEXT NOT NULL DEFAULT '{}',
    size     INTEGER,
    inodes   INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent);
"""

# id, key, kind, parent id, created, updated, labels (JSON), size, inodes
_Row = tuple[int, str, str, int | None, float, float, str, int | None, int | None]

_OVERLAY_OPTIONS = ("index=off", "redirect_dir=off", "metacopy=off")


class SnapshotNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"snapshot {key}: not found")


class OverlaySnapshotter:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.root / "metadata.db", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self.cleanup()

    def close(self) -> None:
        self._db.close()

    # Snapshotter

    def prepare(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        with self._lock:
            row = self._row(key)
            if row[2] != Kind.ACTIVE.value:
                raise InvalidArgument(f"snapshot {key} is not active: only active ones commit")
            usage = _disk_usage(self._fs(row[0]))  # before the transaction: it may be slow
            with self._tx():
                if self._find(name) is not None:
                    raise Conflict(f"snapshot {name}: already exists")
                merged = {**json.loads(row[6]), **(labels or {})}
                self._db.execute(
                    "UPDATE snapshots SET key=?, kind=?, updated=?, labels=?, size=?, inodes=?"
                    " WHERE id=?",
                    (
                        name,
                        Kind.COMMITTED.value,
                        time.time(),
                        json.dumps(merged),
                        usage.size,
                        usage.inodes,
                        row[0],
                    ),
                )

    def mounts(self, key: str) -> list[Mount]:
        with self._lock:
            row = self._row(key)
            if row[2] == Kind.COMMITTED.value:
                raise InvalidArgument(f"snapshot {key} is committed: prepare or view it to mount")
            return self._mounts(row[0], Kind(row[2]), self._chain(row[3]))

    def remove(self, key: str) -> None:
        with self._lock:
            with self._tx():
                row = self._row(key)
                child = self._db.execute(
                    "SELECT key FROM snapshots WHERE parent=? LIMIT 1", (row[0],)
                ).fetchone()
                if child is not None:
                    raise Conflict(f"snapshot {key} has children (e.g. {child[0]})")
                self._db.execute("DELETE FROM snapshots WHERE id=?", (row[0],))
            self._remove_dir(row[0])

    def stat(self, key: str) -> Info:
        with self._lock:
            return self._info(self._row(key))

    def walk(self) -> Iterator[Info]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM snapshots ORDER BY id").fetchall()
            infos = [self._info(r) for r in rows]
        yield from infos

    def usage(self, key: str) -> Usage:
        with self._lock:
            row = self._row(key)
        if row[2] == Kind.COMMITTED.value and row[7] is not None:
            return Usage(row[7], row[8] or 0)
        return _disk_usage(self._fs(row[0]))

    # What only an on-disk snapshotter has

    def cleanup(self) -> list[str]:
        """Delete folders that no row owns (left by a crash); returns their names."""
        with self._lock:
            ids = {str(r[0]) for r in self._db.execute("SELECT id FROM snapshots")}
            removed = []
            for entry in os.scandir(self.root):
                ours = entry.name.isdigit() or entry.name.startswith(".tmp-")
                if ours and entry.name not in ids and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                    removed.append(entry.name)
            return removed

    def fs_dir(self, key: str) -> Path:
        with self._lock:
            return self._fs(self._row(key)[0])

    # Internals

    def _create(
        self, kind: Kind, key: str, parent: str | None, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        with self._lock:
            with self._tx():
                if self._find(key) is not None:
                    raise Conflict(f"snapshot {key}: already exists")
                parent_id = None
                if parent:
                    prow = self._row(parent)
                    if prow[2] != Kind.COMMITTED.value:
                        raise InvalidArgument(f"parent {parent} is not a committed snapshot")
                    parent_id = prow[0]
                now = time.time()
                cur = self._db.execute(
                    "INSERT INTO snapshots (key, kind, parent, created, updated, labels)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key, kind.value, parent_id, now, now, json.dumps(dict(labels or {}))),
                )
                sid = cur.lastrowid
                assert sid is not None
                self._make_dir(sid, kind)
                chain = self._chain(parent_id)
            return self._mounts(sid, kind, chain)

    def _make_dir(self, sid: int, kind: Kind) -> None:
        # Build under a temporary name and rename: <id> is either absent or whole.
        final = self.root / str(sid)
        if final.exists():
            shutil.rmtree(final)  # an orphan from a crash whose id SQLite gave out again
        tmp = self.root / f".tmp-{sid}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(0o700)
        (tmp / "fs").mkdir(0o755)
        if kind == Kind.ACTIVE:
            (tmp / "work").mkdir(0o700)
        os.rename(tmp, final)
        _fsync_dir(self.root)

    def _remove_dir(self, sid: int) -> None:
        final = self.root / str(sid)
        doomed = self.root / f".tmp-rm-{sid}-{time.monotonic_ns()}"
        try:
            os.rename(final, doomed)
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def _mounts(self, sid: int, kind: Kind, chain: list[int]) -> list[Mount]:
        fs = str(self._fs(sid))
        lowers = [str(self._fs(p)) for p in chain]
        if kind == Kind.ACTIVE:
            if not lowers:
                return [Mount("bind", fs, ("rbind", "rw"))]
            work = str(self.root / str(sid) / "work")
            options = (
                f"workdir={work}",
                f"upperdir={fs}",
                f"lowerdir={':'.join(lowers)}",
                *_OVERLAY_OPTIONS,
            )
            return [Mount("overlay", "overlay", options)]
        if not lowers:
            return [Mount("bind", fs, ("rbind", "ro"))]
        if len(lowers) == 1:
            return [Mount("bind", lowers[0], ("rbind", "ro"))]
        return [Mount("overlay", "overlay", (f"lowerdir={':'.join(lowers)}", *_OVERLAY_OPTIONS))]

    def _chain(self, parent_id: int | None) -> list[int]:
        """Ids from the parent down to the base layer (top first)."""
        chain = []
        while parent_id is not None:
            chain.append(parent_id)
            row = self._db.execute("SELECT parent FROM snapshots WHERE id=?", (parent_id,))
            parent_id = row.fetchone()[0]
        return chain

    def _fs(self, sid: int) -> Path:
        return self.root / str(sid) / "fs"

    def _find(self, key: str) -> _Row | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM snapshots WHERE key=?", (key,))
        return row.fetchone()  # type: ignore[no-any-return]

    def _row(self, key: str) -> _Row:
        row = self._find(key)
        if row is None:
            raise SnapshotNotFound(key)
        return row

    def _info(self, row: _Row) -> Info:
        parent = None
        if row[3] is not None:
            parent = self._db.execute("SELECT key FROM snapshots WHERE id=?", (row[3],)).fetchone()[
                0
            ]
        return Info(
            name=row[1],
            kind=Kind(row[2]),
            parent=parent,
            created_at=row[4],
            updated_at=row[5],
            labels=json.loads(row[6]),
        )

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


_COLUMNS = "id, key, kind, parent, created, updated, labels, size, inodes"


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _disk_usage(path: Path) -> Usage:
    size = inodes = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            inodes += 1
            size += st.st_blocks * 512
    return Usage(size, inodes)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EROFS):
            raise
    finally:
        os.close(fd)
