"""The on-disk content store (containerd's `content/local` in Python).

    <root>/blobs/<alg>/<hex>            committed blob, mode 0444
    <root>/ingest/<sha256(ref)>/data    bytes received so far
    <root>/ingest/<sha256(ref)>/ref     JSON: ref, expected digest and size, start time

The ingest folder is named by the hash of the ref, so any ref string is a safe
name. A writer holds `flock` on its data file: a second writer on the same ref,
in this process or another, gets IngestLocked, and the lock dies with a killed
process, so the next writer resumes. Commit verifies size then digest, fsyncs,
renames the data file into blobs/ (atomic on one filesystem) and fsyncs the
folder: a blob path that exists always holds verified content.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
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
from skiff.oci.digest import SHA256, Digest, InvalidDigest, new_hasher

if TYPE_CHECKING:
    from _hashlib import HASH
    from collections.abc import Iterator
    from types import TracebackType

_CHUNK = 1 << 20


class LocalStore:
    """Provider + Ingester + Manager over a folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._ingest = self.root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)

    # Provider

    def blob_path(self, digest: Digest) -> Path:
        """Where a blob lives (whether or not it exists); for sendfile and friends."""
        return self._blobs / digest.algorithm / digest.encoded

    def open_blob(self, digest: Digest) -> BinaryIO:
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def info(self, digest: Digest) -> Info:
        try:
            st = os.stat(self.blob_path(digest))
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        return Info(digest, st.st_size, st.st_mtime)

    # Ingester

    def writer(
        self, ref: str, expected: Digest | None = None, expected_size: int | None = None
    ) -> LocalWriter:
        if not ref:
            raise ValueError("ref must not be empty")
        if expected is not None and self.blob_path(expected).exists():
            raise BlobExists(expected)
        folder = self._ingest_dir(ref)
        folder.mkdir(exist_ok=True)
        fd = os.open(folder / "data", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IngestLocked(ref) from None
            meta = _read_meta(folder / "ref")
            fresh = meta is None or meta.get("ref") != ref
            if not fresh and meta is not None and expected is not None:
                fresh = meta.get("expected") not in (None, str(expected))
            if fresh:
                os.ftruncate(fd, 0)
                _write_meta(folder / "ref", ref, expected, expected_size)
            algorithm = expected.algorithm if expected is not None else SHA256
            hasher = new_hasher(algorithm)
            offset = _rehash(fd, hasher)
            if expected_size is not None and offset > expected_size:
                os.ftruncate(fd, 0)
                hasher, offset = new_hasher(algorithm), 0
            os.lseek(fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return LocalWriter(self, ref, folder, fd, hasher, offset, expected, expected_size)

    def _ingest_dir(self, ref: str) -> Path:
        return self._ingest / hashlib.sha256(ref.encode()).hexdigest()

    # Manager

    def walk(self) -> Iterator[Info]:
        for alg_dir in sorted(self._blobs.iterdir()):
            for entry in sorted(os.scandir(alg_dir), key=lambda e: e.name):
                try:
                    digest = Digest(alg_dir.name, entry.name)
                    st = entry.stat(follow_symlinks=False)
                except (InvalidDigest, FileNotFoundError):
                    continue  # a stray file is not content
                yield Info(digest, st.st_size, st.st_mtime)

    def delete(self, digest: Digest) -> None:
        try:
            os.unlink(self.blob_path(digest))
        except FileNotFoundError:
            raise BlobNotFound(digest) from None

    def statuses(self) -> list[Status]:
        out = []
        for folder in sorted(self._ingest.iterdir()):
            meta = _read_meta(folder / "ref")
            try:
                st = os.stat(folder / "data")
            except FileNotFoundError:
                continue
            if meta is None:
                continue
            expected, total, started = meta.get("expected"), meta.get("total"), meta.get("started")
            out.append(
                Status(
                    ref=str(meta["ref"]),
                    offset=st.st_size,
                    total=total if isinstance(total, int) else None,
                    expected=Digest.parse(expected) if isinstance(expected, str) else None,
                    started_at=started if isinstance(started, float) else st.st_mtime,
                    updated_at=st.st_mtime,
                )
            )
        return out

    def abort(self, ref: str) -> None:
        folder = self._ingest_dir(ref)
        if not folder.exists():
            raise NotFound(f"ingest ref {ref!r}: not found")
        shutil.rmtree(folder, ignore_errors=True)


class LocalWriter:
    def __init__(
        self,
        store: LocalStore,
        ref: str,
        folder: Path,
        fd: int,
        hasher: HASH,
        offset: int,
        expected: Digest | None,
        expected_size: int | None,
    ) -> None:
        self._store = store
        self._ref = ref
        self._folder = folder
        self._fd: int | None = fd
        self._hasher = hasher
        self._offset = offset
        self._expected = expected
        self._expected_size = expected_size

    @property
    def ref(self) -> str:
        return self._ref

    @property
    def offset(self) -> int:
        return self._offset

    def write(self, data: bytes) -> int:
        fd = self._require_open()
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            self._hasher.update(view[:n])
            self._offset += n
            view = view[n:]
        return len(data)

    def digest(self) -> Digest:
        return Digest.from_hasher(self._hasher.copy())

    def commit(self, expected: Digest | None = None, size: int | None = None) -> Digest:
        fd = self._require_open()
        expected = expected or self._expected
        size = self._expected_size if size is None else size
        if size is not None and size != self._offset:
            self.abort()
            raise VerifyFailed(f"ref {self._ref!r}: expected {size} bytes, got {self._offset}")
        if expected is not None and expected.algorithm != self._hasher.name:
            actual = Digest.from_chunks(_read_all(fd), expected.algorithm)
        else:
            actual = self.digest()
        if expected is not None and actual != expected:
            self.abort()
            raise VerifyFailed(f"ref {self._ref!r}: expected {expected}, got {actual}")
        target = self._store.blob_path(actual)
        if target.exists():
            self.abort()  # someone else stored it first: same bytes, nothing to do
            return actual
        os.fsync(fd)
        os.fchmod(fd, 0o444)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self._folder / "data", target)
        _fsync_dir(target.parent)
        self.abort()  # drop the ingest folder and the lock
        return actual

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abort(self) -> None:
        self.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def _require_open(self) -> int:
        if self._fd is None:
            raise ValueError(f"writer for ref {self._ref!r} is closed")
        return self._fd

    def __enter__(self) -> LocalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _rehash(fd: int, hasher: HASH) -> int:
    os.lseek(fd, 0, os.SEEK_SET)
    total = 0
    for chunk in _read_all(fd):
        hasher.update(chunk)
        total += len(chunk)
    return total


def _read_all(fd: int) -> Iterator[bytes]:
    pos = 0
    while chunk := os.pread(fd, _CHUNK, pos):
        pos += len(chunk)
        yield chunk


def _read_meta(path: Path) -> dict[str, object] | None:
    try:
        meta = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return meta if isinstance(meta, dict) and isinstance(meta.get("ref"), str) else None


def _write_meta(path: Path, ref: str, expected: Digest | None, total: int | None) -> None:
    meta = {
        "ref": ref,
        "expected": str(expected) if expected else None,
        "total": total,
        "started": time.time(),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(meta))
    os.rename(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on folders
        if e.errno not in (errno.EINVAL, errno.EROFS):
            raise
    finally:
        os.close(fd)
