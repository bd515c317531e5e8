"""One contract, two stores: the on-disk LocalStore and the in-memory fake."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest

from skiff.content import (
    BlobExists,
    BlobNotFound,
    IngestLocked,
    Store,
    VerifyFailed,
    read_blob,
    write_blob,
)
from skiff.content.local import LocalStore
from skiff.errors import NotFound
from skiff.oci.digest import Digest
from skiff.testing.content import MemoryStore

if TYPE_CHECKING:
    from pathlib import Path

DATA = b"hello, layer" * 1000
DIGEST = Digest.from_bytes(DATA)


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "content")
    return MemoryStore()


def test_write_commit_read(store: Store) -> None:
    with store.writer("ref1", DIGEST, len(DATA)) as w:
        w.write(DATA[:100])
        w.write(DATA[100:])
        assert w.offset == len(DATA)
        assert w.digest() == DIGEST
        assert w.commit() == DIGEST
    assert store.info(DIGEST).size == len(DATA)
    with store.open_blob(DIGEST) as f:
        assert f.read() == DATA
    assert read_blob(store, DIGEST) == DATA
    assert [i.digest for i in store.walk()] == [DIGEST]
    assert store.statuses() == []


def test_commit_without_expectations_names_the_blob(store: Store) -> None:
    w = store.writer("ref")
    w.write(b"abc")
    assert w.commit() == Digest.from_bytes(b"abc")


def test_blob_invisible_until_commit(store: Store) -> None:
    w = store.writer("ref", DIGEST, len(DATA))
    w.write(DATA)
    with pytest.raises(BlobNotFound):
        store.info(DIGEST)
    with pytest.raises(BlobNotFound):
        store.open_blob(DIGEST)
    assert list(store.walk()) == []
    w.commit()
    assert store.info(DIGEST).digest == DIGEST


def test_digest_mismatch_stores_nothing(store: Store) -> None:
    wrong = Digest.from_bytes(b"other")
    w = store.writer("ref", wrong)
    w.write(DATA)
    with pytest.raises(VerifyFailed, match="expected sha256:"):
        w.commit()
    assert list(store.walk()) == []
    assert store.statuses() == []


def test_size_mismatch_stores_nothing(store: Store) -> None:
    w = store.writer("ref", DIGEST, len(DATA) + 1)
    w.write(DATA)
    with pytest.raises(VerifyFailed, match="bytes"):
        w.commit()
    assert list(store.walk()) == []


def test_resume_continues_and_rehashes(store: Store) -> None:
    w = store.writer("ref", DIGEST, len(DATA))
    w.write(DATA[:5000])
    w.close()
    [status] = store.statuses()
    assert (status.ref, status.offset, status.total, status.expected) == (
        "ref",
        5000,
        len(DATA),
        DIGEST,
    )
    w = store.writer("ref", DIGEST, len(DATA))
    assert w.offset == 5000
    w.write(DATA[5000:])
    assert w.commit() == DIGEST
    with store.open_blob(DIGEST) as f:
        assert f.read() == DATA


def test_resume_with_other_expected_digest_starts_over(store: Store) -> None:
    w = store.writer("ref", Digest.from_bytes(b"zzz"))
    w.write(b"zz")
    w.close()
    w = store.writer("ref", DIGEST)
    assert w.offset == 0
    w.abort()


def test_write_blob_skips_bytes_already_ingested(store: Store) -> None:
    w = store.writer("ref", DIGEST)
    w.write(DATA[:777])
    w.close()
    assert write_blob(store, "ref", io.BytesIO(DATA), DIGEST, len(DATA)) == DIGEST
    assert read_blob(store, DIGEST) == DATA


def test_existing_blob_is_cheap_noop(store: Store) -> None:
    write_blob(store, "a", [DATA], DIGEST)
    with pytest.raises(BlobExists):
        store.writer("b", DIGEST)
    assert write_blob(store, "b", [b"never read"], DIGEST) == DIGEST
    # Two writers racing on different refs for the same content both succeed.
    w = store.writer("c")
    w.write(DATA)
    assert w.commit() == DIGEST
    assert [i.digest for i in store.walk()] == [DIGEST]


def test_ref_is_locked_while_open(store: Store) -> None:
    w = store.writer("ref")
    with pytest.raises(IngestLocked):
        store.writer("ref")
    w.close()
    store.writer("ref").abort()


def test_abort_removes_ingest(store: Store) -> None:
    w = store.writer("ref")
    w.write(b"partial")
    w.abort()
    assert store.statuses() == []
    assert store.writer("ref").offset == 0


def test_manager_abort_and_delete(store: Store) -> None:
    w = store.writer("ref")
    w.write(b"x")
    w.close()
    store.abort("ref")
    assert store.statuses() == []
    with pytest.raises(NotFound):
        store.abort("ref")
    write_blob(store, "r", [DATA], DIGEST)
    store.delete(DIGEST)
    with pytest.raises(BlobNotFound):
        store.delete(DIGEST)
    assert list(store.walk()) == []


def test_closed_writer_refuses_writes(store: Store) -> None:
    w = store.writer("ref")
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(b"x")


def test_sha512_content(store: Store) -> None:
    d = Digest.from_bytes(DATA, "sha512")
    assert write_blob(store, "r", [DATA], d) == d
    assert read_blob(store, d) == DATA


def test_read_blob_size_cap(store: Store) -> None:
    write_blob(store, "r", [DATA], DIGEST)
    with pytest.raises(Exception, match="over"):
        read_blob(store, DIGEST, max_size=10)
