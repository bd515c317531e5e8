"""ImageService.commit_layer: the parent's layers plus one, config and changes applied."""

from __future__ import annotations

import io

import pytest

from skiff.errors import InvalidArgument
from skiff.images.service import ImageService
from skiff.oci.image import ImageConfig

from .conftest import layer


def test_commit_on_a_parent(svc: ImageService) -> None:
    base = svc.import_rootfs(io.BytesIO(layer({"bin/": None, "bin/sh": b"x"})), "base:1")
    image = svc.commit_layer(
        "base:1",
        io.BytesIO(layer({"tmp/": None, "tmp/file": b"hello"})),
        config=ImageConfig(cmd=["sh"], env=["A=1"]),
        changes=["ENV B=2", 'CMD ["echo", "hi"]'],
        author="me",
        message="added a file",
        ref="committed:v1",
        container_id="c0ffee",
    )
    assert image.repo_tags == ["committed:v1"]
    assert image.parent == base.id
    assert image.diff_ids[:1] == base.diff_ids
    assert len(image.diff_ids) == 2
    assert image.config.cmd == ["echo", "hi"]
    assert image.config.env == ["A=1", "B=2"]
    assert (image.author, image.comment, image.container) == ("me", "added a file", "c0ffee")
    assert image.history[-1]["comment"] == "added a file"
    parent_snapshot = svc.snapshot_parent(image)
    assert parent_snapshot == image.chain_id
    [top] = svc.history("committed:v1")[:1]
    assert top.comment == "added a file"


def test_commit_without_a_parent_and_bad_ref(svc: ImageService) -> None:
    image = svc.commit_layer("", io.BytesIO(layer({"a": b"1"})))
    assert image.repo_tags == []
    assert len(image.diff_ids) == 1
    with pytest.raises(InvalidArgument):
        svc.commit_layer("", io.BytesIO(layer({"a": b"1"})), ref="x@sha256:" + "0" * 64)
