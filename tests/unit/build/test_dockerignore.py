import io
import tarfile
from pathlib import Path

import pytest

from skiff.build.dockerignore import PatternMatcher, context_tar, read_dockerignore


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
