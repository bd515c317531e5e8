"""ImageService: the local image store behind skiff.services.images.ImageBackend.

    <data root>/content/blobs/sha256/<hex>   manifests, configs, layers (LocalStore)
    <data root>/content/ingest/...           blobs being written
    <data root>/snapshots/                   unpacked layers by chain id (OverlaySnapshotter)
    <data root>/metadata.db                  images, refs, leases (metadata.db)

Reading an image: refs -> image record -> config blob (parsed once, cached by id).
Docker's behaviours reproduced here: lookup by reference then id prefix, `rmi`'s
untag-versus-delete rules and conflict wording, `images` hiding intermediate images,
the filters, `prune`. Archive formats live in images.archive and images.layout.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.images.changes import apply_changes as apply_changes_
from skiff.images.ingest import INGEST_PREFIX, Blob, Ingest, Staged
from skiff.images.types import ConfigDoc, dumps, image_config_json, parse_image_config
from skiff.metadata import gc as gcmod
from skiff.oci import mediatypes as mt
from skiff.oci import platform as platforms
from skiff.oci import reference as refs
from skiff.oci.digest import Digest, InvalidDigest
from skiff.oci.image import ImageConfig
from skiff.services.images import (
    MISSING,
    HistoryEntry,
    Image,
    ImageFilters,
    ImageUser,
    InUse,
    Progress,
)

if TYPE_CHECKING:
    from skiff.content.types import Store
    from skiff.metadata.db import ImageRecord, MetadataStore
    from skiff.services.images import ImageBackend
    from skiff.services.system import SystemInfo
    from skiff.snapshots.types import Snapshotter

EventHook = Callable[[str, str, dict[str, str]], None]  # (action, image id, attributes)


class NoSuchImage(NotFound):
    def __init__(self, what: str) -> None:
        super().__init__(f"No such image: {what}")


class ImageService:
    """Implements ImageBackend over a content store, a snapshotter and the metadata."""

    def __init__(
        self,
        store: Store,
        snapshotter: Snapshotter,
        meta: MetadataStore,
        *,
        on_event: EventHook | None = None,
        platform: platforms.Platform | None = None,
    ) -> None:
        self.store = store
        self.snapshotter = snapshotter
        self.meta = meta
        self.platform = platform or platforms.host()
        self._on_event = on_event
        self._in_use: InUse = set
        self._sweep_lock = threading.Lock()
        self._configs: dict[str, ConfigDoc] = {}

    @classmethod
    def open(cls, data_root: str | os.PathLike[str], **kwargs: object) -> ImageService:
        """The on-disk service: abandoned ingests are dropped and garbage swept (nothing
        can be in flight when the store opens)."""
        from skiff.content.local import LocalStore
        from skiff.metadata.db import MetadataStore
        from skiff.snapshots.overlay import OverlaySnapshotter

        root = Path(data_root)
        root.mkdir(parents=True, exist_ok=True)
        svc = cls(
            LocalStore(root / "content"),
            OverlaySnapshotter(root / "snapshots"),
            MetadataStore(root / "metadata.db"),
            **kwargs,  # type: ignore[arg-type]
        )
        for status in svc.store.statuses():
            if status.ref.startswith(INGEST_PREFIX):
                with contextlib.suppress(NotFound):
                    svc.store.abort(status.ref)
        svc.gc()
        return svc

    def close(self) -> None:
        self.meta.close()
        close = getattr(self.snapshotter, "close", None)
        if close is not None:
            close()

    # --- lookups -------------------------------------------------------------

    def _resolve(self, ref_or_id: str) -> str:
        """GetImage: a full id or digest, then a reference, then an id prefix."""
        text = ref_or_id.strip()
        if not text:
            raise InvalidArgument("invalid reference format")
        if re.fullmatch(r"[a-f0-9]{64}", text):
            text = "sha256:" + text
        if text.startswith("sha256:") and len(text) == 71:
            try:
                Digest.parse(text)
            except InvalidDigest:
                raise InvalidArgument("invalid reference format") from None
            if self._exists(text):
                return text
            raise NoSuchImage(text)
        ref: refs.Reference | None = None
        try:
            ref = refs.parse_familiar(text)
        except refs.InvalidReference:
            if not refs.is_id_like(text):
                raise
        if ref is not None:
            found = self.meta.get_ref(str(ref))
            if found is None and ref.digest is not None and ref.tag is not None:
                found = self.meta.get_ref(str(ref.with_digest(ref.digest)))
            if found is not None:
                return found
        if refs.is_id_like(text):
            prefix = text.removeprefix("sha256:")
            ids = self.meta.image_ids_with_prefix(prefix)
            if len(ids) == 1:
                return ids[0]
        raise NoSuchImage(ref.familiar() if ref is not None else text)

    def _exists(self, image_id: str) -> bool:
        try:
            self.meta.get_image(image_id)
        except NotFound:
            return False
        return True

    def _config(self, image_id: str) -> ConfigDoc:
        doc = self._configs.get(image_id)
        if doc is None:
            with self.store.open_blob(Digest.parse(image_id)) as f:
                doc = ConfigDoc.parse(f.read())
            if len(self._configs) > 4096:
                self._configs.clear()
            self._configs[image_id] = doc
        return doc

    def _image(self, rec: ImageRecord, names: builtins.list[str] | None = None) -> Image:
        doc = self._config(rec.id)
        names = self.meta.refs_of(rec.id) if names is None else names
        tags = sorted(refs.familiar(n) for n in names if "@" not in n)
        digests = sorted(refs.familiar(n) for n in names if "@" in n)
        return Image(
            id=rec.id,
            repo_tags=tags,
            repo_digests=digests,
            parent=rec.parent or doc.parent,
            created=doc.created,
            created_unix=_unix(doc.created),
            size=rec.size,
            config=doc.config,
            architecture=doc.architecture,
            os=doc.os,
            variant=doc.variant,
            os_version=doc.os_version,
            diff_ids=[str(d) for d in doc.diff_ids],
            history=[dict(h) for h in doc.history],
            comment=doc.comment,
            author=doc.author,
            docker_version=doc.docker_version,
            manifest_digest=rec.manifest_digest,
            manifest_media_type=rec.manifest_media_type,
            chain_id=rec.layers[-1].chain_id if rec.layers else "",
            container=doc.container,
            container_config=_container_config(doc),
            labels=dict(doc.config.labels),
        )

    def get(self, ref_or_id: str) -> Image:
        return self._image(self.meta.get_image(self._resolve(ref_or_id)))

    def list(self, all: bool = False, filters: ImageFilters | None = None) -> builtins.list[Image]:
        flt = filters or ImageFilters()
        by_image = self.meta.all_refs()
        records = self.meta.images()
        parents = {rec.parent for rec in records if rec.parent}
        before = self._created_of(flt.before) if flt.before else None
        since = self._created_of(flt.since) if flt.since else None
        until = parse_until(flt.until) if flt.until else None
        out = []
        for rec in records:
            names = by_image.get(rec.id, [])
            if flt.dangling is True and names:
                continue
            if flt.dangling is False and not names:
                continue
            if not names and not all and rec.id in parents and flt.dangling is None:
                continue  # an intermediate image
            if flt.reference:
                names = [n for n in names if any(_ref_match(p, n) for p in flt.reference)]
                if not names:
                    continue
            image = self._image(rec, names)
            if not _labels_match(image.labels, flt.label, flt.label_not):
                continue
            if before is not None and image.created_unix >= before:
                continue
            if since is not None and image.created_unix <= since:
                continue
            if until is not None and image.created_unix >= until:
                continue
            out.append(image)
        out.sort(key=lambda i: (-i.created_unix, i.id))
        return out

    def _created_of(self, ref_or_id: str) -> int:
        return _unix(self._config(self._resolve(ref_or_id)).created)

    def history(self, ref_or_id: str) -> builtins.list[HistoryEntry]:
        image = self.get(ref_or_id)
        rec = self.meta.get_image(image.id)
        sizes = [la.size for la in rec.layers]
        doc = self._config(image.id)
        entries: builtins.list[HistoryEntry] = []
        layer = 0
        history = doc.history or tuple({"created": doc.created} for _ in doc.diff_ids)
        for h in history:
            empty = bool(h.get("empty_layer"))
            size = 0 if empty or layer >= len(sizes) else sizes[layer]
            if not empty:
                layer += 1
            entries.append(
                HistoryEntry(
                    id=MISSING,
                    created=_unix(str(h.get("created", ""))),
                    created_by=str(h.get("created_by", "")),
                    tags=[],
                    size=size,
                    comment=str(h.get("comment", "")),
                )
            )
        entries.reverse()
        if entries:
            entries[0] = replace(entries[0], id=image.id, tags=list(image.repo_tags))
        return entries

    # --- references ------------------------------------------------------------

    def tag(self, source: str, repo: str, tag: str = "latest") -> None:
        image_id = self._resolve(source)
        target = refs.parse_normalized(repo)
        if tag:
            if target.tag is not None or target.digest is not None:
                raise InvalidArgument("refusing to create a tag with a digest reference")
            target = target.with_tag(tag)
        target = target.with_default_tag()
        if target.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        self.meta.set_ref(str(target), image_id)
        self._event("tag", image_id, {"name": target.familiar()})

    def set_in_use(self, in_use: InUse) -> None:
        self._in_use = in_use

    def _users(self) -> builtins.list[ImageUser]:
        out = []
        for item in self._in_use():
            out.append(item if isinstance(item, ImageUser) else ImageUser("", item))
        return out

    def remove(
        self, ref_or_id: str, force: bool = False, noprune: bool = False
    ) -> builtins.list[tuple[str, str]]:
        records = self._remove(ref_or_id, force, noprune)
        if any(kind == "Deleted" for kind, _ in records):
            self.gc()  # layers go with the last image that had them, as in Docker
        return records

    def _remove(self, ref_or_id: str, force: bool, noprune: bool) -> builtins.list[tuple[str, str]]:
        image_id = self._resolve(ref_or_id)
        names = self.meta.refs_of(image_id)
        users = [u for u in self._users() if u.image_id == image_id]
        records: builtins.list[tuple[str, str]] = []
        by_id = self._is_id_ref(ref_or_id, image_id)
        if not by_id:
            if not force and _single_reference(names) and users:
                raise Conflict(
                    f'conflict: unable to remove repository reference "{ref_or_id}" '
                    f"(must force) - container {users[0].container_id[:12]} is using its "
                    f"referenced image {_short(image_id)}"
                )
            ref = refs.parse_familiar(ref_or_id)
            name = str(ref)
            if name not in names and ref.digest is not None and ref.tag is not None:
                name = str(ref.with_digest(ref.digest))
            self.meta.delete_ref(name)
            records.append(("Untagged", refs.familiar(name)))
            self._event("untag", image_id, {"name": refs.familiar(name)})
            names = [n for n in names if n != name]
            if "@" not in name and not any("@" not in n and _repo(n) == _repo(name) for n in names):
                for n in [n for n in names if "@" in n and _repo(n) == _repo(name)]:
                    self.meta.delete_ref(n)
                    records.append(("Untagged", refs.familiar(n)))
                    names.remove(n)
            if names:
                return records
        elif _single_reference(names):
            self._check_conflict(image_id, users, hard_only=force, ignore_refs=True)
            for n in names:
                self.meta.delete_ref(n)
                records.append(("Untagged", refs.familiar(n)))
                self._event("untag", image_id, {"name": refs.familiar(n)})
        self._delete(image_id, records, force=force, prune=not noprune, quiet=not by_id)
        return records

    @staticmethod
    def _is_id_ref(text: str, image_id: str) -> bool:
        """moby's isImageIDPrefix: the name given was (a prefix of) the id."""
        return image_id.startswith(text) or image_id.removeprefix("sha256:").startswith(text)

    def _check_conflict(
        self,
        image_id: str,
        users: builtins.list[ImageUser],
        *,
        hard_only: bool,
        ignore_refs: bool = False,
    ) -> None:
        """Docker's checkImageDeleteConflict: hard conflicts (children, running
        containers) always; soft ones (other refs, stopped containers) unless forced."""

        def conflict(hard: bool, message: str) -> Conflict:
            how = "cannot be forced" if hard else "must be forced"
            return Conflict(f"conflict: unable to delete {_short(image_id)} ({how}) - {message}")

        if self.meta.children(image_id):
            raise conflict(True, "image has dependent child images")
        for u in users:
            if u.running:
                raise conflict(
                    True, f"image is being used by running container {u.container_id[:12]}"
                )
        if hard_only:
            return
        if not ignore_refs and self.meta.refs_of(image_id):
            raise conflict(False, "image is referenced in multiple repositories")
        for u in users:
            raise conflict(False, f"image is being used by stopped container {u.container_id[:12]}")

    def _delete(
        self,
        image_id: str,
        records: builtins.list[tuple[str, str]],
        *,
        force: bool,
        prune: bool,
        quiet: bool,
    ) -> None:
        users = [u for u in self._users() if u.image_id == image_id]
        try:
            self._check_conflict(image_id, users, hard_only=force)
        except Conflict:
            dangling = not self.meta.refs_of(image_id)
            if quiet and (not dangling or users):
                return
            raise
        rec = self.meta.get_image(image_id)
        for n in self.meta.refs_of(image_id):
            records.append(("Untagged", refs.familiar(n)))
        self.meta.delete_image(image_id)
        self._configs.pop(image_id, None)
        self._event("delete", image_id, {})
        records.append(("Deleted", image_id))
        if prune and rec.parent and self._exists(rec.parent):
            self._delete(rec.parent, records, force=False, prune=True, quiet=True)

    # --- making images ------------------------------------------------------------

    def _ingest(self) -> Ingest:
        return Ingest(self.store, self.meta, self.snapshotter, self._sweep_lock, self.gc)

    def import_rootfs(
        self,
        stream: BinaryIO,
        ref: str | None = None,
        changes: builtins.list[str] | None = None,
        message: str = "",
        platform: str | None = None,
    ) -> Image:
        from skiff.archive.compression import NONE, DecompressingReader, detect
        from skiff.images.changes import apply_changes

        target = refs.parse_familiar(ref) if ref else None
        if target is not None and target.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        config = apply_changes(ImageConfig(), changes or [])
        plat = platforms.parse(platform) if platform else self.platform
        message = message or "Imported from -"
        buffered = io.BufferedReader(_Raw(stream), 1 << 20)
        compression = detect(buffered.peek(8)[:8])
        tar: BinaryIO = (
            buffered
            if compression == NONE
            else io.BufferedReader(DecompressingReader(buffered, compression), 1 << 20)
        )
        now = _rfc3339(time.time())
        with self._ingest() as op:
            layer = op.put_stream(tar)  # stored uncompressed: its digest is its diffID
            doc = {
                "architecture": plat.architecture,
                "comment": message,
                "config": image_config_json(config),
                "created": now,
                "history": [{"created": now, "comment": message}],
                "os": plat.os,
                "rootfs": {"type": "layers", "diff_ids": [str(layer.digest)]},
            }
            if plat.variant:
                doc["variant"] = plat.variant
            staged = op.stage(op.put_bytes(dumps(doc)), [layer])
            op.publish([(staged, [str(target)] if target else [])])
        image_id = staged.record.id
        self._event("import", image_id, {})
        if target is not None:
            self._event("tag", image_id, {"name": target.familiar()})
        return self.get(image_id)

    def commit_layer(
        self,
        parent: str,
        layer: BinaryIO,
        *,
        config: ImageConfig | None = None,
        changes: builtins.list[str] | None = None,
        author: str = "",
        message: str = "",
        ref: str | None = None,
        container_id: str = "",
        created_by: str = "",
    ) -> Image:
        """`docker commit`: a new image = the parent's layers + `layer` (an uncompressed
        layer tar, e.g. from archive.diff_layer), with `config` (the container's, else
        the parent's) and `changes` (Dockerfile lines) applied. `parent` "" makes an
        image of one layer. The new image records the parent, as dockerd's commit does."""
        target = refs.parse_familiar(ref) if ref else None
        if target is not None and target.digest is not None:
            raise InvalidArgument("refusing to create a tag with a digest reference")
        parent_id = self._resolve(parent) if parent else ""
        parent_doc = self._config(parent_id) if parent_id else None
        parent_rec = self.meta.get_image(parent_id) if parent_id else None
        base = (
            config if config is not None else (parent_doc.config if parent_doc else ImageConfig())
        )
        new_config = apply_changes_(base, changes or [])
        now = _rfc3339(time.time())
        with self._ingest() as op:
            blob = op.put_stream(layer)  # stored uncompressed: its digest is its diffID
            layers = []
            for la in parent_rec.layers if parent_rec else ():
                digest = Digest.parse(la.digest)
                layers.append(Blob(digest, self.store.info(digest).size))
            media_types = [la.media_type for la in (parent_rec.layers if parent_rec else ())]
            media_types.append(mt.OCI_LAYER)
            history = [dict(h) for h in (parent_doc.history if parent_doc else ())]
            entry: dict[str, object] = {"created": now, "created_by": created_by}
            if author:
                entry["author"] = author
            if message:
                entry["comment"] = message
            history.append(entry)
            doc: dict[str, object] = {
                "architecture": parent_doc.architecture
                if parent_doc
                else self.platform.architecture,
                "author": author,
                "comment": message,
                "config": image_config_json(new_config),
                "container": container_id,
                "created": now,
                "docker_version": "",
                "history": history,
                "os": parent_doc.os if parent_doc else "linux",
                "rootfs": {
                    "type": "layers",
                    "diff_ids": [str(d) for d in (parent_doc.diff_ids if parent_doc else ())]
                    + [str(blob.digest)],
                },
            }
            if parent_doc and parent_doc.variant:
                doc["variant"] = parent_doc.variant
            if parent_id:
                doc["parent"] = parent_id
            staged = op.stage(
                op.put_bytes(dumps(doc)),
                [*layers, blob],
                layer_media_types=media_types,
                parent=parent_id,
            )
            op.publish([(staged, [str(target)] if target else [])])
        image_id = staged.record.id
        self._event("commit", image_id, {"comment": message} if message else {})
        if target is not None:
            self._event("tag", image_id, {"name": target.familiar()})
        return self.get(image_id)

    def bootstrap_busybox(self, ref: str = "busybox:latest") -> Image:
        from skiff.archive import NONE, tar_dir
        from skiff.images import busybox

        target = refs.parse_familiar(ref)
        binary = busybox.find_busybox()
        mtime = busybox.busybox_mtime(binary)
        with tempfile.TemporaryDirectory(prefix="skiff-busybox-") as tmp:
            rootfs = busybox.make_rootfs(os.path.join(tmp, "rootfs"), binary)
            busybox.set_times(rootfs, mtime)
            with self._ingest() as op:
                tar_path = os.path.join(tmp, "layer.tar")
                with open(tar_path, "wb") as out:
                    digests = tar_dir(rootfs, out, compression=NONE)
                with open(tar_path, "rb") as f:
                    layer = op.put_verified(f, digests.digest, digests.size)
                created = _rfc3339(mtime)
                version = busybox.busybox_version(binary)
                doc = {
                    "architecture": self.platform.architecture,
                    "config": {
                        "Env": [
                            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                        ],
                        "Cmd": ["sh"],
                        "Labels": {"org.opencontainers.image.version": version} if version else {},
                    },
                    "created": created,
                    "history": [
                        {
                            "created": created,
                            "created_by": f"skiff image bootstrap busybox ({binary})",
                            "comment": "busybox-static from the host",
                        }
                    ],
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [str(digests.diff_id)]},
                }
                if self.platform.variant:
                    doc["variant"] = self.platform.variant
                staged = op.stage(op.put_bytes(dumps(doc)), [layer])
                moved = op.publish([(staged, [str(target)])])
        del moved
        self._event("tag", staged.record.id, {"name": target.familiar()})
        return self.get(staged.record.id)

    def publish_loaded(
        self, op: Ingest, images: builtins.list[tuple[Staged, builtins.list[str]]]
    ) -> dict[str, str]:
        return op.publish(images)

    # --- archives ------------------------------------------------------------

    def load(self, stream: BinaryIO, progress: Progress | None = None) -> builtins.list[str]:
        from skiff.images.archive import load_archive

        with self._ingest() as op:
            loaded = load_archive(op, stream, self.platform)
            moved = op.publish([(item.staged, item.refs) for item in loaded])
        lines = []
        for ref, old in moved.items():
            if progress is not None:
                progress(
                    f"The image {refs.familiar(ref)} already exists, renaming the old one "
                    f"with ID {old} to empty string"
                )
        for item in loaded:
            image_id = item.staged.record.id
            self._event("load", image_id, {})
            if item.refs:
                lines += [f"Loaded image: {refs.familiar(r)}" for r in item.refs]
            else:
                lines.append(f"Loaded image ID: {image_id}")
        if progress is not None:
            for line in lines:
                progress(line)
        return lines

    def save(self, refs_: builtins.list[str], out: BinaryIO) -> None:
        from skiff.images.archive import save_archive

        save_archive(self, self._save_set(refs_), out)
        for image_id, _ in self._save_set(refs_):
            self._event("save", image_id, {})

    def _save_set(self, names: builtins.list[str]) -> builtins.list[tuple[str, builtins.list[str]]]:
        """[(image id, full refs to record for it)], in the order asked, merged by id."""
        order: dict[str, builtins.list[str]] = {}
        for name in names:
            tags: builtins.list[str] = []
            try:
                ref = refs.parse_normalized(name)
            except refs.InvalidReference:
                ref = None
            if ref is not None and ref.tag is None and ref.digest is None:
                tags = sorted(
                    n for n in self.meta.all_refs_flat() if "@" not in n and _repo(n) == ref.name
                )
            if tags:
                for t in tags:
                    order.setdefault(self.meta.get_ref(t) or "", []).append(t)
                continue
            image_id = self._resolve(name)
            entry = order.setdefault(image_id, [])
            if ref is not None and not self._is_id_ref(name, image_id):
                full = str(ref.with_default_tag())
                if "@" not in full and full not in entry:
                    entry.append(full)
        return [(k, v) for k, v in order.items() if k]

    def export_oci_layout(self, ref_or_id: str, dest_dir: str | os.PathLike[str]) -> None:
        from skiff.images.layout import export_layout

        image_id = self._resolve(ref_or_id)
        name = None
        try:
            ref = refs.parse_familiar(ref_or_id)
            if self.meta.get_ref(str(ref)) == image_id:
                name = str(ref)
        except refs.InvalidReference:
            pass
        export_layout(self, image_id, name, dest_dir)

    def import_oci_layout(
        self, src_dir: str | os.PathLike[str], ref: str | None = None
    ) -> builtins.list[Image]:
        from skiff.images.layout import import_layout

        target = refs.parse_familiar(ref) if ref else None
        with self._ingest() as op:
            loaded = import_layout(op, src_dir, self.platform, target)
            op.publish([(item.staged, item.refs) for item in loaded])
        for item in loaded:
            self._event("load", item.staged.record.id, {})
        return [self.get(item.staged.record.id) for item in loaded]

    # --- containers -------------------------------------------------------------

    def snapshot_parent(self, image: Image) -> str:
        from skiff.images.unpack import unpack_layers

        rec = self.meta.get_image(image.id)
        if not rec.layers:
            return ""
        doc = self._config(image.id)
        unpack_layers(
            self.store,
            self.snapshotter,
            [Digest.parse(la.digest) for la in rec.layers],
            doc.diff_ids,
            known_size=lambda chain: self.meta.layer_size(str(chain)),
        )
        return rec.layers[-1].chain_id

    # --- cleaning up -------------------------------------------------------------

    def prune(
        self, all: bool = False, filters: ImageFilters | None = None
    ) -> tuple[builtins.list[tuple[str, str]], int]:
        flt = filters or ImageFilters()
        if flt.before or flt.since or flt.reference:
            raise InvalidArgument(
                f"invalid filter '{'before' if flt.before else 'since' if flt.since else 'reference'}'"
            )
        until = parse_until(flt.until) if flt.until else None
        in_use = {u.image_id for u in self._users()}
        by_image = self.meta.all_refs()
        records_all = self.meta.images()
        parents = {rec.parent for rec in records_all if rec.parent}
        before_sizes = self._layer_sizes()
        deleted: builtins.list[tuple[str, str]] = []
        for rec in records_all:
            if not self._exists(rec.id) or rec.id in in_use:
                continue
            names = by_image.get(rec.id, [])
            if not all and (names or rec.id in parents):
                continue
            image = self._image(rec, names)
            if until is not None and image.created_unix >= until:
                continue
            if not _labels_match(image.labels, flt.label, flt.label_not):
                continue
            try:
                if names:
                    for n in names:
                        deleted += self._remove(n, False, False)
                else:
                    deleted += self._remove(rec.id, False, False)
            except (Conflict, NotFound):
                continue
        after = self._layer_sizes()
        reclaimed = sum(size for chain, size in before_sizes.items() if chain not in after)
        self.gc()
        return deleted, reclaimed

    def _layer_sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.meta.images():
            for la in rec.layers:
                out[la.chain_id] = la.size
        return out

    def disk_usage(self) -> builtins.list[Image]:
        records = self.meta.images()
        count: dict[str, int] = {}
        for rec in records:
            for la in {la.chain_id for la in rec.layers}:
                count[la] = count.get(la, 0) + 1
        users: dict[str, int] = {}
        for u in self._users():
            users[u.image_id] = users.get(u.image_id, 0) + 1
        by_image = self.meta.all_refs()
        out = []
        for rec in records:
            shared = sum(la.size for la in rec.layers if count.get(la.chain_id, 0) > 1)
            image = self._image(rec, by_image.get(rec.id, []))
            out.append(replace(image, shared_size=shared, containers=users.get(rec.id, 0)))
        return out

    def gc(self) -> tuple[int, int]:
        with self._sweep_lock:
            done = gcmod.collect(self.meta, self.store, self.snapshotter)
        return len(done.blobs), len(done.snapshots)

    # --- info ----------------------------------------------------------------------

    def commit_config(
        self,
        parent: str,
        doc: dict[str, object],
        layer: BinaryIO | None,
        on_layer: Callable[[Digest], int | None] | None = None,
    ) -> str:
        """The builder's commit: an image whose config is `doc` exactly (history,
        container_config, ... as the builder wrote them) over the parent's layers, plus
        `layer` (an uncompressed tar) when given; `doc`'s diff_ids get its diffID.
        `on_layer(diff_id)` runs once the layer is stored, before it would be unpacked
        (the builder commits its snapshot under the chain id there, saving the unpack,
        and answers the layer's size: bytes of file content, as an unpack counts them).
        The new image records `parent`. Returns the image id."""
        from skiff.images.ingest import Blob
        from skiff.oci import mediatypes as mt

        parent_rec = self.meta.get_image(parent) if parent else None
        known_size: int | None = None
        rootfs = doc.get("rootfs")
        diff_ids = list(rootfs.get("diff_ids") or []) if isinstance(rootfs, dict) else []
        with self._ingest() as op:
            layers = [
                Blob(Digest.parse(la.digest), self.store.info(Digest.parse(la.digest)).size)
                for la in (parent_rec.layers if parent_rec else ())
            ]
            media_types = [la.media_type for la in (parent_rec.layers if parent_rec else ())]
            if layer is not None:
                blob = op.put_stream(layer)  # uncompressed: its digest is its diffID
                layers.append(blob)
                media_types.append(mt.OCI_LAYER)
                diff_ids.append(str(blob.digest))
                if on_layer is not None:
                    known_size = on_layer(blob.digest)
            full = {**doc, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
            staged = op.stage(
                op.put_bytes(dumps(full)), layers, layer_media_types=media_types, parent=parent
            )
            if known_size is not None and staged.record.layers:
                rec = staged.record
                top = replace(rec.layers[-1], size=known_size)
                record = replace(
                    rec,
                    layers=(*rec.layers[:-1], top),
                    size=rec.size - rec.layers[-1].size + known_size,
                )
                staged = replace(staged, record=record)
            op.publish([(staged, [])])
        return staged.record.id

    def count(self) -> int:
        return len(self.meta.images())

    async def contribute_info(self, info: SystemInfo) -> None:
        """InfoProvider: the image count and storage driver of `/info`."""
        info.images = self.count()
        info.driver = "overlay2"

    def _event(self, action: str, image_id: str, attributes: dict[str, str]) -> None:
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event(action, image_id, attributes)


class _Raw(io.RawIOBase):
    """A plain file object as a raw stream, for io.BufferedReader's peek."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(b))
        b[: len(data)] = data
        return len(data)


def _container_config(doc: ConfigDoc) -> ImageConfig | None:
    raw = doc.raw.get("container_config")
    if not isinstance(raw, dict):
        return None
    try:
        return parse_image_config(raw, "container_config")
    except InvalidArgument:
        return None


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _repo(full_ref: str) -> str:
    """`docker.io/library/busybox` of `docker.io/library/busybox:latest` or `...@sha256:`."""
    name = full_ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _single_reference(names: builtins.list[str]) -> bool:
    """moby's isSingleReference: one tag (and digests of its repository), or one digest."""
    if len(names) <= 1:
        return len(names) == 1
    tags = [n for n in names if "@" not in n]
    canonical = {_repo(n) for n in names if "@" in n}
    if len(tags) > 1:
        return False
    single = tags[0] if tags else names[0]
    return len(canonical) == 1 and _repo(single) in canonical


def _ref_match(pattern: str, full_ref: str) -> bool:
    familiar = refs.familiar(full_ref)
    rx = _glob(pattern)
    return bool(rx.fullmatch(familiar) or rx.fullmatch(refs.parse(full_ref).familiar_name))


def _glob(pattern: str) -> re.Pattern[str]:
    """Go's path.Match: `*` and `?` stop at `/`; `[...]` classes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                raise InvalidArgument("syntax error in pattern")
            body = pattern[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else re.escape(body)) + "]")
            i = j
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _labels_match(
    labels: dict[str, str] | object, want: tuple[str, ...], not_want: tuple[str, ...]
) -> bool:
    assert isinstance(labels, dict)

    def has(spec: str) -> bool:
        key, sep, value = spec.partition("=")
        return key in labels and (not sep or labels[key] == value)

    return all(has(s) for s in want) and not any(has(s) for s in not_want)


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?"
)


def _unix(text: str) -> int:
    m = _RFC3339.fullmatch(text.strip()) if text else None
    if m is None:
        return 0
    tz = m.group(4) or "Z"
    tz = "+00:00" if tz in ("Z", "z") else tz
    try:
        dt = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{tz}")
    except ValueError:
        return 0
    return int(dt.timestamp())


def _rfc3339(ts: float) -> str:
    """RFC 3339 with nanoseconds, as Go's time.RFC3339Nano writes UTC."""
    dt = datetime.fromtimestamp(ts, UTC)
    nanos = round((ts - int(ts)) * 1e9) if ts != int(ts) else 0
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        return f"{base}.{nanos:09d}".rstrip("0") + "Z"
    return base + "Z"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_until(text: str, now: float | None = None) -> int:
    """`until`: unix seconds (fractions allowed), RFC 3339, or a Go duration before now."""
    now = time.time() if now is None else now
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return int(float(value))
    if _RFC3339.fullmatch(value) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        ts = _unix(value if "T" in value or " " in value else value + "T00:00:00Z")
        if ts:
            return ts
    parts = _DURATION.findall(value)
    if parts and "".join(a + b for a, b in parts) == value:
        return int(now - sum(float(a) * _UNITS[b] for a, b in parts))
    raise InvalidArgument(f"failed to parse value as time or duration: {text!r}")


def _conforms(svc: ImageService) -> ImageBackend:
    """mypy checks here that ImageService implements the protocol the API consumes."""
    return svc
