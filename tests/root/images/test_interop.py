"""Interop: skopeo and umoci read what skiff writes; skiff reads what skopeo writes."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from skiff.images.service import ImageService

pytestmark = pytest.mark.root

skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")
umoci = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci not installed")


def _run(*args: str) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"{args}: {out.stderr}"
    return out.stdout


@skopeo
def test_skopeo_reads_saved_archive(store: ImageService, busybox_archive: Path) -> None:
    (line,) = store.load(open(busybox_archive, "rb"))  # noqa: SIM115
    assert line == "Loaded image: busybox:latest"
    img = store.get("busybox")
    info = json.loads(_run("skopeo", "inspect", f"docker-archive:{busybox_archive}"))
    assert info["Layers"] == img.diff_ids
    assert info["Architecture"] == img.architecture
    assert info["Os"] == "linux"
    # The same tar is an OCI layout too (Docker 25+ writes both).
    config = json.loads(_run("skopeo", "inspect", "--config", f"oci-archive:{busybox_archive}"))
    assert config["rootfs"]["diff_ids"] == img.diff_ids


@skopeo
def test_skopeo_copies_our_layout_and_we_read_skopeos(
    store: ImageService, busybox_archive: Path, tmp_path: Path
) -> None:
    store.load(open(busybox_archive, "rb"))  # noqa: SIM115
    layout = tmp_path / "ours"
    store.export_oci_layout("busybox", layout)
    copied = tmp_path / "copied"
    _run("skopeo", "copy", f"oci:{layout}:latest", f"oci:{copied}:v1")
    _run("skopeo", "copy", f"oci:{layout}:latest", f"docker-archive:{tmp_path / 'd.tar'}:x/y:z")
    (img,) = store.import_oci_layout(copied, "roundtrip:v1")
    assert img.id == store.get("busybox").id
    assert img.repo_tags == ["busybox:latest", "roundtrip:v1"]
    assert store.load(open(tmp_path / "d.tar", "rb")) == ["Loaded image: x/y:z"]  # noqa: SIM115
    assert store.get("x/y:z").id == img.id


@umoci
def test_umoci_reads_our_layout(store: ImageService, busybox_archive: Path, tmp_path: Path) -> None:
    store.load(open(busybox_archive, "rb"))  # noqa: SIM115
    layout = tmp_path / "layout"
    store.export_oci_layout("busybox", layout)
    assert _run("umoci", "ls", "--layout", str(layout)).split() == ["latest"]
    stat = _run("umoci", "stat", "--image", f"{layout}:latest")
    assert "skiff image bootstrap busybox" in stat
    bundle = tmp_path / "bundle"
    _run("umoci", "unpack", "--image", f"{layout}:latest", str(bundle))
    assert (bundle / "rootfs" / "bin" / "busybox").is_file()
    assert json.loads((bundle / "config.json").read_text())["process"]["args"] == ["sh"]
