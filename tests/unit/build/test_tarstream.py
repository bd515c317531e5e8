import io
import os
import tarfile

import pytest

from skiff.build.tarstream import TarReader, open_body


def _tar(fmt: int, compression: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compression, format=fmt) as tar:
        long_dir = "d" * 120
        for name, data in (
            ("small", b"s"),
            (f"{long_dir}/big", os.urandom((1 << 20) + 5000)),
            ("e", b""),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4750
            info.uid, info.gid = 1000, 50
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("l")
        link.type = tarfile.SYMTYPE
        link.linkname = "t" * 150
        tar.addfile(link)
        folder = tarfile.TarInfo("f" * 110 + "/")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    return buf.getvalue()


def _read(data: bytes, *, skip: str = "") -> list[tuple[str, bytes, int, int, int, bytes, str]]:
    out = []
    for m in TarReader(open_body(io.BytesIO(data))):
        content = b"" if m.name.endswith(skip) and skip else b"".join(m.chunks())
        out.append((m.name, m.type, m.mode, m.uid, m.size, content, m.linkname))
    return out


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])  # long names each way
@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_reads_what_tarfile_reads(fmt: int, compression: str) -> None:
    data = _tar(fmt, compression)
    expected = []
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            content = f.read() if f is not None else b""
            expected.append((m.name, m.type, m.mode, m.uid, m.size, content, m.linkname))
    got = _read(data)
    assert [g[:5] + g[6:] for g in got] == [e[:5] + e[6:] for e in expected]
    assert [g[5] for g in got] == [e[5] for e in expected]
    assert got[1][2] == 0o4750


def test_unread_data_is_skipped() -> None:
    names = [m[0] for m in _read(_tar(tarfile.PAX_FORMAT), skip="big")]
    assert names[-2:] == ["l", "f" * 110]


def test_bad_input_is_an_error() -> None:
    data = _tar(tarfile.PAX_FORMAT)
    with pytest.raises(EOFError):
        _read(data[: 512 * 4 + 100])  # cut inside a file
    broken = bytearray(data)
    broken[0] ^= 0xFF  # the checksum no longer matches
    with pytest.raises(tarfile.TarError):
        _read(bytes(broken))
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    with pytest.raises(tarfile.TarError, match="sparse"):
        _read(info.tobuf(tarfile.GNU_FORMAT))
    assert _read(b"") == []
