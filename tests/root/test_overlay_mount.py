"""Mount a real overlay of a 3-layer chain, change it, and diff the upper back to a layer."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
from typing import TYPE_CHECKING

import pytest

from skiff.archive import NONE, diff_layer
from skiff.archive.unpack import unpack_layer
from skiff.snapshots import lower_dirs, upper_dir
from skiff.snapshots.mount import mount_all, unmount
from skiff.snapshots.overlay import OverlaySnapshotter

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.root


def _tar(*entries: tuple[str, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@contextlib.contextmanager
def mounted(mounts: list, target: Path) -> Iterator[Path]:  # type: ignore[type-arg]
    target.mkdir(exist_ok=True)
    mount_all(mounts, target)
    try:
        yield target
    finally:
        unmount(target, detach=True)


def _merged(root: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def test_three_layer_overlay_and_diff(tmp_path: Path) -> None:
    sn = OverlaySnapshotter(tmp_path / "snapshots")
    try:
        unpack_layer(
            sn,
            io.BytesIO(
                _tar(
                    ("etc", None),
                    ("etc/config", b"v1"),
                    ("d", None),
                    ("d/a", b"a"),
                    ("d/b", b"b"),
                    ("keep", None),
                    ("keep/x", b"x"),
                    ("gone.txt", b"g"),
                )
            ),
            "l1",
        )
        unpack_layer(sn, io.BytesIO(_tar(("etc/config", b"v2"), ("l2file", b"2"))), "l2", "l1")
        unpack_layer(sn, io.BytesIO(_tar((".wh.gone.txt", b""), ("d2", None))), "l3", "l2")

        mounts = sn.prepare("ctr", "l3")
        with mounted(mounts, tmp_path / "rootfs") as root:
            assert (root / "etc" / "config").read_bytes() == b"v2"
            assert not (root / "gone.txt").exists()
            (root / "etc" / "config").write_bytes(b"v3")
            (root / "new").write_bytes(b"n")
            (root / "d" / "a").unlink()
            (root / "l2file").unlink()
            shutil.rmtree(root / "keep")
            (root / "keep").mkdir()
            (root / "keep" / "y").write_bytes(b"y")
            expected = _merged(root)

        out = io.BytesIO()
        diff_layer(lower_dirs(mounts), upper_dir(mounts), out, compression=NONE)
        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
            names = [m.name for m in tf]
        assert ".wh.l2file" in names
        assert "d/.wh.a" in names
        assert "keep/.wh..wh..opq" in names
        assert "keep/y" in names
        assert "etc/config" in names
        assert "new" in names
        assert not any("gone" in n for n in names)
        assert "d/b" not in names

        # The diff, applied as a fourth layer, reproduces the container's tree.
        out.seek(0)
        unpack_layer(sn, out, "l4", "l3")
        with mounted(sn.view("v4", "l4"), tmp_path / "view") as view:
            assert _merged(view) == expected
            with pytest.raises(OSError, match="Read-only"):
                (view / "z").write_bytes(b"")
        with mounted(sn.view("v1", "l1"), tmp_path / "view1") as view1:
            assert (view1 / "gone.txt").read_bytes() == b"g"
            with pytest.raises(OSError, match="Read-only"):
                (view1 / "z").write_bytes(b"")
        for key in ("v1", "v4", "ctr", "l4", "l3", "l2", "l1"):
            sn.remove(key)
        assert list(sn.walk()) == []
    finally:
        sn.close()
