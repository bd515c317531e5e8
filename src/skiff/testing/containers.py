"""Helpers for container tests: an Image from a config alone, host facts pinned."""

from __future__ import annotations

from typing import Any

from skiff.containers.spec import HostFacts
from skiff.linux.capabilities import NAMES
from skiff.oci.image import ImageConfig
from skiff.services.images import Image


def make_image(**config: Any) -> Image:
    """An Image whose config is `ImageConfig(**config)`; the rest is placeholder."""
    image_config = ImageConfig(**config)
    return Image(
        id="sha256:" + "0" * 64,
        repo_tags=["test:latest"],
        repo_digests=[],
        parent="",
        created="",
        created_unix=0,
        size=0,
        config=image_config,
        architecture="amd64",
        os="linux",
        variant="",
        os_version="",
        diff_ids=[],
        history=[],
        comment="",
        author="",
        docker_version="",
        manifest_digest="",
        manifest_media_type="",
        chain_id="",
        labels=image_config.labels,
    )


def pinned_host(**changes: Any) -> HostFacts:
    """HostFacts that do not depend on this machine (every capability the table knows)."""
    facts: dict[str, Any] = {
        "all_capabilities": tuple(NAMES),
        "arch": "amd64",
        "kernel_release": "6.1.0",
        "cgroup_v2": False,
        "init_path": "/usr/bin/tini-static",
        "hostname": "hosty",
    }
    facts.update(changes)
    return HostFacts(**facts)
