"""The build context: `.dockerignore` rules, the context tar, and safe COPY sources.

Client side (the CLI): `read_dockerignore` + `PatternMatcher` decide what goes into the
context tar (`context_tar`), as the docker CLI does; the Dockerfile and `.dockerignore`
are always sent (`!Dockerfile` and `!.dockerignore` are added), and the daemon drops
them again when the rules name them (`remove_ignored_build_files`).

Pattern rules (moby's fileutils.PatternMatcher): `#` lines are comments; each pattern
is trimmed, `filepath.Clean`ed, a leading `/` dropped; `*` and `?` never match `/`;
`**` matches any number of folders (none included); `[...]` is a class; `\\` escapes.
A path is excluded when the last pattern matching it or one of its parent folders is
not a `!` exception.

Daemon side: the context arrives as a tar stream and becomes an index (build/context.py);
COPY/ADD sources are resolved and hashed over it by build/sources.py.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from skiff.errors import InvalidArgument


def clean(path: str) -> str:
    """Go's path.Clean."""
    if not path:
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    text = "/".join(out)
    if rooted:
        return "/" + text
    return text or "."


def read_dockerignore(text: str) -> list[str]:
    patterns = []
    for i, raw in enumerate(text.split("\n")):
        line = raw.removeprefix("\ufeff") if i == 0 else raw
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def _translate(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1 if i < n and pattern[i] in "^!" else i)
            if end < 0:
                raise InvalidArgument(f"syntax error in pattern: {pattern}")
            body = pattern[i:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif ch == "\\":
            if i < n:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        else:
            out.append(re.escape(ch))
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True)
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]
    dirs: int


class PatternMatcher:
    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[_Pattern] = []
        for p in patterns:
            exclusion = p.startswith("!")
            text = p[1:] if exclusion else p
            if not text:
                raise InvalidArgument('illegal exclusion pattern: "!"')
            text = clean(text)
            self.patterns.append(_Pattern(text, exclusion, _translate(text), len(text.split("/"))))

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Whether `path` (relative, with /) is excluded by the rules."""
        path = clean(path)
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        matched = False
        for p in self.patterns:
            hit = bool(p.regex.match(path))
            if not hit and parent != "." and p.dirs <= len(parent_dirs):
                hit = bool(p.regex.match("/".join(parent_dirs[: p.dirs])))
            if hit:
                matched = not p.exclusion
        return matched


def always_send(patterns: list[str], dockerfile: str) -> list[str]:
    """The CLI's TrimBuildFilesFromExcludes: the Dockerfile and .dockerignore go in."""
    matcher = PatternMatcher(patterns)
    out = list(patterns)
    for name in (".dockerignore", dockerfile):
        if name and matcher.matches(name):
            out.append("!" + clean(name))
    return out


def walk_context(root: str, patterns: list[str]) -> Iterator[str]:
    """Relative paths under `root` the rules let through, folders before their contents.

    An excluded folder is skipped whole unless an exception might reach inside it."""
    matcher = PatternMatcher(patterns)
    exceptions = matcher.has_exclusions

    def walk(rel: str) -> Iterator[str]:
        full = os.path.join(root, rel) if rel else root
        for name in sorted(os.listdir(full)):
            child = f"{rel}/{name}" if rel else name
            is_dir = stat.S_ISDIR(os.lstat(os.path.join(root, child)).st_mode)
            if matcher.matches(child):
                if is_dir and exceptions and _may_contain_exception(matcher, child):
                    yield from walk(child)
                continue
            yield child
            if is_dir:
                yield from walk(child)

    yield from walk("")


def _may_contain_exception(matcher: PatternMatcher, folder: str) -> bool:
    for p in matcher.patterns:
        if p.exclusion and (p.text.startswith(folder + "/") or "*" in p.text or "?" in p.text):
            return True
    return False


def context_tar(root: str, dockerfile: str, out: BinaryIO) -> None:
    """Write the build context of folder `root` as an uncompressed tar to `out`."""
    patterns: list[str] = []
    ignore = os.path.join(root, ".dockerignore")
    if os.path.isfile(ignore):
        with open(ignore, encoding="utf-8", errors="replace") as f:
            patterns = read_dockerignore(f.read())
    patterns = always_send(patterns, dockerfile)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel in walk_context(root, patterns):
            info = tar.gettarinfo(os.path.join(root, rel), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(os.path.join(root, rel), "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
