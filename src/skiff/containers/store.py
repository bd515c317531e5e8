"""The container records on disk: one SQLite table, one row per container, one
transaction per change (`<data root>/containers.db`, WAL)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any


class ContainerStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = sqlite3.connect(os.fspath(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS containers"
            " (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, doc TEXT NOT NULL)"
        )

    def load(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM containers").fetchall()
        return [json.loads(row[0]) for row in rows]

    def put(self, doc: dict[str, Any]) -> None:
        data = json.dumps(doc, separators=(",", ":"))
        with self._lock:
            self._db.execute(
                "INSERT INTO containers (id, name, doc) VALUES (?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET name=excluded.name, doc=excluded.doc",
                (doc["id"], doc["name"], data),
            )

    def delete(self, container_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM containers WHERE id=?", (container_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
