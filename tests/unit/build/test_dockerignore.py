import io
import os
import tarfile
from pathlib import Path

import pytest

from skiff.build.dockerignore import (
    ForbiddenPath,
    PatternMatcher,
    context_tar,
    match_sources,
    read_dockerignore,
    resolve_source,
)


def test_read_cleans_patterns() -> None:
    text = "# c\n/abs\n./rel/\n ! keep \n\n**/*.pyc\n"
    assert read_dockerignore(text) == ["abs", "rel", "!keep", "**/*.pyc"]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/a.md", False),
        (["**/*.md"], "docs/a.md", True),
        (["**/*.md"], "a.md", True),
        (["docs"], "docs/x/y", True),
        (["docs", "!docs/keep"], "docs/keep", False),
        (["docs", "!docs/keep"], "docs/other", True),
        (["*", "!src"], "src/a.py", False),
        (["a?c"], "abc", True),
        (["a?c"], "a/c", False),
        (["[a-c]x"], "bx", True),
        (["**"], "any/thing", True),
    ],
)
def test_matches(patterns: list[str], path: str, excluded: bool) -> None:
    assert PatternMatcher(patterns).matches(path) is excluded


def test_context_tar_honours_ignore(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    (tmp_path / ".dockerignore").write_text("*\n!keep\n")
    (tmp_path / "keep").write_text("k")
    (tmp_path / "drop").write_text("d")
    buf = io.BytesIO()
    context_tar(str(tmp_path), "Dockerfile", buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        names = tar.getnames()
    assert sorted(names) == [".dockerignore", "Dockerfile", "keep"]


def test_resolve_refuses_escape(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("x")
    os.symlink("../a/f", tmp_path / "a" / "ok")
    os.symlink("../../etc/passwd", tmp_path / "a" / "bad")
    os.symlink("/etc/passwd", tmp_path / "abs")
    assert resolve_source(str(tmp_path), "a/ok") == str(tmp_path / "a" / "f")
    for bad in ("../x", "a/bad", "abs"):
        with pytest.raises(ForbiddenPath):
            resolve_source(str(tmp_path), bad)


def test_match_sources(tmp_path: Path) -> None:
    for name in ("a.txt", "b.txt", "c.md", "d/e.txt"):
        p = tmp_path / name
        p.parent.mkdir(exist_ok=True)
        p.write_text(name)
    assert match_sources(str(tmp_path), "*.txt") == ["a.txt", "b.txt"]
    assert match_sources(str(tmp_path), "d/*") == ["d/e.txt"]


def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in entries:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    buf.seek(0)
    return buf


def test_unpack_context_hashes_and_refuses_escapes(tmp_path: Path) -> None:
    import hashlib

    from skiff.services.build import unpack_context

    good = tmp_path / "good"
    good.mkdir()
    f = tarfile.TarInfo("d/f")
    f.mode = 0o4755
    digests = unpack_context(_tar([f], {"d/f": b"hi"}), str(good))
    path = str(good / "d" / "f")
    assert digests[path][2] == hashlib.sha256(b"hi").hexdigest()
    assert os.stat(path).st_mode & 0o7777 == 0o4755
    hard = tarfile.TarInfo("h")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "../../etc/passwd"
    link = tarfile.TarInfo("l")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc"
    through = tarfile.TarInfo("l/owned")
    for n, entries in enumerate(([hard], [link, through], [tarfile.TarInfo("../x")])):
        bad = tmp_path / f"bad{n}"
        bad.mkdir()
        with pytest.raises(ForbiddenPath):
            unpack_context(_tar(entries, {"l/owned": b"x", "../x": b"x"}), str(bad))
    assert not os.path.exists("/etc/owned")
