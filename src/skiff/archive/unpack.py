"""Apply a layer as a new committed snapshot, visible only when whole and verified."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, BinaryIO

from skiff.archive.apply import AppliedLayer, apply_layer
from skiff.archive.errors import CorruptLayer
from skiff.snapshots.types import upper_dir

if TYPE_CHECKING:
    import io
    from collections.abc import Mapping

    from skiff.oci.digest import Digest
    from skiff.snapshots.types import Snapshotter


def unpack_layer(
    snapshotter: Snapshotter,
    stream: BinaryIO | io.RawIOBase,
    name: str,
    parent: str | None = None,
    *,
    expected_diff_id: Digest | None = None,
    labels: Mapping[str, str] | None = None,
) -> AppliedLayer:
    """Apply `stream` on `parent` and commit it as `name` (usually the chainID).

    The layer is applied into an active snapshot under a random key; only
    when the whole stream applied (and its diffID matches, if given) is it
    committed as `name`. On any failure the active snapshot is removed, so
    nothing half-applied is ever visible. A crash mid-way leaves an active
    snapshot `extract-*`, which garbage collection removes.
    """
    key = f"extract-{uuid.uuid4().hex}-{name}"
    mounts = snapshotter.prepare(key, parent)
    try:
        applied = apply_layer(stream, upper_dir(mounts))
        if expected_diff_id is not None and applied.diff_id != expected_diff_id:
            raise CorruptLayer(
                f"layer diffID is {applied.diff_id}, the image says {expected_diff_id}"
            )
        snapshotter.commit(name, key, labels)
    except BaseException:
        with contextlib.suppress(Exception):
            snapshotter.remove(key)
        raise
    return applied
