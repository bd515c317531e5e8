import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from skiff.build.context import ContextIndex, read_context
from skiff.build.dockerignore import context_tar
from skiff.build.sources import FolderTree, ForbiddenPath, collect, source_hash
from skiff.errors import InvalidArgument


def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in entries:
            payload = data.get(info.name)
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    buf.seek(0)
    return buf


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A context with folders, modes, symlinks (inside and out) and a hard link."""
    root = tmp_path / "ctx"
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "f").write_bytes(b"one" * 1000)
    (root / "d" / "sub" / "g").write_text("two")
    os.chmod(root / "d" / "sub" / "g", 0o4751)
    os.chmod(root / "d" / "sub", 0o711)
    (root / "top").write_text("top")
    os.link(root / "top", root / "hard")
    os.symlink("d/f", root / "link")
    os.symlink("d", root / "dirlink")
    os.symlink("/etc/passwd", root / "out")
    (root / "Dockerfile").write_text("FROM x\n")
    os.utime(root / "d" / "f", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    return root


def _index(folder: Path, scratch: Path, memory_limit: int = 1 << 30) -> ContextIndex:
    buf = io.BytesIO()
    context_tar(str(folder), "Dockerfile", buf)
    buf.seek(0)
    index = ContextIndex(str(scratch), memory_limit)
    index.add_tar(buf)
    return index


@pytest.mark.parametrize("memory_limit", [1 << 30, 0])  # in memory, spooled
def test_index_hashes_as_the_folder_and_materializes_it(
    folder: Path, tmp_path: Path, memory_limit: int
) -> None:
    index = _index(folder, tmp_path / "scratch", memory_limit)
    disk = FolderTree(str(folder))
    for names in (["d"], ["d/f"], ["link"], ["dirlink"], ["top", "hard", "d/sub"], ["d*"]):
        assert source_hash(index, collect(index, names, "COPY")) == source_hash(
            disk, collect(disk, names, "COPY")
        ), names
    found = collect(index, ["dirlink"], "COPY")
    assert found[0].path == "d"
    root = index.materialize(found)
    assert sorted(os.listdir(root)) == ["d"]  # only what the COPY reads
    assert (Path(root) / "d" / "f").read_bytes() == b"one" * 1000
    assert os.stat(Path(root) / "d" / "f").st_mtime_ns == 1_500_000_000_000_000_000
    assert stat.S_IMODE(os.stat(Path(root) / "d" / "sub" / "g").st_mode) == 0o4751
    assert stat.S_IMODE(os.stat(Path(root) / "d" / "sub").st_mode) == 0o711
    # folders keep their mtime (set after what is in them); pax mtimes are floats
    assert abs(os.stat(Path(root) / "d").st_mtime_ns - os.stat(folder / "d").st_mtime_ns) < 1000
    # the whole context, on disk, hashes as the original
    everything = index.materialize(collect(index, ["."], "COPY"))
    assert everything == root
    on_disk = FolderTree(root)
    assert source_hash(on_disk, collect(on_disk, ["."], "COPY")) == source_hash(
        index, collect(index, ["."], "COPY")
    )
    assert os.readlink(Path(root) / "out") == "/etc/passwd"
    assert index.read_bytes("Dockerfile") == b"FROM x\n"
    index.close()
    assert not os.path.exists(root)


def test_copy_through_links_out_of_the_context_is_refused(folder: Path, tmp_path: Path) -> None:
    index = _index(folder, tmp_path / "scratch")
    for name in ("out", "../x", "d/../../x"):
        with pytest.raises(ForbiddenPath):
            collect(index, [name], "COPY")
    index.close()


def test_hostile_tars_are_refused_and_write_nothing(tmp_path: Path) -> None:
    hostile = [
        [_member("h", tarfile.LNKTYPE, "../../etc/passwd")],
        [_member("h", tarfile.LNKTYPE, "/etc/passwd")],
        [_member("l", tarfile.SYMTYPE, "/etc"), _member("l/owned")],
        [_member("l", tarfile.SYMTYPE, "../.."), _member("l/owned")],
        [_member("../x")],
        [_member("a/../../x")],
    ]
    for n, entries in enumerate(hostile):
        scratch = tmp_path / f"bad{n}"
        with pytest.raises(ForbiddenPath):
            read_context(
                _tar(entries, {"l/owned": b"x", "../x": b"x", "a/../../x": b"x"}), str(scratch)
            )
        assert not scratch.exists()
    assert not os.path.exists("/etc/owned")


def test_tar_details(tmp_path: Path) -> None:
    f = _member("/abs/f")  # a leading / is dropped, as tarfile's tar filter does
    f.mode = 0o4755
    inside = _member("l", tarfile.SYMTYPE, "real")
    real = _member("real", tarfile.DIRTYPE)
    through = _member("l/x")  # through a link that stays inside: lands in real/
    hard = _member("hl", tarfile.LNKTYPE, "abs/f")
    fifo = _member("p", tarfile.FIFOTYPE)
    again = _member("abs/f")  # a later member replaces an earlier one
    index = read_context(
        _tar([f, real, inside, through, hard, fifo], {"/abs/f": b"hi", "l/x": b"x"}),
        str(tmp_path / "s"),
    )
    st = index.lstat("abs/f")
    assert st is not None
    assert stat.S_IMODE(st.mode) == 0o4755
    assert index.digest("abs/f") == hashlib.sha256(b"hi").hexdigest()
    assert index.lstat("abs") is not None  # the parent the tar did not list
    assert index.read_bytes("real/x") == b"x"
    assert index.read_bytes("hl") == b"hi"
    assert index.lstat("p") is None
    assert index.lstat("l/x") is None
    index.close()
    root = _member(".", tarfile.DIRTYPE)
    root.mode = 0o751
    index = read_context(
        _tar([root, f, again], {"/abs/f": b"hi", "abs/f": b"new"}), str(tmp_path / "t")
    )
    top = index.lstat("")
    assert top is not None
    assert top.mode == stat.S_IFDIR | 0o751  # as the unpacked folder's mode was
    assert index.read_bytes("abs/f") == b"new"
    with pytest.raises(InvalidArgument, match="failed to read the build context"):
        read_context(io.BytesIO(b"not a tar" * 100), str(tmp_path / "u"))
    assert read_context(io.BytesIO(b""), str(tmp_path / "v")).listdir("") == []


def test_small_parts_of_received_buffers_are_copied_big_ones_kept() -> None:
    from skiff.build.context import _own

    buffer = bytes(1000)
    assert isinstance(_own(memoryview(buffer)[:100]), bytes)
    kept = _own(memoryview(buffer)[:600])
    assert isinstance(kept, memoryview)
    assert kept.obj is buffer


def test_nul_in_a_name_is_refused(tmp_path: Path) -> None:
    data = _tar([_member("ab")], {"ab": b"x"}).getvalue()
    record = b"12 path=a\0b\n"  # a pax header naming the next member "a<NUL>b"
    header = tarfile.TarInfo("pax")
    header.type = tarfile.XHDTYPE
    header.size = len(record)
    stream = header.tobuf(tarfile.USTAR_FORMAT) + record.ljust(512, b"\0") + data
    with pytest.raises(InvalidArgument, match="NUL"):
        read_context(io.BytesIO(stream), str(tmp_path / "s"))
