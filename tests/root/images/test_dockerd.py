"""Round trip with the real dockerd: its `docker save` loads into skiff, skiff's save
loads into it. A private dockerd on short tmp paths (no bridge, no iptables), stopped by
its PID; skipped when dockerd is not installed."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from skiff.images.busybox import make_rootfs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from skiff.images.service import ImageService

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("dockerd") is None or shutil.which("docker") is None,
        reason="dockerd or the docker CLI is not installed",
    ),
]


@pytest.fixture(scope="module")
def docker() -> Iterator[list[str]]:
    base = tempfile.mkdtemp(prefix="skimg-", dir="/tmp")  # short: unix socket paths are short
    sock, pidfile = f"{base}/s", f"{base}/p"
    log = open(f"{base}/log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root", f"{base}/d",
            "--exec-root", f"{base}/e",
            "--pidfile", pidfile,
            "-H", f"unix://{sock}",
            "--bridge", "none",
            "--iptables=false",
            "--ip6tables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    cli = ["docker", "-H", f"unix://{sock}"]
    try:
        deadline = time.monotonic() + 60
        while subprocess.run([*cli, "version"], capture_output=True, check=False).returncode:
            if proc.poll() is not None or time.monotonic() > deadline:
                with open(f"{base}/log") as f:
                    pytest.skip(f"dockerd did not start: {f.read()[-2000:]}")
            time.sleep(0.3)
        yield cli
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        _unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)


def _unmount_under(base: str) -> None:
    with open("/proc/self/mounts") as f:
        targets = [line.split()[1] for line in f if line.split()[1].startswith(base + "/")]
    for target in sorted(targets, key=len, reverse=True):
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def _run(*args: str) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"{args}: {out.stderr}"
    return out.stdout


def test_dockerd_save_loads_into_skiff_and_back(
    docker: list[str], store: ImageService, tmp_path: Path
) -> None:
    rootfs = make_rootfs(str(tmp_path / "rootfs"))
    _run("tar", "-C", rootfs, "-cf", str(tmp_path / "rootfs.tar"), ".")
    docker_id = _run(
        *docker, "import", "--change", 'CMD ["sh"]', str(tmp_path / "rootfs.tar"), "skt/bb:docker"
    ).strip()
    _run(*docker, "save", "-o", str(tmp_path / "from-docker.tar"), "skt/bb:docker")
    with open(tmp_path / "from-docker.tar", "rb") as f:
        assert store.load(f) == ["Loaded image: skt/bb:docker"]
    img = store.get("skt/bb:docker")
    inspect = json.loads(_run(*docker, "image", "inspect", "skt/bb:docker"))[0]
    assert img.id == docker_id == inspect["Id"]
    assert img.diff_ids == inspect["RootFS"]["Layers"]
    assert img.config.cmd == ["sh"]

    store.tag("skt/bb:docker", "skt/bb", "skiff")
    with open(tmp_path / "from-skiff.tar", "wb") as f:
        store.save(["skt/bb:skiff"], f)
    out = _run(*docker, "load", "-i", str(tmp_path / "from-skiff.tar"))
    assert "Loaded image: skt/bb:skiff" in out
    back = json.loads(_run(*docker, "image", "inspect", "skt/bb:skiff"))[0]
    assert back["Id"] == img.id
    _run(*docker, "rmi", "skt/bb:skiff", "skt/bb:docker")
