"""The build cache on disk: step key -> image id, one indexed SQLite table.

    <data root>/builder/cache.db    cache(key PRIMARY KEY, image_id)

A probe is one primary-key lookup; a put is one small transaction (WAL, synchronous
NORMAL: no fsync per step; a crash may lose the last entries, which only means those
steps run again). Entries keep their insertion order, so `prune` hands back image ids
children first when reversed. A `cache.json` beside it (the format before this one) is
taken in once and removed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading


class SqliteCache:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()  # builds run in worker threads
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, image_id TEXT NOT NULL)"
        )
        self._adopt_json(os.path.join(os.path.dirname(path), "cache.json"))

    def _adopt_json(self, old: str) -> None:
        try:
            with open(old, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            with self._lock, self._db:
                self._db.executemany(
                    "INSERT OR IGNORE INTO cache (key, image_id) VALUES (?, ?)",
                    [(str(k), str(v)) for k, v in data.items()],
                )
        os.unlink(old)

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT image_id FROM cache WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def put(self, key: str, image_id: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO cache (key, image_id) VALUES (?, ?)", (key, image_id)
            )

    def prune(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT image_id FROM cache ORDER BY rowid").fetchall()
            self._db.execute("DELETE FROM cache")
        return list(dict.fromkeys(str(r[0]) for r in rows))

    def close(self) -> None:
        with self._lock:
            self._db.close()
