"""The image commands' formatting (docker's units, columns, truncation) and their
behaviour against the in-memory backend served on a temporary socket."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.api.images import ImagesApi
from skiff.cli.commands import history, images
from skiff.cli.commands.tag import split_reference
from skiff.cli.main import main
from skiff.cli.output import ellipsis, human_duration, human_size_precision, truncate_id
from skiff.testing.apiserver import ApiServer, serve_api
from skiff.testing.images import FakeImageBackend

ID = "sha256:" + "ab" * 32


def test_human_duration_matches_go_units() -> None:
    cases = {
        0.5: "Less than a second",
        1: "1 second",
        59: "59 seconds",
        60: "About a minute",
        119: "About a minute",
        120: "2 minutes",
        3599: "59 minutes",
        3600: "About an hour",
        5400: "2 hours",  # rounded to the nearest hour
        47 * 3600: "47 hours",
        3 * 86400: "3 days",
        20 * 86400: "2 weeks",
        90 * 86400: "3 months",
        800 * 86400: "2 years",
    }
    for seconds, text in cases.items():
        assert human_duration(seconds) == text, seconds


def test_sizes_and_ids() -> None:
    assert human_size_precision(1984240) == "1.98MB"
    assert human_size_precision(0) == "0B"
    assert human_size_precision(999) == "999B"
    assert human_size_precision(1_500_000_000) == "1.5GB"
    assert truncate_id(ID) == "ab" * 6
    assert ellipsis("x" * 50, 45) == "x" * 44 + "…"
    assert ellipsis("short", 45) == "short"


def test_image_rows_per_tag_and_dangling() -> None:
    summary = {
        "Id": ID,
        "Created": 0,
        "Size": 1000,
        "SharedSize": -1,
        "Containers": -1,
        "RepoTags": ["busybox:latest", "busybox:1", "localhost:5000/a/b:c"],
        "RepoDigests": ["busybox@sha256:" + "cd" * 32],
    }
    rows = images.rows([summary])
    assert [(r["Repository"], r["Tag"], r["Digest"]) for r in rows] == [
        ("busybox", "latest", "<none>"),
        ("busybox", "1", "<none>"),
        ("localhost:5000/a/b", "c", "<none>"),
    ]
    assert rows[0]["ID"] == "ab" * 6
    assert rows[0]["Size"] == "1kB"
    assert rows[0]["SharedSize"] == "N/A"
    with_digests = images.rows([summary], digests=True)
    assert with_digests[0]["Digest"] == "sha256:" + "cd" * 32
    dangling = dict(summary, RepoTags=["<none>:<none>"], RepoDigests=["<none>@<none>"])
    [row] = images.rows([dangling], trunc=False)
    assert (row["Repository"], row["Tag"], row["ID"]) == ("<none>", "<none>", ID)


def test_history_rows() -> None:
    entries = [
        {"Id": ID, "Created": 0, "CreatedBy": "/bin/sh -c #(nop)  ENV A=" + "a" * 60, "Size": 0,
         "Comment": ""},
        {"Id": "<missing>", "Created": 0, "CreatedBy": "x\ty", "Size": 1984240,
         "Comment": "Imported from -"},
    ]  # fmt: skip
    rows = history.rows(entries, trunc=True, human=True)
    assert rows[0]["ID"] == "ab" * 6
    assert rows[0]["CreatedBy"].endswith("…")
    assert len(rows[0]["CreatedBy"]) == 45
    assert rows[1]["ID"] == "<missing>"
    assert rows[1]["CreatedBy"] == "x y"
    assert rows[1]["Size"] == "1.98MB"
    plain = history.rows(entries, trunc=False, human=False)
    assert plain[1]["Size"] == "1984240"
    assert plain[0]["CreatedSince"] == plain[0]["CreatedAt"]


def test_bool_flag_never_takes_the_next_word() -> None:
    assert history.take_bool_flag(["-H=false", "busybox"], ("-H", "--human"), True) == (
        False,
        ["busybox"],
    )
    assert history.take_bool_flag(["-H", "busybox"], ("-H",), False) == (True, ["busybox"])


def test_split_reference() -> None:
    assert split_reference("a:b") == ("a", "b")
    assert split_reference("localhost:5000/a") == ("localhost:5000/a", None)
    assert split_reference("a@sha256:" + "0" * 64) == ("a@sha256:" + "0" * 64, None)


# -- the commands against the fake backend ----------------------------------------------


@pytest.fixture
def backend() -> FakeImageBackend:
    return FakeImageBackend()


@pytest.fixture
def server(tmp_path: Path, backend: FakeImageBackend) -> Iterator[ApiServer]:
    with serve_api(str(tmp_path / "api.sock"), ImagesApi(backend).routes()) as srv:
        yield srv


def _run(server: ApiServer, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-H", "unix://" + server.path, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_images_table(
    server: ApiServer, backend: FakeImageBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    image = backend.add("busybox", [b"x" * 2000])
    code, out, _ = _run(server, capsys, "images")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert header.index("TAG") == len("REPOSITORY   ")
    assert row.split()[:3] == ["busybox", "latest", image.short_id]
    assert row.endswith("2kB")
    assert _run(server, capsys, "images", "-q")[1] == image.short_id + "\n"
    code, out, _ = _run(server, capsys, "images", "--format", "{{json .}}")
    assert json.loads(out)["Repository"] == "busybox"
    code, out, _ = _run(server, capsys, "image", "ls", "nomatch")
    assert out.splitlines()[1:] == []


def test_rmi_reports_each_error_and_exits_1(
    server: ApiServer, backend: FakeImageBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.add("busybox", [b"1"])
    backend.tag("busybox", "other", "latest")
    code, out, err = _run(server, capsys, "rmi", "nope", "other", "gone:1")
    assert code == 1
    assert out == "Untagged: other:latest\n"
    assert err.splitlines() == [
        "Error response from daemon: No such image: nope:latest",
        "Error response from daemon: No such image: gone:1",
    ]


def test_inspect_prints_found_and_reports_missing(
    server: ApiServer, backend: FakeImageBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    image = backend.add("busybox", [b"1"])
    code, out, err = _run(server, capsys, "inspect", "busybox", "nope")
    assert code == 1
    assert [i["Id"] for i in json.loads(out)] == [image.id]
    assert out.startswith("[\n    {\n")
    assert err.strip() == "Error: No such object: nope"
    code, out, err = _run(server, capsys, "image", "inspect", "-f", "{{.Os}}", "busybox")
    assert (code, out) == (0, "linux\n")


def test_import_save_load_prune(
    server: ApiServer,
    backend: FakeImageBackend,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    code, out, _ = _run(server, capsys, "import", "-c", "CMD sh", "-m", "m", str(rootfs), "imp")
    assert code == 0
    assert out.strip() == backend.get("imp").id
    code, _, err = _run(server, capsys, "import", str(tmp_path / "none.tar"))
    assert code == 1
    assert "no such file or directory" in err
    archive = tmp_path / "out.tar"
    assert _run(server, capsys, "save", "-o", str(archive), "imp")[0] == 0
    assert tarfile.is_tarfile(archive)
    code, _, err = _run(server, capsys, "save", "-o", str(tmp_path / "x.tar"), "nope")
    assert code == 1
    assert not (tmp_path / "x.tar").exists()
    assert _run(server, capsys, "rmi", "imp")[0] == 0
    code, out, _ = _run(server, capsys, "load", "-i", str(archive))
    assert out == "Loaded image: imp:latest\n"
    backend.add(None, [b"dangling"])
    code, out, _ = _run(server, capsys, "image", "prune", "-f")
    assert out.startswith("Deleted Images:\ndeleted: sha256:")
    assert out.endswith("Total reclaimed space: 8B\n")


def test_image_commands_import_no_server_stack() -> None:
    code = (
        "import sys; from skiff.cli.main import main;"
        "[main(a) for a in (['images'], ['image', 'ls'], ['history', 'x'], ['rmi', 'x'],"
        " ['image', 'inspect', 'x'], ['tag', 'a', 'b'])];"
        "bad = [m for m in ('aiohttp', 'rich', 'cryptography') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = dict(os.environ, SKIFF_HOST="unix:///nonexistent.sock")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
