"""OCI image layouts (image-layout.md): a folder of `oci-layout`, `index.json`, `blobs/`.

Reading walks index.json (nested indexes included) to the manifests, choosing the
platform skiff runs on where an index offers several, and stages each image through
an `Ingest`. The same walk serves a folder (blobs copied in and verified) and a tar
already streamed into the content store (`docker load` of an OCI archive, or of a
Docker 25+ `docker save`).

Writing adds one manifest per image to index.json, annotated with
`org.opencontainers.image.ref.name` (the tag, as skopeo and umoci expect) and
`io.containerd.image.name` (the full reference, as Docker 25+ and containerd write).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from skiff.errors import InvalidArgument, NotFound
from skiff.images.types import (
    ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME,
    Index,
    IndexEntry,
    Manifest,
    dumps,
)
from skiff.oci import mediatypes as mt
from skiff.oci import platform as platforms
from skiff.oci import reference as refs
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    from skiff.images.ingest import Blob, Ingest, Staged
    from skiff.images.service import ImageService

LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'
_MAX_DEPTH = 8


@dataclass(frozen=True)
class Loaded:
    staged: Staged
    refs: list[str]  # full normalised references


Fetch = Callable[[Descriptor], "Blob"]


def read_index(
    op: Ingest,
    index_json: bytes,
    fetch: Fetch,
    platform: platforms.Platform,
    target: refs.Reference | None = None,
) -> list[Loaded]:
    index = Index.parse(index_json, mt.OCI_INDEX)
    out: list[Loaded] = []
    for entry in index.manifests:
        names = _names(entry.descriptor.annotations)
        if target is not None:
            tag = entry.descriptor.annotations.get(ANNOTATION_REF_NAME, "")
            if (
                len(index.manifests) > 1
                and tag not in (target.tag, str(target), "")
                and str(target) not in names
            ):
                continue
            names = [str(target)]
        staged = _walk(op, entry, fetch, platform, 0)
        if staged is not None:
            out.append(Loaded(staged, names))
    if not out:
        raise NotFound(
            "no image in the OCI layout matches" + (f" {target.familiar()}" if target else "")
        )
    return out


def _names(annotations: dict[str, str]) -> list[str]:
    """Full references from the annotations; a bare tag names nothing."""
    for key in (ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME):
        value = annotations.get(key, "")
        if value and ("/" in value or ":" in value or "@" in value) and not refs.is_tag(value):
            try:
                return [str(refs.parse_familiar(value))]
            except refs.InvalidReference:
                continue
    return []


def _walk(
    op: Ingest, entry: IndexEntry, fetch: Fetch, platform: platforms.Platform, depth: int
) -> Staged | None:
    desc = entry.descriptor
    if depth > _MAX_DEPTH:
        raise InvalidArgument("OCI layout: indexes nested too deep")
    if mt.is_index(desc.media_type):
        blob = fetch(desc)
        with op.store.open_blob(blob.digest) as f:
            child = Index.parse(f.read(), desc.media_type)
        chosen = _choose(child, platform)
        if chosen is None:
            raise NotFound(f"no match for platform {platform} in the image index {desc.digest}")
        return _walk(op, chosen, fetch, platform, depth + 1)
    if not mt.is_manifest(desc.media_type):
        return None  # an artifact or something else we do not run
    manifest_blob = fetch(desc)
    with op.store.open_blob(manifest_blob.digest) as f:
        manifest = Manifest.parse(f.read(), desc.media_type)
    config = fetch(manifest.config)
    layers = [fetch(la) for la in manifest.layers]
    return op.stage(
        config,
        layers,
        manifest=manifest_blob,
        manifest_media_type=manifest.media_type,
        layer_media_types=[la.media_type for la in manifest.layers],
    )


def _choose(index: Index, platform: platforms.Platform) -> IndexEntry | None:
    candidates = [e for e in index.manifests if mt.is_manifest(e.descriptor.media_type)]
    for e in candidates:
        if e.platform is not None and platforms.matches(platform, e.platform):
            return e
    unlabelled = [e for e in candidates if e.platform is None]
    return unlabelled[0] if unlabelled else None


def import_layout(
    op: Ingest,
    src_dir: str | os.PathLike[str],
    platform: platforms.Platform,
    target: refs.Reference | None = None,
) -> list[Loaded]:
    root = Path(src_dir)
    try:
        layout = json.loads((root / "oci-layout").read_bytes())
        index_json = (root / "index.json").read_bytes()
    except FileNotFoundError as e:
        raise InvalidArgument(f"not an OCI image layout: {e.filename} is missing") from None
    except ValueError:
        raise InvalidArgument("not an OCI image layout: oci-layout is not JSON") from None
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise InvalidArgument("not an OCI image layout: no imageLayoutVersion")

    def fetch(desc: Descriptor) -> Blob:
        path = root / "blobs" / desc.digest.algorithm / desc.digest.encoded
        try:
            with open(path, "rb") as f:
                return op.put_verified(f, desc.digest, desc.size)
        except FileNotFoundError:
            raise InvalidArgument(f"OCI layout: blob {desc.digest} is missing") from None

    return read_index(op, index_json, fetch, platform, target)


def export_layout(
    svc: ImageService, image_id: str, name: str | None, dest_dir: str | os.PathLike[str]
) -> None:
    """Write the image into an OCI layout folder (made if needed, else added to)."""
    root = Path(dest_dir)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    _write_atomic(root / "oci-layout", LAYOUT_VERSION)
    manifest_desc, files = oci_files(svc, image_id)
    for digest, opener in files:
        target = blobs / digest.encoded
        if target.exists():
            continue
        tmp = target.with_name(target.name + ".tmp")
        with opener() as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        os.rename(tmp, target)
    index_path = root / "index.json"
    try:
        index = Index.parse(index_path.read_bytes(), mt.OCI_INDEX)
        entries = list(index.manifests)
    except FileNotFoundError:
        entries = []
    annotations = tag_annotations(name)
    tag = annotations.get(ANNOTATION_REF_NAME)
    if tag is not None:  # a tag names one manifest: replace what it named before
        entries = [e for e in entries if e.descriptor.annotations.get(ANNOTATION_REF_NAME) != tag]
    desc = Descriptor(
        manifest_desc.media_type, manifest_desc.digest, manifest_desc.size, annotations=annotations
    )
    entries.append(IndexEntry(desc, None))
    _write_atomic(index_path, Index(mt.OCI_INDEX, tuple(entries)).to_json())


def tag_annotations(name: str | None) -> dict[str, str]:
    if not name:
        return {}
    ref = refs.parse(name)
    out = {ANNOTATION_CONTAINERD_NAME: str(ref)}
    if ref.tag is not None:
        out[ANNOTATION_REF_NAME] = ref.tag
    return out


def oci_files(
    svc: ImageService, image_id: str
) -> tuple[Descriptor, list[tuple[Digest, Callable[[], BinaryIO]]]]:
    """The OCI manifest of an image and every blob to write for it (config, layers,
    manifest). A stored Docker schema2 manifest is rewritten under OCI media types."""
    rec = svc.meta.get_image(image_id)
    with svc.store.open_blob(Digest.parse(rec.manifest_digest)) as f:
        raw = f.read()
    manifest = Manifest.parse(raw, rec.manifest_media_type)
    files: list[tuple[Digest, Callable[[], BinaryIO]]] = []
    for desc in (manifest.config, *manifest.layers):
        files.append((desc.digest, _opener(svc, desc.digest)))
    if manifest.media_type != mt.OCI_MANIFEST:
        raw = manifest.as_oci().to_json()
    digest = Digest.from_bytes(raw)
    files.append((digest, _bytes_opener(raw)))
    return Descriptor(mt.OCI_MANIFEST, digest, len(raw)), files


def _opener(svc: ImageService, digest: Digest) -> Callable[[], BinaryIO]:
    return lambda: svc.store.open_blob(digest)


def _bytes_opener(data: bytes) -> Callable[[], BinaryIO]:
    import io

    return lambda: io.BytesIO(data)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.rename(tmp, path)


__all__ = ["Loaded", "dumps", "export_layout", "import_layout", "read_index"]
