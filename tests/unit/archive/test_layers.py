"""Layer apply/diff behaviour: attributes, whiteouts, hardlinks, compression, digests."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from typing import TYPE_CHECKING

import pytest
import zstandard
from layers import E, make_tar

from skiff.archive import GZIP, NONE, ZSTD, apply_layer, diff_layer, tar_dir
from skiff.archive.apply import OVERLAY_OPAQUE_XATTR
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    from pathlib import Path

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def members(data: bytes) -> list[tuple[str, str]]:
    kinds = {tarfile.REGTYPE: "file", tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink"}
    kinds[tarfile.LNKTYPE] = "hardlink"
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return [(m.name, kinds.get(m.type, repr(m.type))) for m in tf]


def test_attributes_preserved(tmp_path: Path) -> None:
    layer = make_tar(
        E("bin", "dir", mode=0o755, mtime=1000),
        E("bin/tool", data=b"#!", mode=0o4755, uid=1, gid=2, mtime=2000),
        E("bin/link", "symlink", link="tool", mtime=3000),
        E("bin/hard", "hardlink", link="bin/tool"),
        E("pipe", "fifo", mode=0o640),
    )
    applied = apply_layer(io.BytesIO(layer), tmp_path)
    assert applied.size == 2
    assert applied.diff_id == Digest.from_bytes(layer)
    assert applied.compression == NONE
    tool = (tmp_path / "bin" / "tool").stat()
    assert stat.S_IMODE(tool.st_mode) == 0o4755
    assert tool.st_mtime == 2000
    assert tool.st_nlink == 2
    assert (tmp_path / "bin").stat().st_mtime == 1000
    assert os.readlink(tmp_path / "bin" / "link") == "tool"
    assert (tmp_path / "bin" / "link").lstat().st_mtime == 3000
    assert stat.S_ISFIFO((tmp_path / "pipe").lstat().st_mode)
    if os.geteuid() == 0:
        assert (tool.st_uid, tool.st_gid) == (1, 2)


def test_user_xattrs(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    probe.write_text("")
    try:
        os.setxattr(probe, "user.t", b"1")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    dest = tmp_path / "d"
    dest.mkdir()
    apply_layer(io.BytesIO(make_tar(E("f", xattrs={"user.k": b"\xff\x00v"}))), dest)
    assert os.getxattr(dest / "f", "user.k") == b"\xff\x00v"
    out = io.BytesIO()
    tar_dir(dest, out, compression=NONE)
    again = tmp_path / "again"
    again.mkdir()
    apply_layer(io.BytesIO(out.getvalue()), again)
    assert os.getxattr(again / "f", "user.k") == b"\xff\x00v"


def test_delete_mode_whiteouts(tmp_path: Path) -> None:
    base = make_tar(E("a", data=b"1"), E("d", "dir"), E("d/old", data=b"o"), E("keep", data=b"k"))
    apply_layer(io.BytesIO(base), tmp_path, whiteouts="delete")
    top = make_tar(E("d/new", data=b"n"), E("d/.wh..wh..opq"), E(".wh.a"), E(".wh.missing"))
    apply_layer(io.BytesIO(top), tmp_path, whiteouts="delete")
    assert sorted(os.listdir(tmp_path)) == ["d", "keep"]
    assert os.listdir(tmp_path / "d") == ["new"]  # opaque came after new: new survives


@root_only
def test_overlay_whiteouts(tmp_path: Path) -> None:
    layer = make_tar(
        E(".wh.gone"),
        E("d", "dir"),
        E("d/.wh..wh..opq"),
        E("d/kept", data=b"k"),
        E(".wh.re"),
        E("re", "dir"),
        E("same", data=b"s"),
        E(".wh.same"),
        E(".wh..wh.plnk"),
    )
    apply_layer(io.BytesIO(layer), tmp_path)
    gone = (tmp_path / "gone").lstat()
    assert stat.S_ISCHR(gone.st_mode)
    assert gone.st_rdev == 0
    assert os.getxattr(tmp_path / "d", OVERLAY_OPAQUE_XATTR) == b"y"
    assert (tmp_path / "d" / "kept").read_bytes() == b"k"
    # Deleted then recreated in the same layer: a folder hiding what was below.
    assert (tmp_path / "re").is_dir()
    assert os.getxattr(tmp_path / "re", OVERLAY_OPAQUE_XATTR) == b"y"
    # A whiteout never hides content of its own layer.
    assert (tmp_path / "same").read_bytes() == b"s"
    assert not (tmp_path / ".wh..wh.plnk").exists()


@root_only
def test_diff_layer_converts_overlay_markers(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "d").mkdir(parents=True)
    (lower / "gone").write_text("x")
    upper.mkdir()
    os.mknod(upper / "gone", stat.S_IFCHR, os.makedev(0, 0))
    os.mknod(upper / "never-existed", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "d").mkdir()
    os.setxattr(upper / "d", OVERLAY_OPAQUE_XATTR, b"y")
    os.setxattr(upper / "d", "trusted.overlay.origin", b"junk")
    (upper / "d" / "f").write_text("f")
    os.link(upper / "d" / "f", upper / "hard")
    out = io.BytesIO()
    digests = diff_layer([lower], upper, out, compression=NONE)
    assert members(out.getvalue()) == [
        (".wh.gone", "file"),
        ("d", "dir"),
        ("d/.wh..wh..opq", "file"),
        ("d/f", "file"),
        ("hard", "hardlink"),
    ]
    assert digests.digest == digests.diff_id == Digest.from_bytes(out.getvalue())
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        assert not any("trusted.overlay" in k for m in tf for k in m.pax_headers)


def _tree(root: Path) -> list[tuple[str, int, int, bytes | str | None]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            body: bytes | str | None = None
            if stat.S_ISREG(st.st_mode):
                body = open(p, "rb").read()  # noqa: SIM115
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(p)
            out.append((os.path.relpath(p, root), st.st_mode, int(st.st_mtime), body))
    return out


@pytest.mark.parametrize("compression", [GZIP, ZSTD, NONE])
def test_round_trip_and_both_digests(tmp_path: Path, compression: str) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "a" / "b" / "f").write_bytes(os.urandom(200_000))
    (src / "a" / "l").symlink_to("b/f")
    os.link(src / "a" / "b" / "f", src / "h")
    os.utime(src / "a", (5, 5))
    blob = io.BytesIO()
    made = tar_dir(src, blob, compression=compression)
    data = blob.getvalue()
    assert made.digest == Digest.from_bytes(data)
    assert made.size == len(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    applied = apply_layer(io.BytesIO(data), dest)
    assert (applied.digest, applied.compressed_size) == (made.digest, made.size)
    assert applied.diff_id == made.diff_id
    assert applied.compression == compression
    assert _tree(dest) == _tree(src)
    again = io.BytesIO()
    assert tar_dir(src, again, compression=compression).diff_id == made.diff_id  # deterministic


def test_multi_member_gzip_and_multi_frame_zstd(tmp_path: Path) -> None:
    layer = make_tar(E("f", data=b"hello" * 1000))
    for blob in (
        gzip.compress(layer[:700]) + gzip.compress(layer[700:]),
        zstandard.ZstdCompressor().compress(layer[:700])
        + zstandard.ZstdCompressor().compress(layer[700:]),
        gzip.compress(layer) + b"\0" * 1024,
    ):
        dest = tmp_path / hashlib.sha256(blob).hexdigest()
        dest.mkdir()
        applied = apply_layer(io.BytesIO(blob), dest)
        assert applied.diff_id == Digest.from_bytes(layer)
        assert applied.digest == Digest.from_bytes(blob)
        assert (dest / "f").read_bytes() == b"hello" * 1000


def test_gzip_level_is_configurable(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"a" * 100_000)
    fast, best = io.BytesIO(), io.BytesIO()
    a = tar_dir(tmp_path, fast, level=1)
    b = tar_dir(tmp_path, best, level=9)
    assert a.diff_id == b.diff_id
    assert a.size != b.size
