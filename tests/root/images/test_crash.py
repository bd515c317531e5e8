"""kill -9 during a load: the store stays consistent and a retry succeeds.

A child process loads a multi-layer archive into a real store (LocalStore, overlay
snapshots, SQLite); it is SIGKILLed after a random delay. Reopening the store must
show either the whole image or nothing, leave no blob, snapshot or ingest behind that
no image uses, and the next load must work.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from skiff.images.service import ImageService
from skiff.oci.digest import Digest
from tests.unit.images.conftest import layer, legacy_archive

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.root

CHILD = """
import sys
from skiff.images.service import ImageService
svc = ImageService.open(sys.argv[1])
print("ready", flush=True)
with open(sys.argv[2], "rb") as f:
    svc.load(f)
print("done", flush=True)
"""


def _archive(path: Path) -> None:
    rng = random.Random(7)
    layers = [
        layer({f"d{i}": None, f"d{i}/blob": rng.randbytes(3 << 20), f"d{i}/small": b"x" * i})
        for i in range(4)
    ]
    path.write_bytes(legacy_archive(layers, ["crash:1"]))


def _check_consistent(root: Path) -> bool:
    """True when the image is visible (and whole), False when absent; asserts no debris."""
    svc = ImageService.open(root)  # opening sweeps what a dead load left
    try:
        used_blobs: set[str] = set()
        used_snaps: set[str] = set()
        images = svc.list(all=True)
        for img in images:
            rec = svc.meta.get_image(img.id)
            used_blobs |= {rec.id, rec.manifest_digest, *(la.digest for la in rec.layers)}
            used_snaps |= {la.chain_id for la in rec.layers}
            assert img.repo_tags == ["crash:1"]
            assert len(rec.layers) == 4
        for digest in used_blobs:
            svc.store.info(Digest.parse(digest))  # raises if missing
        assert {str(b.digest) for b in svc.store.walk()} == used_blobs
        assert {s.name for s in svc.snapshotter.walk()} == used_snaps
        assert svc.store.statuses() == []
        assert svc.meta.live_leases() == []
        return bool(images)
    finally:
        svc.close()


def test_kill_during_load(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar"
    _archive(archive)
    root = tmp_path / "root"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    def start() -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(archive)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        return child

    # How long a whole load takes, to spread the kills over it.
    child = start()
    t0 = time.monotonic()
    assert child.wait(timeout=120) == 0
    full = time.monotonic() - t0
    assert _check_consistent(root)
    svc = ImageService.open(root)
    svc.remove("crash:1")
    svc.close()

    rng = random.Random(int(os.environ.get("SKIFF_CRASH_SEED", "1")))
    outcomes = []
    for _ in range(8):
        child = start()
        time.sleep(rng.uniform(0, full))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.stdout is not None
        child.stdout.close()
        outcomes.append(_check_consistent(root))
        if outcomes[-1]:
            svc = ImageService.open(root)
            svc.remove("crash:1")
            svc.close()
    print("full load", round(full, 2), "s; visible after each kill:", outcomes)
    assert not all(outcomes), "every kill came too late to test anything"
    # A retry after a kill works.
    child = start()
    assert child.wait(timeout=120) == 0
    assert child.stdout is not None
    child.stdout.close()
    assert _check_consistent(root)
