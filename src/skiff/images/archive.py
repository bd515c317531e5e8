"""docker-archive: what `docker save` writes and `docker load` reads.

Reading accepts both generations:

    dockerd < 25   manifest.json, repositories, <id>.json, <v1 id>/layer.tar (may be a
                   symlink to another layer.tar), VERSION, json
    dockerd >= 25  manifest.json, repositories, index.json, oci-layout, blobs/sha256/*
    OCI archive    index.json, oci-layout, blobs/ (no manifest.json): read as a layout

The tar (plain, gzip, bzip2 or xz) is streamed once: every regular file goes into the
content store under the load's lease (never into a folder, so hostile paths cannot
escape anything), then manifest.json or index.json says what the files are, and
each image is staged (layers unpacked and diffIDs verified) before one transaction
makes them all visible.

Writing produces the Docker 25+ layout, which is both a docker-archive and an OCI
layout: oci-layout, blobs/sha256/<hex> (configs, layers as stored, OCI manifests),
index.json (one entry per tag), manifest.json, repositories.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from typing import TYPE_CHECKING, Any, BinaryIO

from skiff.errors import InvalidArgument
from skiff.images.layout import LAYOUT_VERSION, Loaded, oci_files, read_index, tag_annotations
from skiff.images.types import Index, IndexEntry, Manifest, dumps
from skiff.oci import mediatypes as mt
from skiff.oci import reference as refs
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    from skiff.images.ingest import Blob, Ingest
    from skiff.images.service import ImageService
    from skiff.oci.platform import Platform

_MAX_LINK_HOPS = 16
_SMALL = 64 << 20


def _norm(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def load_archive(op: Ingest, stream: BinaryIO, platform: Platform) -> list[Loaded]:
    files: dict[str, Blob] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tf:
            for member in tf:
                name = _norm(member.name)
                if member.isreg():
                    f = tf.extractfile(member)
                    assert f is not None
                    files[name] = op.put_stream(f)
                elif member.issym():
                    links[name] = _norm(posixpath.join(posixpath.dirname(name), member.linkname))
                elif member.islnk():
                    links[name] = _norm(member.linkname)
                tf.members.clear()  # type: ignore[attr-defined]
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InvalidArgument(f"invalid tar archive: {e}") from None

    def lookup(path: str) -> Blob:
        path = _norm(path)
        for _ in range(_MAX_LINK_HOPS):
            if path in files:
                return files[path]
            if path not in links:
                break
            path = links[path]
        raise InvalidArgument(f"the archive has no file {path}")

    def read(path: str) -> bytes:
        blob = lookup(path)
        if blob.size > _SMALL:
            raise InvalidArgument(f"{path}: {blob.size} bytes is too large")
        with op.store.open_blob(blob.digest) as f:
            return f.read()

    if "manifest.json" in files:
        return _load_docker(op, read, lookup, files, platform)
    if "index.json" in files:

        def fetch(desc: Descriptor) -> Blob:
            blob = lookup(f"blobs/{desc.digest.algorithm}/{desc.digest.encoded}")
            if blob.digest != desc.digest:
                raise InvalidArgument(f"blob {desc.digest} does not match its content")
            return blob

        return read_index(op, read("index.json"), fetch, platform)
    if "repositories" in files:
        raise InvalidArgument("legacy v1 image archives (no manifest.json) are not supported")
    raise InvalidArgument(
        "invalid docker-archive: no manifest.json or index.json (is this a rootfs tar? use import)"
    )


def _load_docker(
    op: Ingest,
    read: Any,
    lookup: Any,
    files: dict[str, Blob],
    platform: Platform,
) -> list[Loaded]:
    try:
        manifest = json.loads(read("manifest.json"))
    except ValueError as e:
        raise InvalidArgument(f"manifest.json: invalid JSON: {e}") from None
    if not isinstance(manifest, list):
        raise InvalidArgument("manifest.json: expected an array")
    originals = _original_manifests(op, read, files)
    out: list[Loaded] = []
    for i, entry in enumerate(manifest):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise InvalidArgument(f"manifest.json[{i}]: expected an object with Config")
        layers = entry.get("Layers") or []
        tags = entry.get("RepoTags") or []
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise InvalidArgument(f"manifest.json[{i}].Layers: expected an array of paths")
        if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
            raise InvalidArgument(f"manifest.json[{i}].RepoTags: expected an array of strings")
        names = []
        for tag in tags:
            ref = refs.parse_familiar(tag)
            if ref.digest is not None:
                raise InvalidArgument(f"invalid tag {tag!r}: a digest is not a tag")
            names.append(str(ref))
        config = lookup(entry["Config"])
        layer_blobs = [lookup(path) for path in layers]
        original = originals.get(config.digest)
        if original is not None and [la.digest for la in original[1].layers] == [
            b.digest for b in layer_blobs
        ]:
            blob, m = original
            staged = op.stage(
                config,
                layer_blobs,
                manifest=blob,
                manifest_media_type=m.media_type,
                layer_media_types=[la.media_type for la in m.layers],
            )
        else:
            staged = op.stage(config, layer_blobs)
        out.append(Loaded(staged, names))
    del platform
    return out


def _original_manifests(
    op: Ingest, read: Any, files: dict[str, Blob]
) -> dict[Digest, tuple[Blob, Manifest]]:
    """Docker 25+ archives carry the manifests too: keep them (and their digests)."""
    out: dict[Digest, tuple[Blob, Manifest]] = {}
    if "index.json" not in files:
        return out
    try:
        index = Index.parse(read("index.json"))
    except InvalidArgument:
        return out
    for entry in index.manifests:
        desc = entry.descriptor
        if not mt.is_manifest(desc.media_type):
            continue
        blob = files.get(f"blobs/{desc.digest.algorithm}/{desc.digest.encoded}")
        if blob is None or blob.digest != desc.digest:
            continue
        try:
            with op.store.open_blob(blob.digest) as f:
                m = Manifest.parse(f.read(), desc.media_type)
        except InvalidArgument:
            continue
        out[m.config.digest] = (blob, m)
    return out


def save_archive(svc: ImageService, images: list[tuple[str, list[str]]], out: BinaryIO) -> None:
    """Write `images` ([(image id, full refs)]) as a Docker 25+ archive to `out`."""
    manifest_json: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    entries: list[IndexEntry] = []
    written: set[Digest] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_dir(tf, "blobs")
        _add_dir(tf, "blobs/sha256")
        for image_id, names in images:
            manifest_desc, files = oci_files(svc, image_id)
            rec = svc.meta.get_image(image_id)
            for digest, opener in files:
                if digest in written:
                    continue
                written.add(digest)
                with opener() as src:
                    size = _size(src)
                    _add_file(tf, f"blobs/sha256/{digest.encoded}", src, size)
            familiar = [refs.familiar(n) for n in names]
            manifest_json.append(
                {
                    "Config": f"blobs/sha256/{Digest.parse(image_id).encoded}",
                    "RepoTags": familiar or None,
                    "Layers": [
                        f"blobs/sha256/{Digest.parse(la.digest).encoded}" for la in rec.layers
                    ],
                }
            )
            top = Digest.parse(rec.layers[-1].digest).encoded if rec.layers else ""
            for n in names:
                ref = refs.parse(n)
                if ref.tag is not None and top:
                    repositories.setdefault(ref.familiar_name, {})[ref.tag] = top
            for annotations in [tag_annotations(n) for n in names] or [{}]:
                entries.append(
                    IndexEntry(
                        Descriptor(
                            manifest_desc.media_type,
                            manifest_desc.digest,
                            manifest_desc.size,
                            annotations=annotations,
                        ),
                        None,
                    )
                )
        _add_bytes(tf, "index.json", Index(mt.OCI_INDEX, tuple(entries)).to_json())
        _add_bytes(tf, "manifest.json", dumps(manifest_json))
        _add_bytes(tf, "oci-layout", LAYOUT_VERSION)
        if repositories:
            _add_bytes(tf, "repositories", dumps(repositories))


def _size(f: Any) -> int:
    f.seek(0, io.SEEK_END)
    size = int(f.tell())
    f.seek(0)
    return size


def _add_dir(tf: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tf.addfile(info)


def _add_file(tf: tarfile.TarFile, name: str, f: BinaryIO, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o444
    tf.addfile(info, f)


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    _add_file(tf, name, io.BytesIO(data), len(data))
