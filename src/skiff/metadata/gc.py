"""Garbage collection by reachability, after containerd's pkg/gc.

Nodes are (kind, name): ("image", id), ("content", digest), ("snapshot", name).

    roots   every image record (an untagged image lives until rmi/prune deletes it),
            everything a live lease holds, and every snapshot skiff's images do not own
            (a container's active snapshot): it keeps its parent chain alive
    edges   image    -> its manifest, config and layer blobs, the chain id of every layer
            snapshot -> its parent

`tricolor` marks what the roots reach (white: unseen, gray: seen but its edges not
followed, black: done); `collect` sweeps the white blobs and image snapshots. Snapshots
go children first, since the snapshotter refuses to remove a parent.
An `extract-*` snapshot is a layer being unpacked: removed only when no lease is live
(no unpack can be in progress), which is always the case when the store opens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from skiff.errors import SkiffError
from skiff.metadata.db import CONTENT, SNAPSHOT
from skiff.snapshots.types import Kind

if TYPE_CHECKING:
    from skiff.content.types import Manager
    from skiff.metadata.db import MetadataStore
    from skiff.snapshots.types import Info, Snapshotter

IMAGE = "image"
Node = tuple[str, str]
EXTRACT_PREFIX = "extract-"


def tricolor(roots: Iterable[Node], refs: Callable[[Node], Iterable[Node]]) -> set[Node]:
    """Every node reachable from `roots` (the black set)."""
    gray = list(dict.fromkeys(roots))
    seen = set(gray)
    black: set[Node] = set()
    while gray:
        node = gray.pop()
        for child in refs(node):
            if child not in seen:
                seen.add(child)
                gray.append(child)
        black.add(node)
    return black


# Containers' init layers (services.containers.init_snapshot): kept while a
# container sits on one, swept like an image's layers once none does.
INIT_PREFIX = "init-"


def owned_by_images(name: str) -> bool:
    """Committed layer snapshots are named by chain id, and the init layers on them
    "init-<chain id>"; those are ours to sweep."""
    return name.startswith(("sha256:", INIT_PREFIX))


@dataclass(frozen=True, slots=True)
class Collected:
    blobs: list[str]
    snapshots: list[str]
    bytes: int


def collect(meta: MetadataStore, content: Manager, snapshotter: Snapshotter) -> Collected:
    leased = meta.leased()
    any_live_lease = bool(meta.live_leases())
    images = {rec.id: rec for rec in meta.images()}
    snaps = {info.name: info for info in snapshotter.walk()}

    roots: list[Node] = [(IMAGE, image_id) for image_id in images]
    roots += list(leased)
    roots += [
        (SNAPSHOT, name)
        for name, info in snaps.items()
        if not owned_by_images(name)
        and not (info.kind == Kind.ACTIVE and name.startswith(EXTRACT_PREFIX))
    ]

    def refs(node: Node) -> Iterable[Node]:
        kind, name = node
        if kind == IMAGE:
            rec = images.get(name)
            if rec is None:
                return []
            out = [(CONTENT, rec.manifest_digest), (CONTENT, rec.id)]
            for layer in rec.layers:
                out += [(CONTENT, layer.digest), (SNAPSHOT, layer.chain_id)]
            return out
        if kind == SNAPSHOT:
            info = snaps.get(name)
            return [(SNAPSHOT, info.parent)] if info is not None and info.parent else []
        return []

    marked = tricolor(roots, refs)

    removed_blobs: list[str] = []
    reclaimed = 0
    for blob in list(content.walk()):
        if (CONTENT, str(blob.digest)) in marked:
            continue
        with contextlib.suppress(SkiffError):
            content.delete(blob.digest)
            removed_blobs.append(str(blob.digest))
            reclaimed += blob.size

    doomed = [
        name
        for name, info in snaps.items()
        if (SNAPSHOT, name) not in marked
        and (
            (owned_by_images(name) and info.kind == Kind.COMMITTED)
            or (name.startswith(EXTRACT_PREFIX) and not any_live_lease)
        )
    ]
    removed_snaps: list[str] = []
    for name in sorted(doomed, key=lambda n: -_depth(n, snaps)):
        try:
            usage = snapshotter.usage(name).size
            snapshotter.remove(name)
        except SkiffError:
            continue  # a child we may not remove still holds it
        removed_snaps.append(name)
        reclaimed += usage
    return Collected(removed_blobs, removed_snaps, reclaimed)


def _depth(name: str, snaps: dict[str, Info]) -> int:
    depth = 0
    info = snaps.get(name)
    while info is not None and info.parent and depth < 10_000:
        depth += 1
        info = snaps.get(info.parent)
    return depth
