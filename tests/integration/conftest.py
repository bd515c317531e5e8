"""Private dockerd and containerd instances that use skiff-runtime beside runc.

Module-scoped: starting dockerd takes seconds. Teardown stops them by PID and
fails the test run if anything had to be swept up behind them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from skiff.testing.peers import (
    PrivateContainerd,
    PrivateDockerd,
    busybox_tar,
    runtime_binary,
    write_oci_archive,
)

DOCKER_IMAGE = "busybox:skiff-test"
CTR_IMAGE = "docker.io/library/busybox:skiff-test"


def missing(*tools: str) -> str:
    gone = [t for t in tools if shutil.which(t) is None]
    return f"needs {', '.join(gone)} (apt-get install docker.io containerd runc)" if gone else ""


@pytest.fixture(scope="session")
def busybox_layer(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return busybox_tar(str(tmp_path_factory.mktemp("busybox-image")))


@pytest.fixture(scope="module")
def dockerd(busybox_layer: bytes) -> Iterator[PrivateDockerd]:
    if reason := missing("dockerd", "docker", "containerd", "runc"):
        pytest.skip(reason)
    daemon = PrivateDockerd({"skiff": runtime_binary()})
    try:
        daemon.load_image(busybox_layer, DOCKER_IMAGE)
        yield daemon
    finally:
        problems = daemon.stop()
    assert not problems, f"dockerd left things behind: {problems}"


@pytest.fixture(scope="module")
def containerd(busybox_layer: bytes) -> Iterator[PrivateContainerd]:
    if reason := missing("containerd", "ctr", "containerd-shim-runc-v2", "runc"):
        pytest.skip(reason)
    daemon = PrivateContainerd()
    try:
        archive = os.path.join(daemon.base, "busybox.oci.tar")
        write_oci_archive(busybox_layer, archive, CTR_IMAGE)
        imported = daemon.ctr("image", "import", archive)
        assert imported.returncode == 0, imported.stderr
        os.unlink(archive)
        yield daemon
    finally:
        problems = daemon.stop()
    assert not problems, f"containerd left things behind: {problems}"
