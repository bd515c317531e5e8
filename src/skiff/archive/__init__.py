"""Layer tars: apply (with whiteouts, safe against hostile input), diff, compression.

apply_layer(stream, dest)              -> AppliedLayer
diff_layer(lower_dirs, upper_dir, out) -> LayerDigests
tar_dir(root, out)                     -> LayerDigests
unpack_layer(snapshotter, stream, name, parent) -> AppliedLayer (in archive.unpack)
"""

from __future__ import annotations

from skiff.archive.apply import AppliedLayer, apply_layer
from skiff.archive.compression import GZIP, NONE, ZSTD, LayerDigests
from skiff.archive.diff import diff_layer, tar_dir
from skiff.archive.errors import CorruptLayer, LayerError, UnsafeLayer

__all__ = [
    "GZIP",
    "NONE",
    "ZSTD",
    "AppliedLayer",
    "CorruptLayer",
    "LayerDigests",
    "LayerError",
    "UnsafeLayer",
    "apply_layer",
    "diff_layer",
    "tar_dir",
]
