"""Layers -> committed snapshots named by chain id, as containerd's rootfs.ApplyLayers.

    chainID(1) = diffID(1)
    chainID(n) = sha256(chainID(n-1) + " " + diffID(n))

A layer shared by two images (same diffIDs below it) is the same chain id, so it is
unpacked once. The size of a layer (bytes of file content, Docker's layer size) is
what applying it counted; for a layer already unpacked, `known_size` (the metadata's
record of it) answers, or the snapshot's disk usage.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from skiff.archive.errors import CorruptLayer
from skiff.archive.unpack import unpack_layer
from skiff.errors import NotFound
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from skiff.content.types import Provider
    from skiff.snapshots.types import Snapshotter

DIFF_ID_LABEL = "skiff.layer.diffid"

_unpack_lock = threading.Lock()


def chain_ids(diff_ids: Sequence[Digest]) -> list[Digest]:
    out: list[Digest] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(Digest.from_bytes(f"{out[-1]} {diff_id}".encode()))
    return out


@dataclass(frozen=True, slots=True)
class UnpackedLayer:
    chain_id: Digest
    size: int  # bytes of file content the layer holds


def unpack_layers(
    provider: Provider,
    snapshotter: Snapshotter,
    blobs: Sequence[Digest],
    diff_ids: Sequence[Digest],
    *,
    before: Callable[[Digest], None] | None = None,
    known_size: Callable[[Digest], int | None] | None = None,
) -> list[UnpackedLayer]:
    """Unpack every layer not yet a snapshot; `before(chain_id)` runs first for each
    one (to lease it). CorruptLayer when a blob's diffID is not the config's."""
    if len(blobs) != len(diff_ids):
        raise CorruptLayer(
            f"the image has {len(blobs)} layers but its config lists {len(diff_ids)} diffIDs"
        )
    out: list[UnpackedLayer] = []
    parent: str | None = None
    for blob, diff_id, chain in zip(blobs, diff_ids, chain_ids(diff_ids), strict=True):
        if before is not None:
            before(chain)
        size = _committed_size(snapshotter, chain, known_size)
        if size is None:
            # One unpack at a time per chain: two containers starting on one image must
            # not both apply it (the second commit would fail on the name).
            with _unpack_lock:
                size = _committed_size(snapshotter, chain, known_size)
                if size is None:
                    with provider.open_blob(blob) as f:
                        applied = unpack_layer(
                            snapshotter,
                            f,
                            str(chain),
                            parent,
                            expected_diff_id=diff_id,
                            labels={DIFF_ID_LABEL: str(diff_id)},
                        )
                    size = applied.size
        out.append(UnpackedLayer(chain, size))
        parent = str(chain)
    return out


def _committed_size(
    snapshotter: Snapshotter, chain: Digest, known_size: Callable[[Digest], int | None] | None
) -> int | None:
    try:
        snapshotter.stat(str(chain))
    except NotFound:
        return None
    size = known_size(chain) if known_size is not None else None
    return size if size is not None else snapshotter.usage(str(chain)).size
