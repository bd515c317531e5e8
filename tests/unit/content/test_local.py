"""What only the on-disk store can show: layout, permissions, a writer killed mid-way."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from skiff.content import write_blob
from skiff.content.local import LocalStore
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    from pathlib import Path


def test_layout_and_read_only_blob(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = write_blob(store, "r", [b"abc"])
    path = tmp_path / "blobs" / "sha256" / d.hex
    assert store.blob_path(d) == path
    assert path.read_bytes() == b"abc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert os.listdir(tmp_path / "ingest") == []


def test_killed_writer_resumes(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    digest = Digest.from_bytes(data)
    pid = os.fork()
    if pid == 0:  # the child writes part of the blob, then dies without closing
        try:
            w = LocalStore(tmp_path).writer("layer", digest, len(data))
            w.write(data[:123_456])
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    store = LocalStore(tmp_path)
    [status] = store.statuses()
    assert status.offset == 123_456
    w = store.writer("layer", digest, len(data))
    assert w.offset == 123_456
    w.write(data[123_456:])
    assert w.commit() == digest
    assert store.blob_path(digest).read_bytes() == data


def test_stray_files_are_not_content(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "blobs" / "sha256").mkdir()
    (tmp_path / "blobs" / "sha256" / "junk").write_text("x")
    assert list(store.walk()) == []


def test_truncated_ingest_longer_than_expected_restarts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    w = store.writer("r", None, None)
    w.write(b"x" * 10)
    w.close()
    w = store.writer("r", None, 5)
    assert w.offset == 0
    w.abort()
