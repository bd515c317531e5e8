"""The skiff CLI's registry credentials: a Docker-format config.json.

It lives in $SKIFF_CONFIG (default ~/.skiff) as config.json, so `skiff login`
never writes into the docker CLI's ~/.docker. Pull and push send the
credentials for the image's registry in the X-Registry-Auth header, as the
docker CLI does.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from skiff.distribution.credentials import DockerConfig


def config_path() -> str:
    folder = os.environ.get("SKIFF_CONFIG") or os.path.join(os.path.expanduser("~"), ".skiff")
    return os.path.join(folder, "config.json")


def store() -> DockerConfig:
    from skiff.distribution.credentials import DockerConfig

    return DockerConfig(config_path())


def registry_of(image: str) -> str:
    """The registry host of an image reference (docker.io for familiar names)."""
    from skiff.oci.reference import split_domain

    name = image.split("@", 1)[0]
    domain, _ = split_domain(name)
    return domain


def auth_header(image: str) -> str | None:
    """X-Registry-Auth for the image's registry, or None without stored credentials."""
    from skiff.distribution.credentials import encode_registry_auth

    registry = registry_of(image)
    creds = store().get(registry)
    if creds is None or creds.empty:
        return None
    return encode_registry_auth(creds, registry)
