"""Pull: resolve a reference, pick the platform, fetch what the store lacks.

    resolve     GET manifests/<tag|digest>     -> index or manifest (digest verified)
    select      index -> the manifest for the platform (linux/amd64 unless asked)
    config      GET blobs/<config>             -> store
    layers      up to `max_concurrent` GET blobs/<layer> at a time, each streamed into
                the store's ingest (sha256 while it streams, resumable); blobs already
                stored are skipped ("Already exists")
    on_layer    called in layer order as soon as a layer and all below it are stored,
                while later layers still download (so unpacking overlaps downloading)

Every blob goes through the content store's writer: nothing is visible until its
size and digest are verified, and an interrupted download leaves its bytes in the
ingest for the next pull to continue with a Range request. `protect(digest)` is
called before a blob is written, so the caller can put it on a lease first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from skiff.content.types import write_blob
from skiff.distribution.manifests import parse_index, parse_manifest, select_platform
from skiff.distribution.progress import ProgressCallback, ProgressEvent, Throttle, ignore, short_id
from skiff.errors import SkiffError
from skiff.oci import mediatypes as mt
from skiff.oci import platform as platforms

if TYPE_CHECKING:
    from skiff.content.types import Store
    from skiff.distribution.client import RegistryClient, Repository
    from skiff.oci.descriptor import Descriptor
    from skiff.oci.digest import Digest
    from skiff.oci.platform import Platform
    from skiff.oci.reference import Reference

DEFAULT_CONCURRENCY = 3  # dockerd's max-concurrent-downloads


@dataclass(frozen=True)
class PullResult:
    reference: Reference
    top: Descriptor  # what the reference resolved to: the RepoDigest (index or manifest)
    manifest: Descriptor  # the platform's image manifest
    config: Descriptor
    layers: tuple[Descriptor, ...]
    downloaded: int  # blobs fetched (0: everything was here already)


class Cancelled(SkiffError):
    pass


class Puller:
    def __init__(
        self,
        client: RegistryClient,
        store: Store,
        *,
        platform: Platform | None = None,
        max_concurrent: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback = ignore,
        protect: Callable[[Digest], None] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.platform = platform or platforms.Platform("linux", "amd64")
        self.max_concurrent = max(1, max_concurrent)
        self.progress = progress
        self.protect = protect or (lambda digest: None)

    def pull(
        self,
        ref: Reference,
        on_layer: Callable[[int, Descriptor], None] | None = None,
        on_config: Callable[[Descriptor], None] | None = None,
    ) -> PullResult:
        repo = self.client.repository(ref.domain, ref.path, display=ref.familiar_name)
        reference = str(ref.digest) if ref.digest is not None else (ref.tag or "latest")
        top, data = repo.get_manifest(reference)
        # After the manifest, as dockerd: an unknown image fails before the stream starts
        # (a real 404 at the API, which `docker run` relies on).
        self.progress(ProgressEvent(f"Pulling from {ref.path}", reference))
        manifest, manifest_data = top, data
        if mt.is_index(top.media_type):
            chosen = select_platform(parse_index(data, repo.what(reference)), self.platform,
                                     f"{ref.familiar()}")  # fmt: skip
            manifest, manifest_data = repo.get_manifest(str(chosen.digest))
            if mt.is_index(manifest.media_type):
                raise SkiffError(f"{ref.familiar()}: nested image indexes are not supported")
        image = parse_manifest(manifest_data, manifest.media_type, repo.what(str(manifest.digest)))
        downloaded = 0
        self._put_small(top, data)
        if manifest is not top:
            self._put_small(manifest, manifest_data)
        if not self._has(image.config.digest):
            self.protect(image.config.digest)
            self._put_small(image.config, repo.read_blob(image.config))
            downloaded += 1
        if on_config is not None:
            on_config(image.config)
        downloaded += self._layers(repo, image.layers, on_layer)
        self.progress(ProgressEvent(f"Digest: {top.digest}"))
        return PullResult(ref, top, manifest, image.config, image.layers, downloaded)

    def _has(self, digest: Digest) -> bool:
        try:
            self.store.info(digest)
        except SkiffError:
            return False
        return True

    def _put_small(self, desc: Descriptor, data: bytes) -> None:
        self.protect(desc.digest)
        write_blob(self.store, f"manifest-{desc.digest}", [data], desc.digest, desc.size)

    def _layers(
        self,
        repo: Repository,
        layers: tuple[Descriptor, ...],
        on_layer: Callable[[int, Descriptor], None] | None,
    ) -> int:
        cancel = threading.Event()
        throttle = Throttle(self.progress)
        futures: list[Future[bool] | None] = []
        queued = 0
        seen: set[Digest] = set()
        with ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="pull") as pool:
            try:
                for desc in layers:
                    self.protect(desc.digest)
                    if self._has(desc.digest) or desc.digest in seen:
                        self.progress(ProgressEvent("Already exists", short_id(desc.digest),
                                                    detail=True))  # fmt: skip
                        futures.append(None)
                        continue
                    seen.add(desc.digest)
                    self.progress(ProgressEvent("Pulling fs layer", short_id(desc.digest),
                                                detail=True))  # fmt: skip
                    futures.append(pool.submit(self._fetch, repo, desc, throttle, cancel))
                    queued += 1
                for desc, fut in zip(layers, futures, strict=True):
                    if fut is not None and queued > self.max_concurrent and not fut.running():
                        self.progress(ProgressEvent("Waiting", short_id(desc.digest), detail=True))
                for i, (desc, fut) in enumerate(zip(layers, futures, strict=True)):
                    if fut is not None:
                        fut.result()
                    if on_layer is not None:
                        on_layer(i, desc)
            except BaseException:
                cancel.set()
                for fut in futures:
                    if fut is not None:
                        fut.cancel()
                raise
        return sum(1 for f in futures if f is not None)

    def _fetch(
        self, repo: Repository, desc: Descriptor, throttle: Throttle, cancel: threading.Event
    ) -> bool:
        id_ = short_id(desc.digest)

        def on_progress(done: int) -> None:
            if cancel.is_set():
                raise Cancelled(f"download of {desc.digest} cancelled")
            throttle("Downloading", id_, done, desc.size)

        def on_verify() -> None:
            self.progress(ProgressEvent("Verifying Checksum", id_, detail=True))

        if cancel.is_set():
            raise Cancelled(f"download of {desc.digest} cancelled")
        fetched = repo.fetch_blob(desc, self.store, on_progress=on_progress, on_verify=on_verify)
        self.progress(ProgressEvent("Download complete", id_, detail=True))
        return fetched
