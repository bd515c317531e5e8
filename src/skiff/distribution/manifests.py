"""What a pull needs from manifests and indexes, parsed strictly at the boundary.

parse_manifest(data, media_type) -> ImageManifest(config, layers)
parse_index(data, media_type)    -> [IndexEntry(descriptor, platform)]
select_platform(entries, want)   -> the best entry for `want` (linux/amd64, ...)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from skiff.distribution.errors import RegistryError, UnsupportedMediaType
from skiff.errors import InvalidArgument, NotFound
from skiff.oci import mediatypes as mt
from skiff.oci import platform as platforms
from skiff.oci.descriptor import Descriptor
from skiff.oci.platform import Platform


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class IndexEntry:
    descriptor: Descriptor
    platform: Platform | None


class NoMatchingPlatform(NotFound):
    pass


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise RegistryError(f"{what}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: expected a JSON object")
    return doc


def parse_manifest(data: bytes, media_type: str, what: str = "manifest") -> ImageManifest:
    """An image manifest; UnsupportedMediaType for a config or layer we cannot use
    (an artifact, a Helm chart, a foreign layer type)."""
    doc = _load(data, what)
    if doc.get("schemaVersion") != 2:
        raise UnsupportedMediaType(f"{what}: schemaVersion {doc.get('schemaVersion')!r}")
    try:
        config = Descriptor.from_json(doc.get("config"), "config")
        layers_doc = doc.get("layers")
        if not isinstance(layers_doc, list):
            raise InvalidArgument("layers: expected an array")
        layers = tuple(
            Descriptor.from_json(layer, f"layers[{i}]") for i, layer in enumerate(layers_doc)
        )
    except InvalidArgument as e:
        raise RegistryError(f"{what}: {e}") from None
    if not mt.is_config(config.media_type):
        raise UnsupportedMediaType(
            f"{what}: not a container image: config media type {config.media_type!r}"
        )
    for layer in layers:
        if not mt.is_layer(layer.media_type):
            raise UnsupportedMediaType(
                f"{what}: unsupported layer media type {layer.media_type!r} ({layer.digest})"
            )
    return ImageManifest(media_type, config, layers)


def parse_index(data: bytes, what: str = "index") -> list[IndexEntry]:
    doc = _load(data, what)
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise RegistryError(f"{what}: manifests: expected an array")
    out = []
    for i, item in enumerate(manifests):
        try:
            desc = Descriptor.from_json(item, f"manifests[{i}]")
        except InvalidArgument as e:
            raise RegistryError(f"{what}: {e}") from None
        plat = item.get("platform")
        platform = None
        if isinstance(plat, dict):
            os_, arch = plat.get("os"), plat.get("architecture")
            if isinstance(os_, str) and isinstance(arch, str):
                variant = plat.get("variant")
                platform = Platform(os_, arch, variant if isinstance(variant, str) else "")
        out.append(IndexEntry(desc, platform))
    return out


def select_platform(entries: list[IndexEntry], want: Platform, what: str) -> Descriptor:
    """containerd's choice: an image manifest whose platform matches, the exact variant
    first, then one without a variant, then any compatible; attestation manifests
    (platform unknown/unknown) are never picked."""
    want = platforms.normalize(want)
    candidates = [
        e
        for e in entries
        if e.platform is not None
        and (mt.is_manifest(e.descriptor.media_type) or mt.is_index(e.descriptor.media_type))
        and platforms.matches(want, e.platform)
    ]
    if not candidates:
        seen = ", ".join(str(e.platform) for e in entries if e.platform is not None) or "none"
        raise NoMatchingPlatform(
            f"no matching manifest for {want} in the manifest list entries of {what} "
            f"(it has: {seen})"
        )

    def rank(e: IndexEntry) -> int:
        assert e.platform is not None
        have = platforms.normalize(e.platform)
        if have.variant == want.variant:
            return 0
        return 1 if not have.variant else 2

    return min(candidates, key=rank).descriptor
