"""Pull, push, login and logout: the registry client over the local image store.

    svc = DistributionService(images, credentials=DockerConfig(path))
    image = svc.pull("busybox", progress=emit)            # tag -> Image, RepoDigests set
    svc.push("127.0.0.1:5000/app:v1", progress=emit)       # what the tag names
    svc.login("127.0.0.1:5000", "alice", "pw", config_path)  # checked, then stored

A pull runs under a lease (blobs and snapshots are written before the one metadata
transaction that makes the image visible, as `images.ingest` does for a load): the
lease expires after an hour when a pull fails, so a retry finds the layers it already
completed; a killed process leaves a lease whose owner is dead, swept by the next
collection, while partial downloads stay in the content store's ingest and resume.
Layers are unpacked into snapshots in order as soon as each is stored, while the
later ones still download.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from skiff.distribution.client import RegistryClient
from skiff.distribution.credentials import (
    DOCKER_HUB,
    Credentials,
    CredentialSource,
    DockerConfig,
    NoCredentials,
    StaticCredentials,
    normalize_server,
)
from skiff.distribution.progress import ProgressCallback, ProgressEvent, ignore, short_id
from skiff.distribution.pull import DEFAULT_CONCURRENCY as PULL_CONCURRENCY
from skiff.distribution.pull import Puller, PullResult
from skiff.distribution.push import DEFAULT_CONCURRENCY as PUSH_CONCURRENCY
from skiff.distribution.push import Pusher
from skiff.distribution.transport import Transport
from skiff.errors import InvalidArgument, NotFound
from skiff.metadata.db import CONTENT, SNAPSHOT
from skiff.oci import platform as platforms
from skiff.oci import reference as refs
from skiff.oci.descriptor import Descriptor
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    import os

    from skiff.content.types import Info, Store
    from skiff.metadata.db import MetadataStore
    from skiff.services.images import Image
    from skiff.snapshots.types import Snapshotter

FAILED_PULL_LEASE = 3600.0  # seconds completed layers of a failed pull are kept for a retry

EventHook = Callable[[str, str, dict[str, str]], None]  # (action, image id, attributes)


@dataclass(frozen=True)
class PushResult:
    tag: str
    digest: str
    size: int


class DistributionService:
    """Pull/push/login over an image store that exposes its content store, snapshotter
    and metadata (skiff.images.service.ImageService does)."""

    def __init__(
        self,
        images: Any,
        *,
        credentials: CredentialSource | None = None,
        insecure: Iterable[str] = (),
        platform: platforms.Platform | None = None,
        max_concurrent_downloads: int = PULL_CONCURRENCY,
        max_concurrent_uploads: int = PUSH_CONCURRENCY,
        chunk_size: int | None = None,
        retries: int = 3,
        on_event: EventHook | None = None,
    ) -> None:
        self.images = images
        self.store: Store = images.store
        self.meta: MetadataStore = images.meta
        self.snapshotter: Snapshotter = images.snapshotter
        self.credentials = credentials or NoCredentials()
        self.transport = Transport(tuple(insecure))
        self.platform = platform or getattr(images, "platform", None) or platforms.host()
        self.max_concurrent_downloads = max_concurrent_downloads
        self.max_concurrent_uploads = max_concurrent_uploads
        self.chunk_size = chunk_size
        self.retries = retries
        self._on_event = on_event
        self._lock = threading.Lock()

    def _client(self, credentials: CredentialSource | None) -> RegistryClient:
        return RegistryClient(
            credentials or self.credentials, transport=self.transport, retries=self.retries
        )

    # --- pull ----------------------------------------------------------------------

    def pull(
        self,
        name: str,
        tag: str | None = None,
        *,
        platform: str | None = None,
        progress: ProgressCallback = ignore,
        credentials: CredentialSource | None = None,
    ) -> Image:
        """`docker pull name[:tag|@digest]` (the API's fromImage + tag)."""
        ref = _target(name, tag)
        plat = platforms.parse(platform) if platform else self.platform
        lease = self.meta.create_lease(ttl=FAILED_PULL_LEASE)
        ok = False
        try:
            unpacker = _Unpacker(self, lease, progress)
            puller = Puller(
                self._client(credentials),
                self.store,
                platform=plat,
                max_concurrent=self.max_concurrent_downloads,
                progress=progress,
                protect=lambda d: self.meta.add_lease_resource(lease, CONTENT, str(d)),
            )
            result = puller.pull(ref, on_config=unpacker.set_config, on_layer=unpacker.layer)
            image_id, fresh = self._record(ref, result, lease)
            ok = True
        finally:
            if ok:
                self.meta.delete_lease(lease)
        status = "Downloaded newer image for" if fresh else "Image is up to date for"
        progress(ProgressEvent(f"Status: {status} {ref.familiar()}"))
        self._event("pull", image_id, {"name": ref.familiar()})
        image: Image = self.images.get(image_id)
        return image

    def _record(self, ref: refs.Reference, result: PullResult, lease: str) -> tuple[str, bool]:
        from skiff.images.ingest import Blob, Ingest

        op = Ingest(self.store, self.meta, self.snapshotter, threading.Lock())
        op.lease = lease
        staged = op.stage(
            Blob(result.config.digest, result.config.size),
            [Blob(la.digest, la.size) for la in result.layers],
            manifest=Blob(result.manifest.digest, result.manifest.size),
            manifest_media_type=result.manifest.media_type,
            layer_media_types=[la.media_type for la in result.layers],
        )
        names = [f"{ref.name}@{result.top.digest}"]
        if ref.digest is None:
            names.insert(0, str(ref))
        before = {n: self.meta.get_ref(n) for n in names}
        op.publish([(staged, names)])
        fresh = any(old != staged.record.id for old in before.values())
        return staged.record.id, fresh

    # --- push ------------------------------------------------------------------------

    def push(
        self,
        name: str,
        tag: str | None = None,
        *,
        progress: ProgressCallback = ignore,
        credentials: CredentialSource | None = None,
    ) -> list[PushResult]:
        """`docker push`: one tag, a digest, or (no tag given) every tag of the repository."""
        base = refs.parse_normalized(name)
        if tag:
            base = base.with_tag(tag)
        targets: list[refs.Reference]
        if base.tag is None and base.digest is None:
            targets = [refs.parse(n) for n in sorted(self.meta.all_refs_flat())
                       if "@" not in n and n.rsplit(":", 1)[0] == base.name]  # fmt: skip
            if not targets:
                raise NotFound(f"An image does not exist locally with the tag: {base.familiar()}")
        else:
            targets = [base]
        client = self._client(credentials)
        out = []
        for target in targets:
            out.append(self._push_one(client, target, progress))
        return out

    def _push_one(
        self, client: RegistryClient, target: refs.Reference, progress: ProgressCallback
    ) -> PushResult:
        try:
            image_id = self.images.get(target.familiar()).id
        except NotFound:
            raise NotFound(
                f"An image does not exist locally with the tag: {target.familiar()}"
            ) from None
        record = self.meta.get_image(image_id)
        top = Descriptor(
            record.manifest_media_type,
            Digest.parse(record.manifest_digest),
            self.store.info(Digest.parse(record.manifest_digest)).size,
        )
        layer_ids = {Digest.parse(la.digest): la.diff_id for la in record.layers}
        pusher = Pusher(
            client,
            self.store,
            max_concurrent=self.max_concurrent_uploads,
            progress=progress,
            chunk_size=self.chunk_size,
        )
        sources = self._mount_sources(target)
        pushed = pusher.push(target, top, layer_ids=layer_ids, mount_sources=sources)
        if target.tag is not None:
            # RepoDigests, as dockerd records after a push
            self.meta.set_ref(f"{target.name}@{pushed.digest}", image_id)
        self._event("push", image_id, {"name": target.familiar()})
        return PushResult(target.tag or "", str(pushed.digest), pushed.size)

    def _mount_sources(self, target: refs.Reference) -> Callable[[Digest], list[str]]:
        """Repositories on the target's registry that hold a blob, from local images
        tagged there: candidates for a cross-repository mount."""
        by_blob: dict[Digest, list[str]] = {}
        for name, image_id in _ref_pairs(self.meta):
            try:
                ref = refs.parse(name)
            except InvalidArgument:
                continue
            if ref.domain != target.domain or ref.path == target.path:
                continue
            try:
                record = self.meta.get_image(image_id)
            except NotFound:
                continue
            for layer in record.layers:
                paths = by_blob.setdefault(Digest.parse(layer.digest), [])
                if ref.path not in paths:
                    paths.append(ref.path)
        return lambda digest: by_blob.get(digest, [])

    # --- login ---------------------------------------------------------------------

    def check_login(self, server: str, username: str, password: str) -> str:
        """`POST /auth`: verify credentials against the registry (GET /v2/ with auth).
        Returns the status line; Unauthorized when refused."""
        host = normalize_server(server) if server else DOCKER_HUB
        creds = StaticCredentials(Credentials(username, password))
        self._client(creds).check_login(host)
        return "Login Succeeded"

    def login(
        self, server: str, username: str, password: str, config: str | os.PathLike[str]
    ) -> str:
        """`docker login`: check, then store in config.json (or its credential helper)."""
        status = self.check_login(server, username, password)
        host = normalize_server(server) if server else DOCKER_HUB
        DockerConfig(config).store(host, Credentials(username, password))
        return status

    @staticmethod
    def logout(server: str, config: str | os.PathLike[str]) -> bool:
        host = normalize_server(server) if server else DOCKER_HUB
        return DockerConfig(config).erase(host)

    def _event(self, action: str, image_id: str, attributes: dict[str, str]) -> None:
        if self._on_event is not None:
            try:
                self._on_event(action, image_id, attributes)
            except Exception:
                pass


def _target(name: str, tag: str | None) -> refs.Reference:
    ref = refs.parse_normalized(name)
    if tag:
        if tag.startswith(("sha256:", "sha512:")):
            ref = ref.with_digest(Digest.parse(tag))
        else:
            ref = ref.with_tag(tag)
    return ref.with_default_tag()


def _ref_pairs(meta: MetadataStore) -> list[tuple[str, str]]:
    out = []
    for name in meta.all_refs_flat():
        image_id = meta.get_ref(name)
        if image_id is not None:
            out.append((name, image_id))
    return out


class _Unpacker:
    """Unpacks layers into snapshots in order while later ones still download."""

    def __init__(self, svc: DistributionService, lease: str, progress: ProgressCallback) -> None:
        self.svc = svc
        self.lease = lease
        self.progress = progress
        self.blobs: list[Digest] = []
        self.diff_ids: list[Digest] | None = None

    def layer(self, index: int, desc: Descriptor) -> None:
        from skiff.images.unpack import chain_ids, unpack_layers

        self.blobs.append(desc.digest)
        diff_ids = self.diff_ids
        if diff_ids is None or len(diff_ids) <= index:
            return  # stage() will say what is wrong with the config
        chain = chain_ids(diff_ids[: index + 1])[-1]
        try:
            self.svc.snapshotter.stat(str(chain))
            return  # unpacked already (a shared layer): nothing to say
        except NotFound:
            pass
        id_ = short_id(desc.digest)
        provider = _CountingProvider(self.svc.store, lambda n: self.progress(
            ProgressEvent("Extracting", id_, n, desc.size)))  # fmt: skip
        unpack_layers(
            provider,
            self.svc.snapshotter,
            self.blobs,
            diff_ids[: index + 1],
            before=lambda c: self.svc.meta.add_lease_resource(self.lease, SNAPSHOT, str(c)),
            known_size=lambda c: self.svc.meta.layer_size(str(c)),
        )
        self.progress(ProgressEvent("Pull complete", id_, detail=True))

    def set_config(self, config: Descriptor) -> None:
        from skiff.images.types import ConfigDoc

        with self.svc.store.open_blob(config.digest) as f:
            self.diff_ids = list(ConfigDoc.parse(f.read(64 << 20)).diff_ids)


class _CountingProvider:
    """A Provider whose blobs report how far the unpacker has read (Extracting)."""

    def __init__(self, store: Store, report: Callable[[int], None]) -> None:
        self._store = store
        self._report = report

    def open_blob(self, digest: Digest) -> BinaryIO:
        return cast(BinaryIO, _CountingReader(self._store.open_blob(digest), self._report))

    def info(self, digest: Digest) -> Info:
        return self._store.info(digest)


class _CountingReader:
    """Reads through to a blob file, reporting the offset at most every 0.1 s."""

    def __init__(self, f: BinaryIO, report: Callable[[int], None]) -> None:
        self._f = f
        self._report = report
        self._done = 0
        self._last = 0.0

    def _count(self, n: int) -> None:
        self._done += n
        now = time.monotonic()
        if now - self._last >= 0.1:
            self._last = now
            self._report(self._done)

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._count(len(data))
        return data

    def readinto(self, b: bytearray | memoryview) -> int:
        n = self._f.readinto(b)  # type: ignore[attr-defined]
        self._count(n or 0)
        return int(n or 0)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> _CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)
