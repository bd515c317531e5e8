from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))


class Box:
    """A destination folder beside a sentinel folder that must never change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dest = root / "dest"
        self.sentinel = root / "sentinel"
        self.dest.mkdir()
        self.sentinel.mkdir()
        (self.sentinel / "file").write_text("precious")
        self._before = self.snapshot_outside()

    def snapshot_outside(self) -> dict[str, tuple[int, int, bytes | None]]:
        out = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            if Path(dirpath) == self.root:
                dirnames[:] = [d for d in dirnames if d != "dest"]
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.lstat()
                data = p.read_bytes() if p.is_file() and not p.is_symlink() else None
                out[str(p)] = (st.st_mode, st.st_nlink, data)
        return out

    def assert_untouched(self) -> None:
        assert self.snapshot_outside() == self._before
        assert sorted(os.listdir(self.root)) == ["dest", "sentinel"]


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)
