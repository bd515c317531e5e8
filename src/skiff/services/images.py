"""The image service's domain API: what the Docker image routes and the CLI consume.

    ImageBackend          the protocol (synchronous; the API runs it in a thread)
    Image                 one image as `docker image inspect` / `docker images` need it
    ImageConfig           the runnable part of the OCI image config (Env, Cmd, ...)
    HistoryEntry          one line of `docker history`
    ImageFilters          the `filters` of `GET /images/json` and `POST /images/prune`

The implementation is `skiff.images.service.ImageService` (content store + SQLite
metadata + overlay snapshots); this module only holds the types, so the API can be
written and tested against a fake.

Errors (skiff.errors categories; the API's one table picks the status):

    NotFound         "No such image: busybox:latest"                              404
    InvalidArgument  "invalid reference format", a bad --change, a bad archive    400
    Conflict         "conflict: unable to remove repository reference ..."        409

IDs are always "sha256:<64 hex>" (the digest of the image config). References in
`repo_tags` / `repo_digests` are *familiar* (`busybox:latest`, `localhost:5000/a/b:t`,
`busybox@sha256:...`), as `docker images` shows them.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Protocol

from skiff.errors import InvalidArgument
from skiff.oci.image import ImageConfig

if TYPE_CHECKING:
    import os

__all__ = [
    "MISSING",
    "HistoryEntry",
    "Image",
    "ImageBackend",
    "ImageConfig",
    "ImageFilters",
    "ImageUser",
    "InUse",
    "Progress",
]

#: `docker history` shows this in place of an ID for layers with no image of their own.
MISSING = "<missing>"


@dataclass(frozen=True)
class HistoryEntry:
    """One row of `docker history`, newest first (Docker's HistoryResponseItem)."""

    id: str  # "sha256:..." for the image itself and its known parents, else MISSING
    created: int  # unix seconds
    created_by: str
    tags: list[str]  # familiar references of the image with this id
    size: int  # bytes of the layer this step made (0 for an empty layer)
    comment: str


@dataclass(frozen=True)
class Image:
    """One image: identity, references, config and the facts inspect shows."""

    id: str  # "sha256:<hex>", the digest of the config blob
    repo_tags: list[str]  # familiar "repo:tag", sorted
    repo_digests: list[str]  # familiar "repo@sha256:<manifest digest>"
    parent: str  # the id of the parent image (local builds), "" if none
    created: str  # RFC 3339 (nanoseconds) as in the config; "" if unknown
    created_unix: int  # the same in unix seconds; 0 if unknown
    size: int  # bytes of all layers, uncompressed (Docker's Size)
    config: ImageConfig
    architecture: str
    os: str
    variant: str
    os_version: str
    diff_ids: list[str]  # rootfs.diff_ids, base layer first
    history: list[dict[str, object]]  # the config's history entries, as stored
    comment: str
    author: str
    docker_version: str
    manifest_digest: str  # "sha256:..." of the manifest the image came with (or made)
    manifest_media_type: str  # OCI or Docker schema2 manifest media type
    chain_id: str  # the snapshot name of the top layer ("" for an image with no layers)
    container: str = ""  # the container a commit came from (Docker's Container)
    container_config: ImageConfig | None = None  # the step's config, for built images
    shared_size: int = -1  # filled by disk_usage(): bytes shared with other images
    containers: int = -1  # filled by disk_usage(): containers using this image
    labels: Mapping[str, str] = field(default_factory=dict)  # same as config.labels

    @property
    def short_id(self) -> str:
        """The 12 hex characters `docker images` shows."""
        return self.id.partition(":")[2][:12]

    @property
    def dangling(self) -> bool:
        """No tags: `docker images` shows it as <none>:<none>."""
        return not self.repo_tags


_FILTER_KEYS = frozenset({"dangling", "label", "before", "since", "reference", "until"})


@dataclass(frozen=True)
class ImageFilters:
    """Filters of `docker images --filter` and `docker image prune --filter`.

    dangling   True: only untagged; False: only tagged; None: both
    label      each "key" or "key=value" must match (all of them)
    label_not  `label!=`: none may match (prune)
    before     only images created before this image (reference or id)
    since      only images created after this image
    reference  familiar patterns with * (`busy*`, `busybox:1.*`); any may match
    until      (prune, list) only images created before this time (unix seconds,
               RFC 3339 or a Go duration like "24h"), parsed by the service
    """

    dangling: bool | None = None
    label: tuple[str, ...] = ()
    label_not: tuple[str, ...] = ()
    before: str | None = None
    since: str | None = None
    reference: tuple[str, ...] = ()
    until: str | None = None

    @classmethod
    def from_filters(cls, filters: Mapping[str, list[str]]) -> ImageFilters:
        """From the API's parsed `filters` (key -> values); Docker's error wording."""
        for key in filters:
            if key not in _FILTER_KEYS and key != "label!":
                raise InvalidArgument(f"invalid filter '{key}'")
        dangling: bool | None = None
        for value in filters.get("dangling", []):
            lowered = value.lower()
            if lowered in ("true", "1"):
                dangling = True
            elif lowered in ("false", "0"):
                dangling = False
            else:
                raise InvalidArgument(f"invalid filter 'dangling={value}'")

        def one(key: str) -> str | None:
            values = filters.get(key, [])
            return values[-1] if values else None

        return cls(
            dangling=dangling,
            label=tuple(filters.get("label", [])),
            label_not=tuple(filters.get("label!", [])),
            before=one("before"),
            since=one("since"),
            reference=tuple(filters.get("reference", [])),
            until=one("until"),
        )


@dataclass(frozen=True)
class ImageUser:
    """A container that uses an image: lets `rmi` word its conflicts as Docker
    ("container 3f2a... is using its referenced image ...") and refuse even a
    forced removal while the container runs."""

    container_id: str
    image_id: str
    running: bool = False


Progress = Callable[[str], None]
#: What `set_in_use` takes: image ids (a plain set) or ImageUser records.
InUse = Callable[[], Iterable[str | ImageUser]]


class ImageBackend(Protocol):
    """The local image store as the API sees it. Every method is synchronous and
    thread-safe (the API calls them from a worker thread)."""

    def list(self, all: bool = False, filters: ImageFilters | None = None) -> list[Image]:
        """`docker images`: newest first. Without `all`, intermediate images (untagged
        parents of other images) are hidden, as Docker does."""
        ...

    def get(self, ref_or_id: str) -> Image:
        """By reference (`busybox`, `busybox:1`, `name@sha256:...`), full id or unique
        id prefix (`sha256:abc`, `abc123`). NotFound("No such image: X")."""
        ...

    def history(self, ref_or_id: str) -> builtins.list[HistoryEntry]:
        """`docker history`: newest first."""
        ...

    def tag(self, source: str, repo: str, tag: str = "latest") -> None:
        """Point `repo:tag` at the image `source` names (moving it if it pointed
        elsewhere). InvalidArgument for a bad repo or tag; NotFound for the source."""
        ...

    def remove(
        self, ref_or_id: str, force: bool = False, noprune: bool = False
    ) -> builtins.list[tuple[str, str]]:
        """`docker rmi`: [("Untagged", "busybox:latest"), ("Deleted", "sha256:...")].

        By reference: untag; delete the image when that was its last reference.
        By id: delete, refused (Conflict) when it has several tags unless forced.
        Refused (Conflict, Docker's wording) when a container uses it unless forced;
        a running container's image is never deleted (forced by name: only untagged).
        `noprune` keeps untagged parents."""
        ...

    def import_rootfs(
        self,
        stream: BinaryIO,
        ref: str | None = None,
        changes: builtins.list[str] | None = None,
        message: str = "",
        platform: str | None = None,
    ) -> Image:
        """`docker import`: one layer from a rootfs tar (plain, gzip or zstd).

        `changes` are Dockerfile lines (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
        WORKDIR, VOLUME, STOPSIGNAL, ONBUILD) applied to the config as dockerd does;
        `message` is the history comment; `platform` "os/arch[/variant]"."""
        ...

    def load(self, stream: BinaryIO, progress: Progress | None = None) -> builtins.list[str]:
        """`docker load` of a docker-archive (or an OCI layout tar): returns the lines
        dockerd prints ("Loaded image: busybox:latest", "Loaded image ID: sha256:...").
        Nothing is visible until every blob of an image is stored and verified."""
        ...

    def save(self, refs: builtins.list[str], out: BinaryIO) -> None:
        """`docker save`: a docker-archive (manifest.json, repositories, configs,
        layer tars) that also is an OCI image layout (index.json, oci-layout)."""
        ...

    def export_oci_layout(self, ref_or_id: str, dest_dir: str | os.PathLike[str]) -> None:
        """Write (or add to) an OCI image layout folder; the index entry is annotated
        with `org.opencontainers.image.ref.name` = the tag (as skopeo writes)."""
        ...

    def import_oci_layout(
        self, src_dir: str | os.PathLike[str], ref: str | None = None
    ) -> builtins.list[Image]:
        """Read every image of an OCI layout folder (or only the one whose
        ref.name annotation is `ref`'s tag). Images are tagged from their
        `io.containerd.image.name` or `ref.name` annotations when they are full
        references, or with `ref`."""
        ...

    def prune(
        self, all: bool = False, filters: ImageFilters | None = None
    ) -> tuple[builtins.list[tuple[str, str]], int]:
        """`docker image prune`: dangling images (all unused ones with `all`).
        Returns the Untagged/Deleted items and the bytes reclaimed."""
        ...

    def disk_usage(self) -> builtins.list[Image]:
        """Every image with `shared_size` and `containers` filled (`docker system df`)."""
        ...

    def bootstrap_busybox(self, ref: str = "busybox:latest") -> Image:
        """Make an image from the host's busybox-static (no registry needed)."""
        ...

    def snapshot_parent(self, image: Image) -> str:
        """Unpack the image's layers into snapshots if needed; return the committed
        snapshot name (the chain id) a container's snapshot takes as parent."""
        ...

    def set_in_use(self, in_use: InUse) -> None:
        """The container service tells which images its containers use: a callable
        returning image ids (`set[str]`) or `ImageUser` records (better messages,
        and running containers block even a forced removal, as in Docker)."""
        ...

    def gc(self) -> tuple[int, int]:
        """Remove unreferenced blobs and snapshots; returns (blobs, snapshots) removed."""
        ...
