"""Push: blobs the registry lacks, then the manifest (and the index above it, if any).

    for each layer (up to `max_concurrent` at a time), then the config:
        HEAD blobs/<digest>            200 -> "Layer already exists"
        POST uploads/?mount=&from=     201 -> "Mounted from <repo>" (a repository on the
                                              same registry known to hold the blob)
        POST uploads/ ; PUT ?digest=   monolithic, or PATCH* then PUT with `chunk_size`
    PUT manifests/<digest> for each platform manifest of an index, then
    PUT manifests/<tag or digest> for what the reference names

Layer ids in progress lines are the layer's diffID when known (as docker shows them),
else the blob digest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from skiff.content.types import read_blob
from skiff.distribution.client import MAX_MANIFEST_SIZE
from skiff.distribution.manifests import parse_index, parse_manifest
from skiff.distribution.progress import ProgressCallback, ProgressEvent, Throttle, ignore, short_id
from skiff.errors import NotFound, SkiffError
from skiff.oci import mediatypes as mt

if TYPE_CHECKING:
    from skiff.content.types import Provider
    from skiff.distribution.client import RegistryClient, Repository
    from skiff.oci.descriptor import Descriptor
    from skiff.oci.digest import Digest
    from skiff.oci.reference import Reference

DEFAULT_CONCURRENCY = 5  # dockerd's max-concurrent-uploads
MAX_MOUNT_TRIES = 3

MountSources = Callable[["Digest"], list[str]]


class Pusher:
    def __init__(
        self,
        client: RegistryClient,
        provider: Provider,
        *,
        max_concurrent: int = DEFAULT_CONCURRENCY,
        progress: ProgressCallback = ignore,
        chunk_size: int | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.max_concurrent = max(1, max_concurrent)
        self.progress = progress
        self.chunk_size = chunk_size

    def push(
        self,
        target: Reference,
        top: Descriptor,
        *,
        layer_ids: Mapping[Digest, str] | None = None,
        mount_sources: MountSources | None = None,
    ) -> Descriptor:
        """Push the manifest (or index) `top`, stored locally, as `target`; returns it."""
        repo = self.client.repository(
            target.domain, target.path, push=True, display=target.familiar_name
        )
        self.progress(ProgressEvent(f"The push refers to repository [{target.name}]"))
        data = read_blob(self.provider, top.digest, MAX_MANIFEST_SIZE)
        ids = dict(layer_ids or {})
        sources = mount_sources or (lambda digest: [])
        if mt.is_index(top.media_type):
            for entry in parse_index(data, f"index {top.digest}"):
                child = entry.descriptor
                try:
                    child_data = read_blob(self.provider, child.digest, MAX_MANIFEST_SIZE)
                except NotFound:
                    raise NotFound(
                        f"cannot push {target.familiar()}: the manifest of platform "
                        f"{entry.platform} ({child.digest}) is not stored here"
                    ) from None
                self._push_image(repo, child, child_data, ids, sources)
                repo.put_manifest(str(child.digest), child.media_type, child_data)
        elif mt.is_manifest(top.media_type):
            self._push_image(repo, top, data, ids, sources)
        else:
            raise SkiffError(f"cannot push {top.media_type!r}: not a manifest or an index")
        reference = target.tag if target.tag is not None else str(top.digest)
        if target.digest is not None:
            reference = str(target.digest)
        repo.put_manifest(reference, top.media_type, data)
        tag = target.tag or ""
        self.progress(ProgressEvent(f"{tag}: digest: {top.digest} size: {top.size}"))
        self.progress(
            ProgressEvent("", aux={"Tag": tag, "Digest": str(top.digest), "Size": top.size})
        )
        return top

    def _push_image(
        self,
        repo: Repository,
        manifest: Descriptor,
        data: bytes,
        ids: dict[Digest, str],
        sources: MountSources,
    ) -> None:
        image = parse_manifest(data, manifest.media_type, f"manifest {manifest.digest}")
        cancel = threading.Event()
        throttle = Throttle(self.progress)
        layers: list[Descriptor] = []
        for layer in image.layers:
            if layer not in layers:
                layers.append(layer)
        for layer in layers:
            self.progress(ProgressEvent("Preparing", self._id(layer, ids), detail=True))
        with ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="push") as pool:
            futures: list[Future[None]] = []
            try:
                for i, layer in enumerate(layers):
                    if i >= self.max_concurrent:
                        self.progress(ProgressEvent("Waiting", self._id(layer, ids), detail=True))
                    futures.append(
                        pool.submit(self._push_blob, repo, layer, ids, sources, throttle, cancel)
                    )
                futures.append(
                    pool.submit(self._push_blob, repo, image.config, None, sources, None, cancel)
                )
                for fut in futures:
                    fut.result()
            except BaseException:
                cancel.set()
                for fut in futures:
                    fut.cancel()
                raise

    @staticmethod
    def _id(desc: Descriptor, ids: Mapping[Digest, str]) -> str:
        return short_id(ids.get(desc.digest, desc.digest))

    def _push_blob(
        self,
        repo: Repository,
        desc: Descriptor,
        ids: dict[Digest, str] | None,
        sources: MountSources,
        throttle: Throttle | None,
        cancel: threading.Event,
    ) -> None:
        """One blob; progress lines only for layers (`ids` given)."""
        id_ = self._id(desc, ids or {})

        def say(status: str) -> None:
            if ids is not None:
                self.progress(ProgressEvent(status, id_, detail=True))

        if cancel.is_set():
            return
        if repo.blob_exists(desc.digest):
            say("Layer already exists")
            return
        location = ""
        for source in [s for s in sources(desc.digest) if s != repo.path][:MAX_MOUNT_TRIES]:
            mounted, location = repo.mount_blob(desc.digest, source)
            if mounted:
                say(f"Mounted from {source}")
                return
            if location:
                break  # the registry opened an upload instead: use it

        def on_progress(done: int) -> None:
            if cancel.is_set():
                raise SkiffError("push cancelled")
            if throttle is not None:
                throttle("Pushing", id_, done, desc.size)

        self.provider.info(desc.digest)  # NotFound before any upload starts
        repo.upload_blob(
            desc,
            lambda: self.provider.open_blob(desc.digest),
            location=location,
            chunk_size=self.chunk_size,
            on_progress=on_progress,
        )
        say("Pushed")
