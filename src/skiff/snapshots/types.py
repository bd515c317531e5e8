"""The snapshotter's vocabulary, after containerd's Snapshotter doc comment.

A snapshot is a folder tree that is one of three kinds:

    ACTIVE     made by `prepare(key, parent)`; writable; named by its *key*
    VIEW       made by `view(key, parent)`; read-only; named by its key
    COMMITTED  made by `commit(name, key)` from an active snapshot; read-only;
               named by its *name*; the only kind that can be a *parent*

Keys and names share one namespace. A snapshot is used through the mounts
`prepare`, `view` and `mounts(key)` return: mount them anywhere and use the tree.

Importing a layer, the walk-through the interface is built for:

    mounts = sn.prepare("extract-<random>-<chainID>", parent_chain_id)
    apply_layer(tar, upper_dir(mounts))     # or mount, then apply to the mount
    sn.commit(chain_id, "extract-...")      # only now does chain_id exist
    (on failure: sn.remove("extract-..."); nothing was ever visible)

Running a container: `mounts = sn.prepare(container_id, image_chain_id)`,
mount them as the rootfs; `diff_layer(lower_dirs, upper_dir(mounts))` is what
`docker commit` stores; `remove(container_id)` when the container goes.
A committed snapshot with children cannot be removed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from skiff.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class Kind(enum.Enum):
    VIEW = "view"
    ACTIVE = "active"
    COMMITTED = "committed"


@dataclass(frozen=True, slots=True)
class Info:
    name: str  # the key of an active or view snapshot, the name of a committed one
    kind: Kind
    parent: str | None
    created_at: float
    updated_at: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    size: int  # bytes on disk (allocated blocks), hardlinks counted once
    inodes: int


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount(2) call, as containerd's mount.Mount: type, source, options."""

    type: str  # "overlay" or "bind"
    source: str
    options: tuple[str, ...] = ()

    def option(self, key: str) -> str | None:
        prefix = key + "="
        for opt in self.options:
            if opt.startswith(prefix):
                return opt[len(prefix) :]
        return None

    @property
    def readonly(self) -> bool:
        return "ro" in self.options


def upper_dir(mounts: list[Mount]) -> str:
    """The folder that takes the writes of an active snapshot's mounts."""
    if len(mounts) == 1:
        m = mounts[0]
        if m.type == "overlay" and (upper := m.option("upperdir")):
            return upper
        if m.type == "bind" and not m.readonly:
            return m.source
    raise InvalidArgument("these mounts have no writable folder")


def lower_dirs(mounts: list[Mount]) -> list[str]:
    """The read-only folders under an overlay mount, top first."""
    if len(mounts) == 1 and mounts[0].type == "overlay":
        lower = mounts[0].option("lowerdir")
        return lower.split(":") if lower else []
    if len(mounts) == 1 and mounts[0].readonly:
        return [mounts[0].source]
    return []


class Snapshotter(Protocol):
    def prepare(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Make an active snapshot on `parent` (a committed name) or empty."""
        ...

    def view(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Make a read-only view of `parent`."""
        ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """Turn the active snapshot `key` into the committed `name`."""
        ...

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of an active snapshot or view."""
        ...

    def remove(self, key: str) -> None:
        """Remove a snapshot of any kind; refused while it has children."""
        ...

    def stat(self, key: str) -> Info: ...

    def walk(self) -> Iterator[Info]: ...

    def usage(self, key: str) -> Usage: ...
