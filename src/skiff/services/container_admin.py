"""`docker update`, `docker container prune` and `docker commit`, over the core.

update: HostConfig resource fields -> OCI LinuxResources, given to
`skiff-runtime update --resources -` for a running container; the record's HostConfig
(and RestartPolicy) is updated either way, so the next start uses the new values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from typing import Any

from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError
from skiff.services.container_fs import ContainerFs
from skiff.services.core import ContainerCore, is_running

RESOURCE_KEYS = (
    "CpuShares",
    "Memory",
    "MemoryReservation",
    "MemorySwap",
    "NanoCpus",
    "CpuPeriod",
    "CpuQuota",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "BlkioWeight",
    "PidsLimit",
    "KernelMemory",
)


def linux_resources(update: dict[str, Any]) -> dict[str, Any]:
    """Docker's Resources (the set fields) -> OCI LinuxResources."""
    cpu: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    out: dict[str, Any] = {}
    if update.get("CpuShares"):
        cpu["shares"] = int(update["CpuShares"])
    if update.get("NanoCpus"):
        period = 100_000
        cpu["period"] = period
        cpu["quota"] = int(update["NanoCpus"]) * period // 1_000_000_000
    if update.get("CpuPeriod"):
        cpu["period"] = int(update["CpuPeriod"])
    if update.get("CpuQuota"):
        cpu["quota"] = int(update["CpuQuota"])
    if update.get("CpusetCpus"):
        cpu["cpus"] = str(update["CpusetCpus"])
    if update.get("CpusetMems"):
        cpu["mems"] = str(update["CpusetMems"])
    if update.get("Memory"):
        memory["limit"] = int(update["Memory"])
    if update.get("MemoryReservation"):
        memory["reservation"] = int(update["MemoryReservation"])
    if update.get("MemorySwap"):
        memory["swap"] = int(update["MemorySwap"])
    if cpu:
        out["cpu"] = cpu
    if memory:
        out["memory"] = memory
    if update.get("PidsLimit"):
        out["pids"] = {"limit": int(update["PidsLimit"])}
    if update.get("BlkioWeight"):
        out["blockIO"] = {"weight": int(update["BlkioWeight"])}
    return out


class ContainerAdmin:
    def __init__(
        self,
        core: ContainerCore,
        fs: ContainerFs,
        runtime: list[str] | None = None,
        runtime_root: str = "",
    ) -> None:
        self._core = core
        self._fs = fs
        self._runtime = runtime or list(getattr(core, "runtime", []))
        self._runtime_root = runtime_root or str(getattr(core, "runtime_root", ""))

    # --- update -----------------------------------------------------------------------

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        """Returns Docker's Warnings."""
        c = self._core.get(ref)
        policy = body.get("RestartPolicy")
        named = isinstance(policy, dict) and bool(policy.get("Name"))
        if named and c.host_config.get("AutoRemove") and policy.get("Name") != "no":  # type: ignore[union-attr]
            raise InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        fields = {k: body[k] for k in RESOURCE_KEYS if body.get(k) not in (None, 0, "")}
        if fields.get("Memory") and int(fields["Memory"]) < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        async with self._core.lock(c):
            if fields and is_running(c):
                resources = linux_resources(fields)
                if resources:
                    await self._runtime_update(c.id, resources)
            c.host_config.update(fields)
            if isinstance(policy, dict) and policy.get("Name"):
                c.host_config["RestartPolicy"] = {
                    "Name": str(policy["Name"]),
                    "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
                }
            self._core.save(c)
        self._core.event(c, "update")
        return []

    async def _runtime_update(self, container_id: str, resources: dict[str, Any]) -> None:
        if not self._runtime:
            raise Conflict("no runtime configured to update a running container")
        cmd = [*self._runtime]
        if self._runtime_root:
            cmd += ["--root", self._runtime_root]
        cmd += ["update", "--resources", "-", container_id]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(json.dumps(resources).encode())
        if proc.returncode != 0:
            message = (err or out).decode(errors="replace").strip()
            raise InvalidArgument(f"Cannot update container {container_id}: {message}")

    # --- prune ------------------------------------------------------------------------

    async def prune(self, filters: dict[str, list[str]]) -> tuple[list[str], int]:
        """Every stopped container matching `until` and `label`/`label!` is removed."""
        for key in filters:
            if key not in ("until", "label", "label!"):
                raise InvalidArgument(f"invalid filter '{key}'")
        until: float | None = None
        if filters.get("until"):
            from skiff.images.service import parse_until

            until = parse_until(filters["until"][-1])
        deleted: list[str] = []
        reclaimed = 0
        for c in self._core.list(all=True):
            if is_running(c):
                continue
            if until is not None and _created_unix(c.created) >= until:
                continue
            if not _labels_match(c.labels, filters.get("label", []), filters.get("label!", [])):
                continue
            size = await asyncio.to_thread(self._rw_size, c)
            try:
                await self._core.remove(c.id, force=False, volumes=False)
            except (Conflict, NotFound):
                continue
            deleted.append(c.id)
            reclaimed += size
        return deleted, reclaimed

    def _rw_size(self, c: Any) -> int:
        from skiff.services.volumes import dir_size
        from skiff.snapshots.types import upper_dir

        try:
            return dir_size(upper_dir(self._core.images.snapshotter.mounts(c.snapshot_key)))
        except (SkiffError, OSError, AttributeError):
            return 0

    # --- commit -----------------------------------------------------------------------

    async def commit(
        self,
        ref: str,
        repo_tag: str = "",
        comment: str = "",
        author: str = "",
        pause: bool = True,
        changes: list[str] | None = None,
        config: dict[str, Any] | None = None,
    ) -> Any:
        from skiff.images.types import parse_image_config

        c = self._core.get(ref)
        base = {k: v for k, v in c.config.items() if v is not None}
        if config:
            base.update({k: v for k, v in config.items() if v is not None})
        for key in ("Hostname", "Domainname", "Image", "AttachStdin", "AttachStdout"):
            base.pop(key, None)
        try:
            image_config = parse_image_config(base)
        except SkiffError:
            image_config = None
        paused = False
        if pause and is_running(c) and not c.state.paused:
            with contextlib.suppress(SkiffError, OSError):
                await self._core.shim(c).pause()
                paused = True
        try:
            with tempfile.TemporaryFile(dir=_tmp_dir(c)) as layer:
                await asyncio.to_thread(self._fs.diff_to, c, layer)
                layer.seek(0)
                image = await asyncio.to_thread(
                    self._core.images.commit_layer,
                    c.image_id,
                    layer,
                    config=image_config,
                    changes=changes or [],
                    author=author,
                    message=comment,
                    ref=repo_tag or None,
                    container_id=c.id,
                )
        finally:
            if paused:
                with contextlib.suppress(SkiffError, OSError):
                    await self._core.shim(c).resume()
        self._core.event(c, "commit", comment=comment)
        return image


def _tmp_dir(c: Any) -> str | None:
    return c.dir if os.path.isdir(c.dir) else None


def _created_unix(text: str) -> float:
    from skiff.images.service import _unix

    return float(_unix(text[:19] + "Z")) if len(text) >= 19 else 0.0


def _labels_match(labels: dict[str, str], want: list[str], not_want: list[str]) -> bool:
    def has(spec: str) -> bool:
        key, sep, value = spec.partition("=")
        return key in labels and (not sep or labels[key] == value)

    return all(has(s) for s in want) and not any(has(s) for s in not_want)


__all__ = ["ContainerAdmin", "linux_resources"]
