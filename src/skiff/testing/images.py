"""An in-memory `ImageBackend` for API and CLI tests (no disk, no mounts, milliseconds).

    backend = FakeImageBackend()
    image = backend.add("busybox:latest", layers=[b"layer bytes"], cmd=["sh"])
    backend.in_use = {image.id}          # as if a container used it

It keeps Docker's rules that the API shows: references normalised (`busybox` is
`busybox:latest`), ids and unique id prefixes resolve, `rmi` untags before it deletes and
refuses what Docker refuses, `save` writes a docker-archive and `load` reads one (layers
are kept as opaque bytes, never unpacked). Errors carry dockerd's wording.
"""

from __future__ import annotations

import builtins
import datetime
import fnmatch
import hashlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, BinaryIO

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.services.images import (
    MISSING,
    HistoryEntry,
    Image,
    ImageConfig,
    ImageFilters,
    InUse,
    Progress,
)

if TYPE_CHECKING:
    import os

EventHook = Callable[[str, str, dict[str, str]], None]  # as ImageService's on_event
_CHANGES = {"CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "WORKDIR", "VOLUME"}
_CHANGES |= {"STOPSIGNAL", "ONBUILD"}


def normalize(ref: str) -> str:
    """Familiar form with a tag: "docker.io/library/busybox" -> "busybox:latest"."""
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else ref + ":latest"


def _check_ref(ref: str) -> None:
    name = ref.split("@", 1)[0].rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    if not name or name != name.lower() or " " in ref:
        raise InvalidArgument("invalid reference format: repository name must be lowercase")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _rfc3339(unix_nanos: int) -> str:
    stamp = datetime.datetime.fromtimestamp(unix_nanos // 1_000_000_000, tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{unix_nanos % 1_000_000_000:09d}Z"


def apply_changes(config: ImageConfig, changes: builtins.list[str]) -> ImageConfig:
    """The subset of Dockerfile lines `docker import --change` takes."""
    for line in changes:
        word, _, rest = line.strip().partition(" ")
        command, rest = word.upper(), rest.strip()
        if command not in _CHANGES:
            raise InvalidArgument(f"{word.lower()} is not a valid change command")
        as_list = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
        if command == "CMD":
            config = replace(config, cmd=as_list)
        elif command == "ENTRYPOINT":
            config = replace(config, entrypoint=as_list)
        elif command == "ENV":
            key, sep, value = rest.partition("=")
            if not sep:
                key, _, value = rest.partition(" ")
            config = replace(config, env=[*config.env, f"{key}={value}"])
        elif command == "LABEL":
            key, _, value = rest.partition("=")
            config = replace(config, labels={**config.labels, key: value.strip('"')})
        elif command == "EXPOSE":
            port = rest if "/" in rest else rest + "/tcp"
            config = replace(config, exposed_ports={**config.exposed_ports, port: {}})
        elif command == "USER":
            config = replace(config, user=rest)
        elif command == "WORKDIR":
            config = replace(config, working_dir=rest)
        elif command == "VOLUME":
            config = replace(config, volumes={**config.volumes, rest: {}})
        elif command == "STOPSIGNAL":
            config = replace(config, stop_signal=rest)
        else:
            config = replace(config, on_build=[*config.on_build, rest])
    return config


class FakeImageBackend:
    """Implements skiff.services.images.ImageBackend in memory."""

    def __init__(self, on_event: EventHook | None = None) -> None:
        self.on_event = on_event
        self.images: dict[str, Image] = {}
        self.tags: dict[str, str] = {}  # familiar "repo:tag" -> image id
        self.layers: dict[str, bytes] = {}  # diff id -> layer tar bytes
        self.in_use: set[str] = set()
        self._lock = threading.RLock()
        self._clock = 1_700_000_000

    # -- helpers for tests ----------------------------------------------------------

    def add(
        self,
        ref: str | None,
        layers: builtins.list[bytes] = (),  # type: ignore[assignment]
        created: int | None = None,
        parent: str = "",
        comment: str = "",
        **config: Any,
    ) -> Image:
        """Make an image from layer bytes and config fields (cmd=[...], labels={...})."""
        with self._lock:
            if created is None:
                self._clock += 10
                created = self._clock
            diff_ids = []
            for data in layers:
                diff_id = _digest(data)
                self.layers[diff_id] = data
                diff_ids.append(diff_id)
            image_config = ImageConfig(**config)
            body = {"config": image_config.__dict__, "diff_ids": diff_ids, "created": created}
            body["comment"] = comment
            image_id = _digest(json.dumps(body, sort_keys=True, default=str).encode())
            image = Image(
                id=image_id,
                repo_tags=[],
                repo_digests=[],
                parent=parent,
                created=_rfc3339(created * 1_000_000_000),
                created_unix=created,
                size=sum(len(self.layers[d]) for d in diff_ids),
                config=image_config,
                architecture="amd64",
                os="linux",
                variant="",
                os_version="",
                diff_ids=diff_ids,
                history=[{"created": _rfc3339(created * 1_000_000_000), "comment": comment}],
                comment=comment,
                author="",
                docker_version="",
                manifest_digest="",
                manifest_media_type="application/vnd.docker.distribution.manifest.v2+json",
                chain_id=diff_ids[-1] if diff_ids else "",
                labels=image_config.labels,
            )
            self.images[image_id] = image
            if ref:
                self._set_tag(normalize(ref), image_id)
            return self._view(image_id)

    def _set_tag(self, ref: str, image_id: str) -> None:
        _check_ref(ref)
        self.tags[ref] = image_id
        self._event("tag", image_id, name=ref)

    def _event(self, action: str, image_id: str, **attributes: str) -> None:
        if self.on_event is not None:
            self.on_event(action, image_id, attributes)

    def _view(self, image_id: str) -> Image:
        image = self.images[image_id]
        tags = sorted(ref for ref, target in self.tags.items() if target == image_id)
        return replace(image, repo_tags=tags)

    def _resolve(self, ref_or_id: str) -> str:
        with self._lock:
            if ref_or_id in self.images:
                return ref_or_id
            normalized = normalize(ref_or_id)
            if normalized in self.tags:
                return self.tags[normalized]
            hexpart = ref_or_id.removeprefix("sha256:")
            if hexpart and all(c in "0123456789abcdef" for c in hexpart):
                found = [i for i in self.images if i[7:].startswith(hexpart)]
                if len(found) == 1:
                    return found[0]
            if ref_or_id.startswith("sha256:"):
                raise NotFound(f"No such image: {ref_or_id}")
            raise NotFound(f"No such image: {normalized}")

    def _children(self, image_id: str) -> builtins.list[str]:
        return [i for i, img in self.images.items() if img.parent == image_id]

    # -- ImageBackend ---------------------------------------------------------------

    def list(self, all: bool = False, filters: ImageFilters | None = None) -> builtins.list[Image]:
        filters = filters or ImageFilters()
        with self._lock:
            before = self.images[self._resolve(filters.before)] if filters.before else None
            since = self.images[self._resolve(filters.since)] if filters.since else None
            out = []
            for image_id in self.images:
                image = self._view(image_id)
                if not all and image.dangling and self._children(image_id):
                    continue
                if filters.dangling is not None and image.dangling != filters.dangling:
                    continue
                if before and image.created_unix >= before.created_unix:
                    continue
                if since and image.created_unix <= since.created_unix:
                    continue
                if not _labels_match(image.config.labels, filters.label):
                    continue
                if filters.reference:
                    tags = [t for t in image.repo_tags if _ref_match(filters.reference, t)]
                    if not tags:
                        continue
                    image = replace(image, repo_tags=tags)
                out.append(image)
            return sorted(out, key=lambda i: i.created_unix, reverse=True)

    def get(self, ref_or_id: str) -> Image:
        with self._lock:
            return self._view(self._resolve(ref_or_id))

    def history(self, ref_or_id: str) -> builtins.list[HistoryEntry]:
        with self._lock:
            out = []
            image_id: str | None = self._resolve(ref_or_id)
            while image_id:
                image = self._view(image_id)
                top = image.diff_ids[-1] if image.diff_ids else None
                size = len(self.layers[top]) if top else 0
                out.append(
                    HistoryEntry(
                        image.id, image.created_unix, "", image.repo_tags, size, image.comment
                    )
                )
                image_id = image.parent or None
            if len(out) == 1 and len(self.images[out[0].id].diff_ids) > 1:
                image = self.images[out[0].id]
                for diff_id in reversed(image.diff_ids[:-1]):
                    out.append(
                        HistoryEntry(
                            MISSING, image.created_unix, "", [], len(self.layers[diff_id]), ""
                        )
                    )
            return out

    def tag(self, source: str, repo: str, tag: str = "latest") -> None:
        with self._lock:
            image_id = self._resolve(source)
            if not tag or not all(c.isalnum() or c in "_.-" for c in tag):
                raise InvalidArgument("invalid tag format")
            self._set_tag(normalize(f"{repo}:{tag}"), image_id)

    def remove(
        self, ref_or_id: str, force: bool = False, noprune: bool = False
    ) -> builtins.list[tuple[str, str]]:
        with self._lock:
            image_id = self._resolve(ref_or_id)
            normalized = normalize(ref_or_id)
            by_ref = normalized in self.tags
            tags = [r for r, t in self.tags.items() if t == image_id]
            short = image_id[7:19]
            if image_id in self.in_use and not force:
                raise Conflict(
                    f'conflict: unable to remove repository reference "{ref_or_id}" '
                    f"(must force) - container 0123456789ab is using its referenced image {short}"
                    if by_ref
                    else f"conflict: unable to delete {short} (must be forced) - image is being "
                    "used by stopped container 0123456789ab"
                )
            items: builtins.list[tuple[str, str]] = []
            if by_ref and len(tags) > 1:
                del self.tags[normalized]
                self._event("untag", image_id, name=normalized)
                return [("Untagged", normalized)]
            if not by_ref and len(tags) > 1 and not force:
                raise Conflict(
                    f"conflict: unable to delete {short} (must be forced) - image is "
                    "referenced in multiple repositories"
                )
            for ref in sorted(tags):
                del self.tags[ref]
                self._event("untag", image_id, name=ref)
                items.append(("Untagged", ref))
            if image_id in self.in_use:
                return items
            if self._children(image_id):
                if not force:
                    raise Conflict(
                        f"conflict: unable to delete {short} (cannot be forced) - image has "
                        "dependent child images"
                    )
                return items
            items += self._delete(image_id, noprune)
            return items

    def _delete(self, image_id: str, noprune: bool) -> builtins.list[tuple[str, str]]:
        image = self.images.pop(image_id)
        self._event("delete", image_id)
        items = [("Deleted", image_id)]
        used = {d for i in self.images.values() for d in i.diff_ids}
        for diff_id in image.diff_ids:
            if diff_id not in used and diff_id in self.layers:
                del self.layers[diff_id]
                items.append(("Deleted", diff_id))
        parent = image.parent
        prunable = parent and not noprune and parent in self.images
        if prunable and not self._view(parent).repo_tags and not self._children(parent):
            items += self._delete(parent, noprune)
        return items

    def import_rootfs(
        self,
        stream: BinaryIO,
        ref: str | None = None,
        changes: builtins.list[str] | None = None,
        message: str = "",
        platform: str | None = None,
    ) -> Image:
        config = apply_changes(ImageConfig(), changes or [])
        if ref:
            _check_ref(normalize(ref))
        data = stream.read()
        if data:
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                    tar.getmembers()
            except tarfile.TarError as exc:
                raise InvalidArgument(f"archive/tar: invalid tar header ({exc})") from None
        return self.add(
            ref,
            [data] if data else [],
            created=int(time.time()),
            comment=message or "Imported from -",
            **config.__dict__,
        )

    def load(self, stream: BinaryIO, progress: Progress | None = None) -> builtins.list[str]:
        try:
            tar = tarfile.open(fileobj=io.BytesIO(stream.read()), mode="r:*")  # noqa: SIM115
        except tarfile.TarError:
            raise InvalidArgument("unexpected EOF") from None
        with tar:
            files = {m.name: m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> bytes:
                member = files.get(name)
                extracted = tar.extractfile(member) if member else None
                if extracted is None:
                    raise InvalidArgument(f"file {name} not found in archive")
                return extracted.read()

            manifest = json.loads(read("manifest.json"))
            lines: builtins.list[str] = []
            for entry in manifest:
                config = json.loads(read(entry["Config"]))
                layers = [read(path) for path in entry["Layers"]]
                fields = config.get("config") or {}
                image = self.add(
                    None,
                    layers,
                    cmd=fields.get("Cmd"),
                    env=fields.get("Env") or [],
                    labels=fields.get("Labels") or {},
                )
                tags = entry.get("RepoTags") or []
                with self._lock:
                    for ref in tags:
                        self._set_tag(normalize(ref), image.id)
                lines += [f"Loaded image: {t}" for t in tags] or [f"Loaded image ID: {image.id}"]
                self._event("load", image.id)
            if progress is not None:  # as the real service does: the final lines too
                for line in lines:
                    progress(line)
            return lines

    def save(self, refs: builtins.list[str], out: BinaryIO) -> None:
        with self._lock:
            chosen = [(ref, self._view(self._resolve(ref))) for ref in refs]
            layers = dict(self.layers)
        manifest = []
        with tarfile.open(fileobj=out, mode="w|") as tar:
            for ref, image in chosen:
                config = {
                    "architecture": image.architecture,
                    "os": image.os,
                    "created": image.created,
                    "config": {"Cmd": image.config.cmd, "Env": image.config.env or None},
                    "rootfs": {"type": "layers", "diff_ids": image.diff_ids},
                }
                _add_file(tar, image.id[7:] + ".json", json.dumps(config).encode())
                paths = []
                for diff_id in image.diff_ids:
                    path = f"{diff_id[7:]}/layer.tar"
                    _add_file(tar, path, layers[diff_id])
                    paths.append(path)
                named = normalize(ref) if normalize(ref) in image.repo_tags else None
                manifest.append(
                    {
                        "Config": image.id[7:] + ".json",
                        "RepoTags": [named] if named else None,
                        "Layers": paths,
                    }
                )
            _add_file(tar, "manifest.json", json.dumps(manifest).encode())

    def export_oci_layout(self, ref_or_id: str, dest_dir: str | os.PathLike[str]) -> None:
        raise NotImplementedError("the fake has no OCI layout")

    def import_oci_layout(
        self, src_dir: str | os.PathLike[str], ref: str | None = None
    ) -> builtins.list[Image]:
        raise NotImplementedError("the fake has no OCI layout")

    def prune(
        self, all: bool = False, filters: ImageFilters | None = None
    ) -> tuple[builtins.list[tuple[str, str]], int]:
        filters = filters or ImageFilters()
        items: builtins.list[tuple[str, str]] = []
        reclaimed = 0
        with self._lock:
            for image_id in list(self.images):
                if image_id not in self.images or image_id in self.in_use:
                    continue
                image = self._view(image_id)
                if not all and not image.dangling:
                    continue
                if not _labels_match(image.config.labels, filters.label):
                    continue
                if filters.label_not and _labels_match(image.config.labels, filters.label_not):
                    continue
                if self._children(image_id):
                    continue
                for ref in image.repo_tags:
                    del self.tags[ref]
                    items.append(("Untagged", ref))
                before = sum(len(v) for v in self.layers.values())
                items += self._delete(image_id, noprune=False)
                reclaimed += before - sum(len(v) for v in self.layers.values())
        return items, reclaimed

    def disk_usage(self) -> builtins.list[Image]:
        with self._lock:
            counts: dict[str, int] = {}
            for image in self.images.values():
                for diff_id in set(image.diff_ids):
                    counts[diff_id] = counts.get(diff_id, 0) + 1
            out = []
            for image_id in self.images:
                image = self._view(image_id)
                shared = sum(len(self.layers[d]) for d in image.diff_ids if counts[d] > 1)
                used = 1 if image_id in self.in_use else 0
                out.append(replace(image, shared_size=shared, containers=used))
            return sorted(out, key=lambda i: i.created_unix, reverse=True)

    def bootstrap_busybox(self, ref: str = "busybox:latest") -> Image:
        return self.add(ref, [b"busybox layer"], cmd=["sh"])

    def snapshot_parent(self, image: Image) -> str:
        return image.chain_id

    def set_in_use(self, in_use: InUse) -> None:
        self.in_use = {u if isinstance(u, str) else u.image_id for u in in_use()}

    def gc(self) -> tuple[int, int]:
        return (0, 0)


def _ref_match(patterns: tuple[str, ...], ref: str) -> bool:
    """dockerd's reference filter: a pattern without a tag matches the name."""
    name = ref.rsplit(":", 1)[0]
    return any(fnmatch.fnmatchcase(ref if ":" in p else name, p) for p in patterns)


def _labels_match(labels: dict[str, str], wanted: tuple[str, ...]) -> bool:
    for term in wanted:
        key, sep, value = term.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def _add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


if TYPE_CHECKING:
    from skiff.services.images import ImageBackend

    _conforms: ImageBackend = FakeImageBackend()
