"""docker push / docker pull through skiffd, against Debian's docker-registry on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from skiff.testing import realregistry
from skiff.testing.realregistry import DistributionRegistry

from .test_images import Daemon, daemon, dk, skiff

__all__ = ["daemon"]

pytestmark = pytest.mark.skipif(
    not realregistry.available(), reason="docker-registry is not installed"
)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DistributionRegistry]:
    with DistributionRegistry(tmp_path / "registry") as reg:
        yield reg


def test_docker_push_then_pull_by_tag_and_digest(
    daemon: Daemon, registry: DistributionRegistry
) -> None:
    assert skiff(daemon, "image", "bootstrap", "busybox").returncode == 0
    image_id = dk(daemon, "image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
    ref = f"{registry.host}/test/busybox:1"
    assert dk(daemon, "tag", "busybox", ref).returncode == 0

    pushed = dk(daemon, "push", ref)
    assert pushed.returncode == 0, pushed.stderr
    found = re.search(r"1: digest: (sha256:[0-9a-f]{64}) size: \d+", pushed.stdout)
    assert found, pushed.stdout
    digest = found.group(1)

    assert dk(daemon, "rmi", ref).returncode == 0
    pulled = dk(daemon, "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {digest}" in pulled.stdout
    assert dk(daemon, "image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == image_id

    by_digest = dk(daemon, "pull", f"{registry.host}/test/busybox@{digest}")
    assert by_digest.returncode == 0, by_digest.stderr
    digests = dk(daemon, "image", "inspect", "-f", "{{json .RepoDigests}}", ref).stdout
    assert f"{registry.host}/test/busybox@{digest}" in digests


def test_docker_pull_of_a_missing_image_says_so(
    daemon: Daemon, registry: DistributionRegistry
) -> None:
    proc = dk(daemon, "pull", f"{registry.host}/nothing/here:1")
    assert proc.returncode == 1
    assert "Error response from daemon" in proc.stderr
    assert "not found" in proc.stderr.lower() or "unknown" in proc.stderr.lower()


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[DistributionRegistry]:
    with DistributionRegistry(tmp_path / "authreg", users={"alice": "s3cret"}) as reg:
        yield reg


def test_skiff_login_push_pull_logout(
    daemon: Daemon,
    auth_registry: DistributionRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SKIFF_CONFIG", str(tmp_path / "skiff-config"))
    assert skiff(daemon, "image", "bootstrap", "busybox").returncode == 0
    ref = f"{auth_registry.host}/team/busybox:2"
    assert skiff(daemon, "tag", "busybox", ref).returncode == 0

    denied = skiff(daemon, "push", ref)
    assert denied.returncode == 1
    assert (
        b"authentication required" in denied.stderr.lower()
        or b"unauthorized" in denied.stderr.lower()
    )

    bad = skiff(
        daemon, "login", "-u", "alice", "--password-stdin", auth_registry.host, stdin=b"nope\n"
    )
    assert bad.returncode != 0
    good = skiff(
        daemon, "login", "-u", "alice", "--password-stdin", auth_registry.host, stdin=b"s3cret\n"
    )
    assert good.returncode == 0, good.stderr
    assert b"Login Succeeded" in good.stdout
    assert (tmp_path / "skiff-config" / "config.json").exists()

    pushed = skiff(daemon, "push", ref)
    assert pushed.returncode == 0, pushed.stderr
    assert b"digest: sha256:" in pushed.stdout
    assert skiff(daemon, "rmi", ref).returncode == 0
    pulled = skiff(daemon, "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    assert b"Status: Downloaded newer image" in pulled.stdout

    assert b"Removing login credentials" in skiff(daemon, "logout", auth_registry.host).stdout
    assert skiff(daemon, "rmi", ref).returncode == 0
    assert skiff(daemon, "pull", ref).returncode == 1
