"""Hostile layers never write outside their destination (issue 3, "Bad input")."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import random
import shutil
import stat
from typing import TYPE_CHECKING

import pytest
import zstandard
from layers import E, make_tar

from skiff.archive import CorruptLayer, LayerError, UnsafeLayer, apply_layer

if TYPE_CHECKING:
    from conftest import Box

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def apply(box: Box, data: bytes, **kw: object) -> None:
    apply_layer(io.BytesIO(data), box.dest, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["../escape", "a/../../escape", "a/b/../../../escape", "/abs", ".."]
)
def test_bad_paths_refused(box: Box, name: str) -> None:
    with pytest.raises(UnsafeLayer):
        apply(box, make_tar(E("ok", data=b"x"), E(name, data=b"x")))
    box.assert_untouched()


def test_symlink_then_write_through_stays_inside(box: Box) -> None:
    target = str(box.sentinel)
    apply(box, make_tar(E("a", "symlink", link=target), E("a/pwned", data=b"x")))
    box.assert_untouched()
    assert (box.dest / target.lstrip("/") / "pwned").read_bytes() == b"x"


def test_relative_symlink_escape_is_clamped(box: Box) -> None:
    apply(box, make_tar(E("d", "dir"), E("d/up", "symlink", link="../../../.."), E("d/up/x")))
    box.assert_untouched()
    assert (box.dest / "x").exists()


def test_symlink_chain_through_symlinks(box: Box) -> None:
    apply(
        box,
        make_tar(
            E("a", "symlink", link="b/c"),
            E("b", "symlink", link=str(box.root)),
            E("a/evil", data=b"x"),
        ),
    )
    box.assert_untouched()


def test_symlink_replaced_by_file_does_not_write_through(box: Box) -> None:
    apply(box, make_tar(E("f", "symlink", link=str(box.sentinel / "file")), E("f", data=b"new")))
    box.assert_untouched()
    assert (box.dest / "f").read_bytes() == b"new"
    assert not (box.dest / "f").is_symlink()


def test_symlink_replaced_by_dir(box: Box) -> None:
    apply(box, make_tar(E("d", "symlink", link=str(box.sentinel)), E("d", "dir"), E("d/x")))
    box.assert_untouched()
    assert (box.dest / "d").is_dir()
    assert not (box.dest / "d").is_symlink()


def test_symlink_loop(box: Box) -> None:
    with pytest.raises(UnsafeLayer, match="symbolic links"):
        apply(box, make_tar(E("a", "symlink", link="b"), E("b", "symlink", link="a"), E("a/x")))
    box.assert_untouched()


@pytest.mark.parametrize("link", ["../sentinel/file", "/etc/passwd", "a/../../x"])
def test_hardlink_out_of_layer_refused(box: Box, link: str) -> None:
    with pytest.raises(UnsafeLayer):
        apply(box, make_tar(E("h", "hardlink", link=link)))
    box.assert_untouched()


def test_hardlink_through_planted_symlink(box: Box) -> None:
    with pytest.raises(LayerError, match="not in layer"):
        apply(
            box,
            make_tar(E("a", "symlink", link=str(box.sentinel)), E("h", "hardlink", link="a/file")),
        )
    box.assert_untouched()
    assert (box.sentinel / "file").stat().st_nlink == 1


def test_hardlink_to_symlink_links_the_symlink(box: Box) -> None:
    apply(
        box,
        make_tar(
            E("s", "symlink", link=str(box.sentinel / "file")),
            E("h", "hardlink", link="s"),
            E("h", data=b"overwrite"),
        ),
    )
    box.assert_untouched()
    assert os.readlink(box.dest / "s") == str(box.sentinel / "file")
    assert (box.dest / "h").read_bytes() == b"overwrite"


def test_hardlink_missing_target(box: Box) -> None:
    with pytest.raises(LayerError, match="not in layer"):
        apply(box, make_tar(E("h", "hardlink", link="nope")))
    box.assert_untouched()


@pytest.mark.parametrize("mode", ["overlay", "delete"])
def test_whiteouts_through_planted_symlink(box: Box, mode: str) -> None:
    if mode == "overlay" and os.geteuid() != 0:
        pytest.skip("overlay whiteouts need root")
    apply(
        box,
        make_tar(
            E("a", "symlink", link=str(box.sentinel)),
            E("a/.wh.file"),
            E("a/.wh..wh..opq"),
        ),
        whiteouts=mode,
    )
    box.assert_untouched()


@pytest.mark.parametrize("name", [".wh.", "d/.wh.", ".wh..."])
def test_invalid_whiteouts(box: Box, name: str) -> None:
    with pytest.raises(LayerError):
        apply(box, make_tar(E(name)), whiteouts="delete")
    box.assert_untouched()


@root_only
def test_device_nodes_only_inside(box: Box) -> None:
    apply(
        box,
        make_tar(
            E("a", "symlink", link=str(box.sentinel)),
            E("a/null", "chr", dev=(1, 3), mode=0o666),
            E("dev/loop", "blk", dev=(7, 0)),
        ),
    )
    box.assert_untouched()
    st = (box.dest / str(box.sentinel).lstrip("/") / "null").lstat()
    assert stat.S_ISCHR(st.st_mode)
    assert os.major(st.st_rdev) == 1


def test_devices_skipped_when_not_allowed(box: Box) -> None:
    apply(box, make_tar(E("null", "chr", dev=(1, 3))), devices=False)
    assert not (box.dest / "null").exists()


@root_only
def test_overlay_xattrs_from_tar_are_dropped(box: Box) -> None:
    apply(
        box,
        make_tar(E("d", "dir", xattrs={"trusted.overlay.redirect": b"/etc", "trusted.x": b"1"})),
    )
    attrs = os.listxattr(box.dest / "d")
    assert "trusted.overlay.redirect" not in attrs
    assert "trusted.x" in attrs


def test_duplicates_last_wins(box: Box) -> None:
    apply(
        box,
        make_tar(
            E("x", data=b"1"),
            E("x", "dir"),
            E("x/child", data=b"c"),
            E("y", "dir"),
            E("y/z", data=b"z"),
            E("y", data=b"file now"),
            E("x", "dir", mode=0o700),
        ),
    )
    box.assert_untouched()
    assert (box.dest / "x" / "child").read_bytes() == b"c"
    assert stat.S_IMODE((box.dest / "x").stat().st_mode) == 0o700
    assert (box.dest / "y").read_bytes() == b"file now"


def test_file_as_parent_is_an_error(box: Box) -> None:
    with pytest.raises(LayerError, match="not a folder"):
        apply(box, make_tar(E("f", data=b"x"), E("f/g", data=b"y")))
    box.assert_untouched()


# Truncation and corruption

BIG = make_tar(E("a", data=os.urandom(5000)), E("b", data=b"bb"), E("c", "dir"))


@pytest.mark.parametrize("cut", [0, 100, 512, 700, 1536, 1536 + 5000, 6656, 7000])
def test_truncated_plain_tar(box: Box, cut: int) -> None:
    # Header sizes vary with PAX records, so find real member boundaries too.
    with pytest.raises(CorruptLayer):
        apply(box, BIG[:cut])
    box.assert_untouched()


def test_truncated_at_every_block_boundary(box: Box) -> None:
    end = BIG.rstrip(b"\0")
    end_blocks = (len(end) + 511) // 512
    for blocks in range(end_blocks + 1):
        dest = box.root / "dest"
        for child in list(dest.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        with pytest.raises(CorruptLayer):
            apply(box, BIG[: blocks * 512])
    box.assert_untouched()


def test_truncated_gzip(box: Box) -> None:
    data = gzip.compress(BIG)
    with pytest.raises(CorruptLayer, match="truncated"):
        apply(box, data[: len(data) - 4])
    with pytest.raises(CorruptLayer):
        apply(box, data[: len(data) // 2])
    box.assert_untouched()


def test_truncated_zstd(box: Box) -> None:
    data = zstandard.ZstdCompressor().compress(BIG)
    with pytest.raises(CorruptLayer, match="truncated"):
        apply(box, data[:-3])
    box.assert_untouched()


def test_corrupt_gzip(box: Box) -> None:
    data = bytearray(gzip.compress(BIG))
    data[20] ^= 0xFF
    with pytest.raises(CorruptLayer):
        apply(box, bytes(data))


def test_corrupt_header_mid_stream(box: Box) -> None:
    data = bytearray(BIG)
    # Corrupt the checksum field of a later header (the second member's).
    # Computed, not searched for: "a"'s random data could contain the name.
    second = 512 + (5000 + 511) // 512 * 512
    assert BIG[second : second + 2] == b"b\0"
    data[second + 148 : second + 156] = b"9999999\0"
    with pytest.raises(CorruptLayer, match="header"):
        apply(box, bytes(data))


def test_garbage_is_corrupt(box: Box) -> None:
    with pytest.raises(CorruptLayer):
        apply(box, os.urandom(4096))


def test_empty_stream_is_corrupt(box: Box) -> None:
    with pytest.raises(CorruptLayer):
        apply(box, b"")


# Fuzz-ish: random names, kinds and link targets

_PARTS = ["a", "b", "..", ".", "", "l", ".wh.a", ".wh..wh..opq", "/"]


def _random_entry(rng: random.Random, outside: str) -> E:
    name = "/".join(rng.choice(_PARTS) for _ in range(rng.randint(1, 4)))
    kind = rng.choice(["file", "dir", "symlink", "hardlink", "fifo"])
    link = rng.choice([outside, outside + "/file", "..", "../..", "a", "a/b", "/", "l/a"])
    return E(name, kind, data=b"x" * rng.randint(0, 3), link=link)


@pytest.mark.parametrize("seed", range(150))
def test_fuzz_never_escapes(box: Box, seed: int) -> None:
    rng = random.Random(seed)
    entries = [_random_entry(rng, str(box.sentinel)) for _ in range(rng.randint(1, 12))]
    with contextlib.suppress(LayerError, PermissionError):
        apply(box, make_tar(*entries), whiteouts=rng.choice(["overlay", "delete"]))
    box.assert_untouched()
