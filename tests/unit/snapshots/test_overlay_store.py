"""What only the on-disk snapshotter shows: layout, crash recovery."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from typing import TYPE_CHECKING

from skiff.snapshots.overlay import OverlaySnapshotter

if TYPE_CHECKING:
    from pathlib import Path


def test_layout(tmp_path: Path) -> None:
    sn = OverlaySnapshotter(tmp_path)
    sn.prepare("k")
    sn.commit("base", "k")
    sn.prepare("c", "base")
    assert sorted(os.listdir(tmp_path)) == [
        "1",
        "2",
        "metadata.db",
        "metadata.db-shm",
        "metadata.db-wal",
    ]
    assert sorted(os.listdir(tmp_path / "2")) == ["fs", "work"]
    assert sn.fs_dir("base") == tmp_path / "1" / "fs"
    sn.close()


def test_orphans_are_cleaned_on_open(tmp_path: Path) -> None:
    sn = OverlaySnapshotter(tmp_path)
    sn.prepare("k")
    sn.close()
    (tmp_path / "99" / "fs").mkdir(parents=True)
    (tmp_path / ".tmp-rm-3-1").mkdir()
    sn = OverlaySnapshotter(tmp_path)
    assert not (tmp_path / "99").exists()
    assert not (tmp_path / ".tmp-rm-3-1").exists()
    assert (tmp_path / "1" / "fs").is_dir()
    sn.close()


def _churn(root: Path, seed: int) -> None:
    rng = random.Random(seed)
    sn = OverlaySnapshotter(root)
    n = 0
    while True:
        n += 1
        key = f"{seed}-{n}"
        parents = [i.name for i in sn.walk() if i.kind.value == "committed"]
        sn.prepare(key, rng.choice([None, *parents]))
        (sn.fs_dir(key) / "f").write_bytes(b"x" * rng.randint(0, 5000))
        if rng.random() < 0.6:
            sn.commit(f"c{key}", key)
        elif rng.random() < 0.5:
            sn.remove(key)
        leaves = [i.name for i in sn.walk()]
        victim = rng.choice(leaves)
        with contextlib.suppress(Exception):
            sn.remove(victim)


def test_kill_9_leaves_a_consistent_store(tmp_path: Path) -> None:
    for seed in range(6):
        pid = os.fork()
        if pid == 0:
            try:
                _churn(tmp_path, seed)
            finally:
                os._exit(1)
        time.sleep(random.Random(seed).uniform(0.05, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        sn = OverlaySnapshotter(tmp_path)  # cleanup runs here
        infos = list(sn.walk())
        names = {i.name for i in infos}
        for info in infos:
            assert sn.fs_dir(info.name).is_dir(), info
            assert info.parent is None or info.parent in names
        dirs = {d for d in os.listdir(tmp_path) if not d.startswith("metadata.db")}
        assert dirs == {sn.fs_dir(i.name).parent.name for i in infos}
        sn.close()
