"""Snapshots: layer trees chained as overlayfs lowerdirs (see `types` for the vocabulary).

types.Snapshotter            the protocol; Kind, Info, Usage, Mount; upper_dir(), lower_dirs()
overlay.OverlaySnapshotter   on disk: <root>/metadata.db, <root>/<id>/{fs,work}
mount.mount_all / unmount    perform the mounts (root)
skiff.testing.snapshots      an in-memory fake
"""

from __future__ import annotations

from skiff.snapshots.types import Info, Kind, Mount, Snapshotter, Usage, lower_dirs, upper_dir

__all__ = ["Info", "Kind", "Mount", "Snapshotter", "Usage", "lower_dirs", "upper_dir"]
