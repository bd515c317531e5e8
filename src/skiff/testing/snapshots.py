"""An in-memory snapshotter with OverlaySnapshotter's semantics.

Metadata lives in a dict. With `root`, each snapshot also gets a real folder
`<root>/<id>/fs` (so layers can be applied into it); without, the mount paths
are fake and nothing touches the disk.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.snapshots.types import Info, Kind, Mount, Usage

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


@dataclass
class _Snap:
    id: int
    kind: Kind
    parent: int | None
    created: float
    updated: float
    labels: dict[str, str] = field(default_factory=dict)


class MemorySnapshotter:
    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else Path("/fake-snapshots")
        self._real = root is not None
        self._snaps: dict[str, _Snap] = {}
        self._next = 1

    def prepare(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        return self._create(Kind.VIEW, key, parent, labels)

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        snap = self._get(key)
        if snap.kind != Kind.ACTIVE:
            raise InvalidArgument(f"snapshot {key} is not active: only active ones commit")
        if name in self._snaps:
            raise Conflict(f"snapshot {name}: already exists")
        del self._snaps[key]
        self._snaps[name] = replace(
            snap,
            kind=Kind.COMMITTED,
            updated=time.time(),
            labels={**snap.labels, **(labels or {})},
        )

    def mounts(self, key: str) -> list[Mount]:
        snap = self._get(key)
        if snap.kind == Kind.COMMITTED:
            raise InvalidArgument(f"snapshot {key} is committed: prepare or view it to mount")
        return self._mounts(snap)

    def remove(self, key: str) -> None:
        snap = self._get(key)
        for other_key, other in self._snaps.items():
            if other.parent == snap.id:
                raise Conflict(f"snapshot {key} has children (e.g. {other_key})")
        del self._snaps[key]
        if self._real:
            shutil.rmtree(self.root / str(snap.id), ignore_errors=True)

    def stat(self, key: str) -> Info:
        return self._info(key, self._get(key))

    def walk(self) -> Iterator[Info]:
        for key, snap in sorted(self._snaps.items(), key=lambda kv: kv[1].id):
            yield self._info(key, snap)

    def usage(self, key: str) -> Usage:
        snap = self._get(key)
        if not self._real:
            return Usage(0, 0)
        size = inodes = 0
        for dirpath, dirnames, filenames in os.walk(self._fs(snap.id)):
            for name in dirnames + filenames:
                inodes += 1
                size += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
        return Usage(size, inodes)

    def _create(
        self, kind: Kind, key: str, parent: str | None, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        if not key:
            raise InvalidArgument("snapshot key must not be empty")
        if key in self._snaps:
            raise Conflict(f"snapshot {key}: already exists")
        parent_id = None
        if parent:
            p = self._get(parent)
            if p.kind != Kind.COMMITTED:
                raise InvalidArgument(f"parent {parent} is not a committed snapshot")
            parent_id = p.id
        now = time.time()
        snap = _Snap(self._next, kind, parent_id, now, now, dict(labels or {}))
        self._next += 1
        self._snaps[key] = snap
        if self._real:
            self._fs(snap.id).mkdir(parents=True)
            if kind == Kind.ACTIVE:
                (self.root / str(snap.id) / "work").mkdir()
        return self._mounts(snap)

    def _mounts(self, snap: _Snap) -> list[Mount]:
        chain = []
        parent = snap.parent
        by_id = {s.id: s for s in self._snaps.values()}
        while parent is not None:
            chain.append(str(self._fs(parent)))
            parent = by_id[parent].parent
        fs = str(self._fs(snap.id))
        opts = ("index=off", "redirect_dir=off", "metacopy=off")
        if snap.kind == Kind.ACTIVE:
            if not chain:
                return [Mount("bind", fs, ("rbind", "rw"))]
            work = str(self.root / str(snap.id) / "work")
            lower = "lowerdir=" + ":".join(chain)
            return [
                Mount("overlay", "overlay", (f"workdir={work}", f"upperdir={fs}", lower, *opts))
            ]
        if not chain:
            return [Mount("bind", fs, ("rbind", "ro"))]
        if len(chain) == 1:
            return [Mount("bind", chain[0], ("rbind", "ro"))]
        return [Mount("overlay", "overlay", ("lowerdir=" + ":".join(chain), *opts))]

    def _fs(self, sid: int) -> Path:
        return self.root / str(sid) / "fs"

    def _get(self, key: str) -> _Snap:
        try:
            return self._snaps[key]
        except KeyError:
            raise NotFound(f"snapshot {key}: not found") from None

    def _info(self, key: str, snap: _Snap) -> Info:
        parent = None
        if snap.parent is not None:
            parent = next(k for k, s in self._snaps.items() if s.id == snap.parent)
        return Info(key, snap.kind, parent, snap.created, snap.updated, dict(snap.labels))
