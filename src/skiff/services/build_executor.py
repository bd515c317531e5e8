"""The builder's Executor over the engine: ImageService, snapshots, ContainerService.

    create(image, spec)   spec: a real container (ContainerService.create, not started)
                          no spec: an active snapshot of the image mounted at
                          <data root>/builds/<id>, for COPY/ADD/WORKDIR to write into
    run                   start + follow the json-file log + wait for the exit code
    commit                diff_layer(lowers, upper) of that snapshot -> an uncompressed
                          layer -> ImageService.commit_config(parent, config, layer)
    remove                the container (ContainerService.remove) or the snapshot, always

The builder runs in a worker thread; ContainerService lives on the event loop, so its
coroutines are handed over with run_coroutine_threadsafe (`start()` records the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from skiff.build.executor import Container, RunSpec
from skiff.errors import NotFound
from skiff.oci.digest import Digest

if TYPE_CHECKING:
    from skiff.images.service import ImageService
    from skiff.services.containers import ContainerService
    from skiff.services.distribution import DistributionService

T = TypeVar("T")
BUILD_LABEL = "com.skiff.build"


@dataclass
class _Work:
    container: Container
    snapshot_key: str = ""  # ours (no spec) ...
    service_id: str = ""  # ... or a ContainerService container's


class EngineExecutor:
    def __init__(
        self,
        images: ImageService,
        containers: ContainerService,
        data_root: str,
        distribution: DistributionService | None = None,
    ) -> None:
        self.images = images
        self.containers = containers
        self.distribution = distribution
        self.root = os.path.join(data_root, "builds")
        self.loop: asyncio.AbstractEventLoop | None = None
        self._work: dict[str, _Work] = {}
        self._lock = threading.Lock()

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._sweep)

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self.loop is not None, "EngineExecutor.start() was not awaited"
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def _sweep(self) -> None:
        """Build snapshots left by a crash mid-build: unmount and remove them."""
        from skiff.snapshots.mount import unmount

        os.makedirs(self.root, mode=0o700, exist_ok=True)
        for name in os.listdir(self.root):
            path = os.path.join(self.root, name)
            if os.path.ismount(path):
                with contextlib.suppress(OSError):
                    unmount(path, detach=True)
            with contextlib.suppress(NotFound):
                self.images.snapshotter.remove(f"build-{name}")
            shutil.rmtree(path, ignore_errors=True)

    # -- images ------------------------------------------------------------------------

    def resolve_image(self, ref: str, *, pull: bool, platform: str) -> str:
        local: str | None = None
        with contextlib.suppress(NotFound):
            local = self.images.get(ref).id
        if local is not None and not pull:
            return local
        if self.distribution is None:
            if local is not None:
                return local
            raise NotFound(f"No such image: {ref}")
        try:
            return self.distribution.pull(ref, platform=platform or None).id
        except Exception:
            if local is not None:
                return local  # --pull offline: the local copy is what there is
            raise

    def image_config(self, image_id: str) -> dict[str, Any]:
        self.images.get(image_id)  # NotFound first
        from skiff.oci.digest import Digest

        with self.images.store.open_blob(Digest.parse(image_id)) as f:
            import json

            doc: dict[str, Any] = json.loads(f.read())
        return doc

    def image_exists(self, image_id: str) -> bool:
        try:
            self.images.get(image_id)
        except NotFound:
            return False
        return True

    def tag(self, image_id: str, ref: str) -> None:
        from skiff.oci import reference as refs

        target = refs.parse_familiar(ref).with_default_tag()
        name = str(target)
        repo, _, tag = name.rpartition(":")
        self.images.tag(image_id, repo, tag)

    # -- containers --------------------------------------------------------------------

    def create(self, image_id: str, spec: RunSpec | None = None) -> Container:
        if spec is not None:
            return self._create_container(image_id, spec)
        from skiff.snapshots.mount import mount_all

        cid = secrets.token_hex(32)
        key = f"build-{cid[:12]}"
        parent = self.images.snapshot_parent(self.images.get(image_id)) if image_id else ""
        mounts = self.images.snapshotter.prepare(key, parent or None)
        rootfs = os.path.join(self.root, cid[:12])
        try:
            os.makedirs(rootfs, mode=0o755, exist_ok=True)
            mount_all(mounts, rootfs)
        except BaseException:
            self.images.snapshotter.remove(key)
            shutil.rmtree(rootfs, ignore_errors=True)
            raise
        container = Container(cid, rootfs)
        with self._lock:
            self._work[cid] = _Work(container, snapshot_key=key)
        return container

    def _create_container(self, image_id: str, spec: RunSpec) -> Container:
        body: dict[str, Any] = {
            "Image": image_id,
            "Entrypoint": [""],  # RUN ignores the image's entrypoint
            "Cmd": list(spec.argv),
            "Env": list(spec.env),
            "User": spec.user,
            "WorkingDir": spec.workdir,
            "Labels": {BUILD_LABEL: "1"},
            "AttachStdout": True,
            "AttachStderr": True,
        }
        c = self._on_loop(self.containers.create(body))
        container = Container(c.id, c.rootfs)
        with self._lock:
            self._work[c.id] = _Work(container, service_id=c.id)
        return container

    def run(self, container: Container, output: Callable[[bytes], None]) -> int:
        work = self._work[container.id]
        svc = self.containers

        async def go() -> int:
            c = svc.get(work.service_id)
            await svc.start(c.id)
            async for entry in svc.logs(c, follow=True):
                await asyncio.to_thread(output, entry.line)
            return await svc.wait_for(c, "not-running")

        return self._on_loop(go())

    def commit(self, container: Container | None, parent: str, config: Mapping[str, Any]) -> str:
        doc = dict(config)
        if container is None:
            return self.images.commit_config(parent, doc, None)
        from skiff.archive.compression import NONE
        from skiff.archive.diff import diff_layer
        from skiff.snapshots.types import lower_dirs, upper_dir

        work = self._work[container.id]
        key = work.snapshot_key or self.containers.get(work.service_id).snapshot_key
        mounts = self.images.snapshotter.mounts(key)
        if work.service_id:
            _drop_runtime_files(upper_dir(mounts))
        # The layer tar goes through a pipe straight into the content store: written
        # once, hashed while it is made.
        read_fd, write_fd = os.pipe()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                with open(write_fd, "wb", buffering=1 << 20) as out:
                    diff_layer(lower_dirs(mounts), upper_dir(mounts), out, compression=NONE)
            except BaseException as e:
                failure.append(e)

        producer = threading.Thread(target=produce, name="build-diff", daemon=True)
        producer.start()
        try:
            with open(read_fd, "rb", buffering=1 << 20) as layer:

                def adopt(diff_id: Digest) -> int | None:
                    producer.join()
                    if failure:
                        raise failure[0]
                    if work.snapshot_key:
                        return self._adopt(work, parent, diff_id)
                    return None

                image_id = self.images.commit_config(parent, doc, layer, on_layer=adopt)
        finally:
            producer.join()
        if failure:
            raise failure[0]
        return image_id

    def _adopt(self, work: _Work, parent: str, diff_id: Digest) -> int | None:
        """Our snapshot's upper folder is the new layer already unpacked: commit it under
        the layer's chain id, so the image service finds it instead of unpacking the
        layer a second time (containerd's snapshotter does the same on commit)."""
        from skiff.images.unpack import DIFF_ID_LABEL
        from skiff.snapshots.mount import unmount
        from skiff.snapshots.types import upper_dir

        parent_chain = self.images.get(parent).chain_id if parent else ""
        chain = Digest.from_bytes(f"{parent_chain} {diff_id}".encode()) if parent_chain else diff_id
        try:
            self.images.snapshotter.stat(str(chain))
            return None  # the same layer on the same parent exists: ours goes on remove
        except NotFound:
            pass
        upper = upper_dir(self.images.snapshotter.mounts(work.snapshot_key))
        size = _content_size(upper)
        if os.path.ismount(work.container.rootfs):
            unmount(work.container.rootfs)
        self.images.snapshotter.commit(str(chain), work.snapshot_key, {DIFF_ID_LABEL: str(diff_id)})
        work.snapshot_key = ""
        return size

    def remove(self, container: Container) -> None:
        with self._lock:
            work = self._work.pop(container.id, None)
        if work is None:
            return
        if work.service_id:
            self._on_loop(self.containers.remove(work.service_id, force=True))
            return
        from skiff.snapshots.mount import unmount

        if os.path.ismount(container.rootfs):
            try:
                unmount(container.rootfs)
            except OSError:
                unmount(container.rootfs, detach=True)
        if work.snapshot_key:
            with contextlib.suppress(NotFound):
                self.images.snapshotter.remove(work.snapshot_key)
        shutil.rmtree(container.rootfs, ignore_errors=True)

    def prune_image(self, image_id: str) -> int:
        """`builder prune`: remove a cached image nobody tags, uses or builds on."""
        try:
            image = self.images.get(image_id)
            if image.repo_tags:
                return -1
            size = image.size
            self.images.remove(image_id, False, False)
        except Exception:  # tagged, in use, a parent: it stays
            return -1
        return size


# What the engine put in a RUN container's root for itself: dockerd keeps these in the
# container's init layer, so they never reach a built layer.
_ENGINE_FILES = ("etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv")
_MOUNT_POINTS = ("etc", "dev", "proc", "sys")


def _drop_runtime_files(upper: str) -> None:
    from skiff.archive.apply import OVERLAY_OPAQUE_XATTR

    for rel in _ENGINE_FILES:
        path = os.path.join(upper, rel)
        if os.path.isfile(path) and not os.path.islink(path):
            os.unlink(path)
    for rel in _MOUNT_POINTS:
        path = os.path.join(upper, rel)
        if not os.path.isdir(path) or os.path.islink(path) or os.listdir(path):
            continue
        try:
            opaque = os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False)
        except OSError:
            opaque = b""
        if not opaque:
            os.rmdir(path)


def _content_size(folder: str) -> int:
    """Bytes of regular file content (each inode once): Docker's layer size."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total
