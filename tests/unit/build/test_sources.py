import os
from pathlib import Path

import pytest

from skiff.build.sources import (
    FolderTree,
    ForbiddenPath,
    Source,
    collect,
    match,
    needed_paths,
    resolve,
    source_hash,
)


def test_resolve_refuses_escape(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    os.symlink("../a/f", tmp_path / "a" / "ok")
    os.symlink("../../etc/passwd", tmp_path / "a" / "bad")
    os.symlink("/etc/passwd", tmp_path / "abs")
    tree = FolderTree(str(tmp_path))
    assert resolve(tree, "a/ok") == "a/f"
    assert resolve(tree, "/a/./ok") == "a/f"
    assert resolve(tree, "a/ok", follow_last=False) == "a/ok"
    for bad in ("../x", "a/bad", "abs", "a/../../x"):
        with pytest.raises(ForbiddenPath):
            resolve(tree, bad)


def test_match(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.md", "d/e.txt"):
        p = tmp_path / name
        p.parent.mkdir(exist_ok=True)
        p.write_text(name)
    tree = FolderTree(str(tmp_path))
    assert match(tree, "*.txt") == ["a.txt", "b.txt"]
    assert match(tree, "d/*") == ["d/e.txt"]
    with pytest.raises(ForbiddenPath):
        match(tree, "../*")


def test_hash_is_content_mode_and_links_not_mtime(tmp_path: Path) -> None:
    (tmp_path / "d" / "s").mkdir(parents=True)
    (tmp_path / "d" / "f").write_text("one")
    (tmp_path / "d" / "s" / "g").write_text("two")
    os.symlink("f", tmp_path / "d" / "l")
    tree = FolderTree(str(tmp_path))
    found = collect(tree, ["d"], "COPY")
    first = source_hash(tree, found)
    assert first.startswith("dir:")
    os.utime(tmp_path / "d" / "f", (1, 1))
    assert source_hash(tree, found) == first
    os.chmod(tmp_path / "d" / "f", 0o600)
    second = source_hash(tree, found)
    assert second != first
    (tmp_path / "d" / "s" / "g").write_text("TWO")
    third = source_hash(tree, found)
    assert third not in (first, second)
    os.unlink(tmp_path / "d" / "l")
    os.symlink("s", tmp_path / "d" / "l")
    assert source_hash(tree, found) != third
    assert source_hash(tree, collect(tree, ["d/f"], "COPY")).startswith("file:")
    assert source_hash(tree, collect(tree, ["d/f", "d/s"], "COPY")).startswith("multi:")


def test_needed_paths_are_the_sources_their_contents_and_parents(tmp_path: Path) -> None:
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "f").write_text("x")
    (tmp_path / "a" / "other").write_text("y")
    tree = FolderTree(str(tmp_path))
    assert needed_paths(tree, [Source("a/b", "a/b")]) == {"", "a", "a/b", "a/b/c", "a/b/c/f"}
