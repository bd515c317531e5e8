"""COPY/ADD sources: resolved, globbed and hashed over a read-only tree.

A tree is what a COPY reads from: the build context (an index of the client's tar,
build/context.py, never unpacked for a cached step) or a folder on disk (another
stage's rootfs for `--from`, the heredoc files). Both answer three questions
(`SourceTree`), so resolution and the cache's content hash are the same code, and a
context's hash is the same whether it is on disk or only in the index.

    resolve   a path as named -> its real path in the tree, following symlinks; `..`
              or a link out of the tree -> "Forbidden path outside the build context"
    match     wildcards as Go's filepath.Match on the whole relative path
    hash      `file:<hex>`, `dir:<hex>` or `multi:<hex>` of paths, modes, link targets
              and content, never mtimes (a touched but unchanged file hits the cache)

Paths inside a tree are relative, `/`-separated, "" for its root.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from skiff.build.dockerignore import clean
from skiff.errors import InvalidArgument

_MAX_LINKS = 40
_CHUNK = 1 << 20


class ForbiddenPath(InvalidArgument):
    def __init__(self, path: str) -> None:
        super().__init__(f"Forbidden path outside the build context: {path} ()")


class CopyError(InvalidArgument):
    pass


@dataclass(frozen=True)
class TreeStat:
    mode: int  # st_mode: type and permission bits
    size: int
    linkname: str  # a symlink's target, else ""


class SourceTree(Protocol):
    def lstat(self, rel: str) -> TreeStat | None: ...  # None: nothing there

    def listdir(self, rel: str) -> list[str]: ...

    def digest(self, rel: str) -> str: ...  # sha256 hex of a regular file's content


class Context(SourceTree, Protocol):
    """A tree COPY can read from: `materialize` puts what copying these sources reads
    on disk and returns the folder that holds it (their paths are relative to it)."""

    def materialize(self, sources: list[Source]) -> str: ...


def join(base: str, rel: str) -> str:
    if not base:
        return rel
    return f"{base}/{rel}" if rel else base


class FolderTree:
    """A folder on disk as a SourceTree."""

    def __init__(self, root: str) -> None:
        self.root = root

    def host_path(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def lstat(self, rel: str) -> TreeStat | None:
        path = self.host_path(rel)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
        return TreeStat(st.st_mode, st.st_size, target)

    def listdir(self, rel: str) -> list[str]:
        return os.listdir(self.host_path(rel))

    def materialize(self, sources: list[Source]) -> str:
        return self.root  # on disk already

    def digest(self, rel: str) -> str:
        h = hashlib.sha256()
        with open(self.host_path(rel), "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()


def resolve(tree: SourceTree, path: str, *, follow_last: bool = True) -> str:
    """The real path of `path` in the tree, following symlinks (a missing path resolves
    as far as it can; the caller reports it); raises ForbiddenPath if `..` or a link
    leads outside or a link is absolute."""
    if clean(path).startswith("../") or clean(path) == "..":
        raise ForbiddenPath(path)
    parts = [p for p in clean("/" + path).split("/") if p]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if not resolved:
                raise ForbiddenPath(path)
            resolved.pop()
            continue
        st = tree.lstat("/".join([*resolved, part]))
        if st is not None and stat.S_ISLNK(st.mode) and (parts or follow_last):
            hops += 1
            if hops > _MAX_LINKS:
                raise InvalidArgument(f"too many links in {path}")
            if st.linkname.startswith("/"):
                raise ForbiddenPath(path)
            parts = [p for p in st.linkname.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return "/".join(resolved)


def walk(tree: SourceTree, rel: str) -> Iterator[tuple[str, TreeStat]]:
    """(path relative to `rel`, stat) of `rel` ("" first) and everything under it, in
    os.walk's top-down order: a folder's sorted entries, then its sub-folders in turn
    (symlinks to folders are listed, not entered)."""
    st = tree.lstat(rel)
    if st is None:
        raise CopyError(f"stat {rel}: file does not exist")
    yield "", st
    if stat.S_ISDIR(st.mode):
        yield from _walk_folder(tree, rel, "")


def _walk_folder(tree: SourceTree, base: str, rel: str) -> Iterator[tuple[str, TreeStat]]:
    folders = []
    for name in sorted(tree.listdir(join(base, rel))):
        child = join(rel, name)
        st = tree.lstat(join(base, child))
        if st is None:
            continue
        yield child, st
        if stat.S_ISDIR(st.mode):
            folders.append(child)
    for child in folders:
        yield from _walk_folder(tree, base, child)


def match(tree: SourceTree, pattern: str) -> list[str]:
    """Tree paths matching a COPY source with wildcards (Go's filepath.Match on the
    whole relative path, as the classic builder's copier walks the context)."""
    pat = clean(pattern).lstrip("/")
    if pat.startswith(".."):
        raise ForbiddenPath(pattern)
    regex = _go_match(pat)
    return sorted({rel for rel, _ in walk(tree, "") if rel and regex.match(rel)})


def has_wildcards(path: str) -> bool:
    i = 0
    while i < len(path):
        ch = path[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "*?[":
            return True
        i += 1
    return False


def _go_match(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
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
            out.append("[" + body + "]")
            i = end + 1
        elif ch == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(ch))
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True)
class Source:
    rel: str  # as named in the Dockerfile (after globbing)
    path: str  # its real path in the tree (symlinks followed)


def collect(tree: SourceTree, names: list[str], kind: str) -> list[Source]:
    out: list[Source] = []
    for name in names:
        if kind == "ADD" and name.startswith(("http://", "https://")):
            raise CopyError(
                f"ADD from a URL is not supported: {name} (skiffd builds offline; "
                "download the file into the build context and ADD it from there)"
            )
        if has_wildcards(name):
            matched = match(tree, name)
            if not matched:
                raise CopyError(f"{kind} failed: no source files were specified")
            out.extend(Source(m, resolve(tree, m)) for m in matched)
            continue
        path = resolve(tree, name)
        if tree.lstat(path) is None:
            rel = clean(name).lstrip("/") or "."
            raise CopyError(
                f"{kind} failed: file not found in build context or excluded by "
                f".dockerignore: stat {rel}: file does not exist"
            )
        out.append(Source(clean(name).lstrip("/") or ".", path))
    return out


def source_hash(tree: SourceTree, sources: list[Source]) -> str:
    """Docker's `file:<hex>`, `dir:<hex>` or `multi:<hex>` (content, not mtimes)."""
    parts = []
    for src in sources:
        h = hashlib.sha256()
        top: TreeStat | None = None
        for rel, st in walk(tree, src.path):
            top = top or st
            h.update(f"{rel}\0{st.mode:o}\0{st.linkname}\0".encode("utf-8", "surrogateescape"))
            if stat.S_ISREG(st.mode):
                h.update(tree.digest(join(src.path, rel)).encode())
        kind = "dir" if top is not None and stat.S_ISDIR(top.mode) else "file"
        parts.append((kind, h.hexdigest()))
    if len(parts) == 1:
        return f"{parts[0][0]}:{parts[0][1]}"
    joined = hashlib.sha256(",".join(f"{k}:{d}" for k, d in parts).encode()).hexdigest()
    return f"multi:{joined}"


def needed_paths(tree: SourceTree, sources: list[Source]) -> set[str]:
    """What copying `sources` reads: each source, everything under it, its parents."""
    out: set[str] = set()
    for src in sources:
        parts = src.path.split("/") if src.path else []
        for i in range(len(parts)):
            out.add("/".join(parts[:i]))
        out.update(join(src.path, rel) for rel, _ in walk(tree, src.path))
    return out
