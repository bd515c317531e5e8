"""Docker reference normalisation, familiar forms and Docker's error wording."""

from __future__ import annotations

import pytest

from skiff.errors import InvalidArgument
from skiff.oci import platform, reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/alice/app", "docker.io/alice/app:latest", "alice/app:latest"),
        ("alice/app:1", "docker.io/alice/app:1", "alice/app:1"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
        ("localhost/a", "localhost/a:latest", "localhost/a:latest"),
        ("quay.io/a/b/c", "quay.io/a/b/c:latest", "quay.io/a/b/c:latest"),
        ("[::1]:5000/x:y", "[::1]:5000/x:y", "[::1]:5000/x:y"),
        (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
        (
            f"busybox:1@{DIGEST}",
            f"docker.io/library/busybox:1@{DIGEST}",
            f"busybox:1@{DIGEST}",
        ),
        ("a-b__c/e.f", "docker.io/a-b__c/e.f:latest", "a-b__c/e.f:latest"),
        ("my.registry/x", "my.registry/x:latest", "my.registry/x:latest"),
    ],
)
def test_normalise(text: str, full: str, familiar: str) -> None:
    ref = reference.parse_familiar(text)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert reference.familiar(full) == familiar


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Busybox",
            "invalid reference format: repository name (library/Busybox) must be lowercase",
        ),
        ("busy box", "invalid reference format"),
        ("busybox:", "invalid reference format"),
        ("-busybox", "invalid reference format"),
        ("busybox@sha256:abc", "invalid reference format"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("x" * 256, "must not be more than 255 characters"),
        ("busybox:" + "t" * 129, "invalid reference format"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        reference.parse_familiar(text)


def test_with_tag_and_digest() -> None:
    ref = reference.parse_normalized("busybox")
    assert ref.tag is None
    assert str(ref.with_tag("x")) == "docker.io/library/busybox:x"
    with pytest.raises(InvalidArgument, match="invalid tag format"):
        ref.with_tag("-bad")
    assert reference.is_id_like("abc123")
    assert reference.is_id_like("sha256:ab")
    assert not reference.is_id_like("busybox")


def test_platform() -> None:
    assert str(platform.parse("linux/amd64")) == "linux/amd64"
    assert platform.parse("linux/aarch64") == platform.Platform("linux", "arm64", "")
    assert platform.parse("linux/arm64/v8") == platform.Platform("linux", "arm64", "")
    assert platform.parse("arm") == platform.Platform("linux", "arm", "v7")
    assert platform.matches(
        platform.parse("linux/arm64"), platform.Platform("linux", "arm64", "v8")
    )
    assert not platform.matches(platform.parse("linux/amd64"), platform.Platform("linux", "arm64"))
    with pytest.raises(InvalidArgument, match="unknown operating system"):
        platform.parse("linux//x")
    assert platform.host().os == "linux"
