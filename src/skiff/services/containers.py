"""The container domain: records, lookup, and the lifecycle (ContainerService).

A container is a `Container` record (persisted in `<data root>/containers.db`, one
transaction per change) plus, while it runs, a shim that owns its process:

    create ──▶ created ──start──▶ running ──exit──▶ exited ──start──▶ running ...
                  │                 │  ▲ pause/unpause ⇄ paused
                  │                 └──┴─ exit + restart policy ─▶ restarting ─▶ running
                  └── rm ◀──────────────── rm -f (kills) ─────────────────── rm ◀┘

Its folder `<data root>/containers/<id>/` is the OCI bundle (config.json, rootfs: the
overlay of its snapshot, mounted while it runs), the managed files (hostname, hosts,
resolv.conf) and the shim's folder (shim.sock, exit.json, log.json).

Records keep Docker's `Config` and `HostConfig` objects as the client sent them,
merged with the image's defaults (what `inspect` shows); typed helpers read them.
Lookup follows Docker: full id, then name (with or without its "/"), then a unique
id prefix.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from skiff.containers import names
from skiff.containers.bundle import merge_config, write_config, write_files
from skiff.containers.store import ContainerStore
from skiff.errors import Conflict, InvalidArgument, NotFound, NotModified, SkiffError
from skiff.images.service import ImageService, NoSuchImage
from skiff.oci import reference as refs
from skiff.services.container_types import DEFAULT_SHM_SIZE, ContainerCreate
from skiff.services.events import Event
from skiff.services.images import Image, ImageUser
from skiff.services.system import SystemInfo
from skiff.shim import protocol as p
from skiff.shim.client import (
    AsyncShim,
    AsyncStream,
    ShimGone,
    read_exit_file,
    spawn_async,
    start_parent,
)
from skiff.shim.logreader import LogBatch, LogEntry, read_log_batches_async
from skiff.shim.protocol import SpawnRequest
from skiff.snapshots.mount import mount_all, unmount

ZERO_TIME = "0001-01-01T00:00:00Z"

CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
RESTARTING = "restarting"
REMOVING = "removing"
EXITED = "exited"
DEAD = "dead"
STATUSES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)

VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class NoSuchContainer(NotFound):
    def __init__(self, what: str) -> None:
        super().__init__(f"No such container: {what}")


@dataclass
class State:
    """Docker's State object, in Python's names (see `running`, `paused`...)."""

    status: str = CREATED
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    oom_killed: bool = False

    @property
    def running(self) -> bool:
        # Docker reports Running while paused or restarting too.
        return self.status in (RUNNING, PAUSED, RESTARTING)

    @property
    def paused(self) -> bool:
        return self.status == PAUSED

    @property
    def restarting(self) -> bool:
        return self.status == RESTARTING

    @property
    def dead(self) -> bool:
        return self.status == DEAD

    def can_start(self) -> bool:
        return self.status in (CREATED, EXITED, DEAD)


@dataclass
class RestartPolicy:
    name: str = "no"  # "no" | "always" | "unless-stopped" | "on-failure"
    maximum_retry_count: int = 0

    @classmethod
    def from_wire(cls, doc: object) -> RestartPolicy:
        if not isinstance(doc, dict):
            return cls()
        name = str(doc.get("Name") or "no")
        if name not in ("no", "always", "unless-stopped", "on-failure"):
            raise InvalidArgument(f"invalid restart policy '{name}'")
        count = int(doc.get("MaximumRetryCount") or 0)
        if count and name != "on-failure":
            raise InvalidArgument(
                f"maximum retry count cannot be used with restart policy '{name}'"
            )
        return cls(name, count)


@dataclass
class Container:
    """One container. `config`/`host_config` are Docker's wire objects (inspect's)."""

    id: str
    name: str  # without the leading "/"
    image_id: str  # "sha256:..."
    image_ref: str  # what the user asked for (Config.Image)
    created: str  # RFC 3339 with nanoseconds
    path: str
    args: list[str]
    config: dict[str, Any]
    host_config: dict[str, Any]
    dir: str  # <data root>/containers/<id>: bundle, managed files, shim folder
    snapshot_key: str
    state: State = field(default_factory=State)
    restart_count: int = 0
    manually_stopped: bool = False  # `stop` or `kill` by a user: no restart policy applies
    mounts: list[dict[str, Any]] = field(default_factory=list)  # Docker's MountPoint objects
    driver: str = "overlay2"
    # The networks it joins at start: {name: {NetworkID, Aliases, IPAMConfig}} (network hook).
    networks: dict[str, Any] = field(default_factory=dict)
    # In memory only: completed runs since the daemon started (for wait next-exit).
    exits: int = field(default=0, compare=False)

    # --- where things are

    @property
    def bundle(self) -> str:
        return self.dir

    @property
    def rootfs(self) -> str:
        return self.dir + "/rootfs"

    @property
    def shim_dir(self) -> str:
        return self.dir

    @property
    def log_path(self) -> str:
        return self.dir + "/log.json"

    @property
    def shm_dir(self) -> str:
        """The host folder at its /dev/shm when the IPC namespace is shared."""
        return self.dir + "/shm"

    @property
    def ipc_mode(self) -> str:
        return str(self.host_config.get("IpcMode") or "private")

    @property
    def shares_shm(self) -> bool:
        return self.ipc_mode == "shareable" or self.ipc_mode.startswith("container:")

    # --- typed reads of the Docker objects

    @property
    def labels(self) -> dict[str, str]:
        labels = self.config.get("Labels") or {}
        return {str(k): str(v) for k, v in labels.items()}

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    @property
    def open_stdin(self) -> bool:
        return bool(self.config.get("OpenStdin"))

    @property
    def stdin_once(self) -> bool:
        return bool(self.config.get("StdinOnce"))

    @property
    def auto_remove(self) -> bool:
        return bool(self.host_config.get("AutoRemove"))

    @property
    def restart_policy(self) -> RestartPolicy:
        return RestartPolicy.from_wire(self.host_config.get("RestartPolicy"))

    @property
    def stop_signal(self) -> str:
        return str(self.config.get("StopSignal") or "SIGTERM")

    @property
    def stop_timeout(self) -> int | None:
        value = self.config.get("StopTimeout")
        return int(value) if isinstance(value, int) else None

    @property
    def network_mode(self) -> str:
        return str(self.host_config.get("NetworkMode") or "default")

    @property
    def hostname(self) -> str:
        return str(self.config.get("Hostname") or self.id[:12])

    # --- persistence

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("exits")
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Container:
        fields = dict(doc)
        fields["state"] = State(**fields.get("state", {}))
        fields.pop("exits", None)
        return cls(**fields)


@dataclass(frozen=True)
class ContainerFilters:
    """`docker ps --filter`: each key's values are OR-ed, keys AND-ed (Docker's rule)."""

    terms: Mapping[str, builtins.list[str]] = field(default_factory=dict)

    KEYS = frozenset(
        {
            "id",
            "name",
            "label",
            "status",
            "ancestor",
            "exited",
            "before",
            "since",
            "volume",
            "network",
            "health",
            "isolation",
            "is-task",
            "publish",
            "expose",
        }
    )

    @classmethod
    def parse(cls, raw: Mapping[str, builtins.list[str]]) -> ContainerFilters:
        for key in raw:
            if key not in cls.KEYS:
                raise InvalidArgument(f"invalid filter '{key}'")
        for value in raw.get("status", []):
            if value not in STATUSES:
                raise InvalidArgument(f"invalid filter 'status={value}'")
        for value in raw.get("exited", []):
            if not value.lstrip("-").isdigit():
                raise InvalidArgument(f"invalid filter 'exited={value}'")
        return cls(dict(raw))


def find(containers: Mapping[str, Container], ref: str) -> Container:
    """Docker's lookup: full id, then name, then unique id prefix."""
    if not ref:
        raise NoSuchContainer(ref)
    found = containers.get(ref)
    if found is not None:
        return found
    name = ref.removeprefix("/")
    for c in containers.values():
        if c.name == name:
            return c
    if re.fullmatch(r"[0-9a-f]+", ref):
        matches = [c for cid, c in containers.items() if cid.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"Multiple IDs found with provided prefix: {ref}")
    raise NoSuchContainer(ref)


def matches(c: Container, filters: ContainerFilters, image_matches: Any = None) -> bool:
    """Whether `c` passes `filters` (before/since are applied by the caller on order).
    `image_matches(container, ref) -> bool` answers `ancestor`."""
    t = filters.terms
    if t.get("id") and not any(c.id.startswith(v) for v in t["id"]):
        return False
    if t.get("name") and not any(_name_match(v, c.name) for v in t["name"]):
        return False
    if t.get("status") and c.state.status not in t["status"]:
        return False
    if t.get("exited") and (c.state.status != EXITED or str(c.state.exit_code) not in t["exited"]):
        return False
    if t.get("label"):
        labels = c.labels
        for spec in t["label"]:
            key, eq, value = spec.partition("=")
            if key not in labels or (eq and labels[key] != value):
                return False
    ancestors = t.get("ancestor")
    return not (ancestors and image_matches and not any(image_matches(c, v) for v in ancestors))


def _name_match(pattern: str, name: str) -> bool:
    pattern = pattern.removeprefix("/")
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name


# --- the service ---------------------------------------------------------------------

EventSink = Callable[[Event], None]
ImageMatcher = Callable[[Container, str], bool]

STOP_TIMEOUT = 10
RESTART_BACKOFF_START = 0.1
RESTART_BACKOFF_MAX = 60.0
RESTART_RESET_AFTER = 10.0  # a run this long resets the back-off (Docker's rule)


def now_rfc3339() -> str:
    ns = time.time_ns()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{stamp}.{ns % 1_000_000_000:09d}Z"


def parse_signal(value: str | int) -> int:
    """A signal by number ("9"), name ("KILL", "SIGKILL") or in any case."""
    text = str(value).strip()
    if text.isdigit():
        num = int(text)
        if 0 < num < signal.NSIG:
            return num
        raise InvalidArgument(f"Invalid signal: {value}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {value}") from None


def _mount_point(kind: str, source: str, target: str, m: Any, name: str) -> dict[str, Any]:
    """Docker's MountPoint, as inspect shows it and the volume service counts users."""
    point: dict[str, Any] = {
        "Type": kind,
        "Source": source,
        "Destination": target,
        "Mode": m.mode,
        "RW": not m.read_only,
        "Propagation": m.propagation or ("rprivate" if kind == "bind" else ""),
    }
    if kind == "volume":
        point["Name"] = name
        point["Driver"] = "local"
    return point


class ContainerService:
    """The containers of one daemon. Runs on the event loop; blocking work (mounts,
    snapshots, files) goes to worker threads. One lock per container orders its
    lifecycle calls; `_changed` wakes every waiter after a state change."""

    def __init__(
        self,
        images: ImageService,
        data_root: str,
        exec_root: str,
        publish: EventSink | None = None,
        runtime: builtins.list[str] | None = None,
    ) -> None:
        self.images = images
        # The volume service (ensure(name) -> (volume, made now?)), set by the daemon.
        self.volumes: Any = None
        self.data_root = data_root
        self.exec_root = exec_root
        self.root = os.path.join(data_root, "containers")
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        self.store = ContainerStore(os.path.join(data_root, "containers.db"))
        self.parent_socket = os.path.join(exec_root, "shim-parent.sock")
        self._parent_pid = 0
        self.runtime_root = os.path.join(exec_root, "runtime")
        self.runtime = runtime or [sys.executable, "-m", "skiff.runtime.cli.main"]
        self._publish = publish
        self._containers: dict[str, Container] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._monitors: dict[str, asyncio.Task[None]] = {}
        # `oom` events: what each run has reported, and the tasks listening for more.
        self._oom_reported: dict[str, int] = {}
        self._oom_watchers: dict[str, asyncio.Task[None]] = {}
        # Network teardowns started when a container exited, awaited by whatever next
        # needs them done: its removal, its next start, the daemon's shutdown.
        self._teardowns: dict[str, asyncio.Task[None]] = {}
        self._restarts: dict[str, asyncio.Task[None]] = {}
        self._pending_attach: dict[str, builtins.list[_PendingAttach]] = {}
        self._changed: asyncio.Condition | None = None
        self._backoff: dict[str, float] = {}
        self._closing = False
        # Networking (skiff.services.container_network.ContainerNetworking), set by the
        # daemon; None: every container has a private netns with only loopback.
        self.network: Any = None
        for doc in self.store.load():
            c = Container.from_doc(doc)
            self._containers[c.id] = c
        images.set_in_use(self._images_in_use)

    # --- lookup (stable API for other services) -------------------------------------

    def get(self, ref: str) -> Container:
        """By full id, name (with or without "/") or unique id prefix; NoSuchContainer."""
        return find(self._containers, ref)

    def list(
        self, all: bool = False, filters: ContainerFilters | None = None
    ) -> builtins.list[Container]:
        """Newest first, as `docker ps`; only running ones unless `all`."""
        filters = filters or ContainerFilters()
        items = sorted(self._containers.values(), key=lambda c: c.created, reverse=True)
        t = filters.terms
        if t.get("before"):
            ref = self.get(t["before"][0])
            items = [c for c in items if c.created < ref.created]
        if t.get("since"):
            ref = self.get(t["since"][0])
            items = [c for c in items if c.created > ref.created]
        if not all and not t.get("status") and not t.get("exited"):
            items = [c for c in items if c.state.status in (RUNNING, PAUSED, RESTARTING)]
        return [c for c in items if matches(c, filters, self._image_matches)]

    def shim(self, c: Container) -> AsyncShim:
        """A client of the container's shim (calls raise ShimGone when it has none)."""
        return AsyncShim(c.shim_dir)

    def counts(self) -> tuple[int, int, int, int]:
        """(all, running, paused, stopped) for /info."""
        states = [c.state.status for c in self._containers.values()]
        running = sum(s in (RUNNING, RESTARTING) for s in states)
        paused = sum(s == PAUSED for s in states)
        return len(states), running, paused, len(states) - running - paused

    async def contribute_info(self, info: SystemInfo) -> None:
        (
            info.containers,
            info.containers_running,
            info.containers_paused,
            info.containers_stopped,
        ) = self.counts()

    def save(self, c: Container) -> None:
        """Persist the record (one transaction) and wake waiters."""
        if c.id in self._containers:
            self.store.put(c.to_doc())
        self._notify()

    def event(self, c: Container, action: str, **extra: str) -> None:
        if self._publish is None:
            return
        attributes = {**c.labels, "image": c.image_ref, "name": c.name, **extra}
        self._publish(Event("container", action, actor_id=c.id, attributes=attributes))

    def lock(self, c: Container) -> asyncio.Lock:
        return self._locks.setdefault(c.id, asyncio.Lock())

    def _notify(self) -> None:
        if self._changed is None:
            return
        cond = self._changed

        async def wake() -> None:
            async with cond:
                cond.notify_all()

        asyncio.get_running_loop().create_task(wake())

    def _images_in_use(self) -> builtins.list[ImageUser]:
        return [
            ImageUser(container_id=c.id, image_id=c.image_id, running=c.state.running)
            for c in list(self._containers.values())
        ]

    def _image_matches(self, c: Container, ref: str) -> bool:
        if ref in (c.image_ref, c.image_id) or c.image_id.removeprefix("sha256:").startswith(ref):
            return True
        try:
            return self.images.get(ref).id == c.image_id
        except NotFound:
            return False

    # --- daemon start and stop -------------------------------------------------------

    async def start_service(self) -> None:
        """Start (or find) the shim parent, then restore every container that was
        running: reconnect to its shim, or record how it ended and apply its policy."""
        self._changed = asyncio.Condition()
        os.makedirs(self.runtime_root, mode=0o700, exist_ok=True)
        self._parent_pid = await asyncio.to_thread(
            start_parent, self.parent_socket, None, os.path.join(self.exec_root, "shim-parent.log")
        )
        for c in list(self._containers.values()):
            if c.state.status in (RUNNING, PAUSED, RESTARTING):
                await self._restore(c)
            elif c.state.status == REMOVING:
                await self._remove(c, volumes=False)
        for c in list(self._containers.values()):
            policy = c.restart_policy.name
            wanted = policy == "always" or (policy == "unless-stopped" and c.state.status == EXITED)
            if (
                wanted
                and c.state.status in (EXITED, CREATED)
                and not c.manually_stopped
                and c.state.started_at != ZERO_TIME
                and c.id not in self._restarts
            ):
                self._schedule_restart(c, 0)

    async def _restore(self, c: Container) -> None:
        shim = self.shim(c)
        try:
            state = await shim.state()
        except ShimGone as gone:
            code = gone.exit.exit_code if gone.exit else 255
            finished = (
                gone.exit.finished_at if gone.exit and gone.exit.finished_at else now_rfc3339()
            )
            oom = gone.exit.oom_killed if gone.exit else False
            await self._exited(c, code, finished, restore=True, oom_killed=oom)
            return
        if state.status in (p.RUNNING, p.PAUSED):
            c.state.status = PAUSED if state.status == p.PAUSED else RUNNING
            c.state.pid = state.pid
            self.save(c)
            self._watch(c)
        elif state.status == p.EXITING:
            self._watch(c)
        else:
            status = read_exit_file(c.shim_dir)
            code = status.exit_code if status else (state.exit_code or 0)
            oom = status.oom_killed if status else False
            finished = state.finished_at or now_rfc3339()
            await self._exited(c, code, finished, restore=True, oom_killed=oom)

    async def close(self) -> None:
        """Daemon shutdown: stop watching; containers and their shims go on (live restore)."""
        self._closing = True
        tasks = [*self._monitors.values(), *self._oom_watchers.values(), *self._restarts.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._teardowns.values(), return_exceptions=True)
        self.store.close()
        await asyncio.to_thread(_remove_cgroup_parent)
        # The shim parent only forks new shims; running shims are in sessions of their
        # own and go on without it. Ending it here means a clean stop leaves no process
        # but the containers' (the next start makes a new one).
        if self._parent_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._parent_pid, signal.SIGTERM)
            self._parent_pid = 0

    # --- create ------------------------------------------------------------------------

    async def create(
        self,
        body: dict[str, Any],
        name: str = "",
        platform: str = "",
        create: ContainerCreate | None = None,
    ) -> Container:
        image_ref = str(body.get("Image") or "")
        if not image_ref:
            raise InvalidArgument("config cannot be empty in order to create a container")
        if name and not VALID_NAME.match(name):
            raise InvalidArgument(
                f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        if create is None:
            # The API parses the request at its edge; other callers give the wire body.
            from skiff.api.container_create import parse_create

            create = parse_create(body, name, platform)
        image = await asyncio.to_thread(self._find_image, image_ref)
        name = name.removeprefix("/") if name else self._generate_name()
        self._check_name(name)
        config, host_config, path, args = merge_config(body, image.config)
        RestartPolicy.from_wire(host_config.get("RestartPolicy"))  # validates
        if host_config.get("AutoRemove") and host_config["RestartPolicy"].get("Name") not in (
            None,
            "",
            "no",
        ):
            raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
        cid = secrets.token_hex(32)
        config["Image"] = image_ref
        config["Hostname"] = config.get("Hostname") or cid[:12]
        c = Container(
            id=cid,
            name=name,
            image_id=image.id,
            image_ref=image_ref,
            created=now_rfc3339(),
            path=path,
            args=args,
            config=config,
            host_config=host_config,
            dir=os.path.join(self.root, cid),
            snapshot_key=f"container-{cid}",
        )
        for key in ("PidMode", "IpcMode"):
            # Docker keeps the other container by id: a rename or a new container of
            # that name later does not change whose namespace is joined.
            mode = str(host_config.get(key) or "")
            if mode.startswith("container:"):
                try:
                    host_config[key] = "container:" + self.get(mode.split(":", 1)[1]).id
                except NotFound as e:
                    raise InvalidArgument(str(e)) from None
        if self.network is not None:  # network hook: the mode and networks checked, kept
            self.network.check_create(c, body)
        self._containers[cid] = c  # holds the name while the blocking work runs
        try:
            await asyncio.to_thread(self._prepare, c, image, create)
            self.store.put(c.to_doc())
        except BaseException:
            self._containers.pop(cid, None)
            await asyncio.to_thread(self._discard, c)
            raise
        self._notify()
        self.event(c, "create")
        return c

    def _find_image(self, ref: str) -> Image:
        try:
            return self.images.get(ref)
        except NotFound:
            raise NoSuchImage(_familiar(ref)) from None

    def _generate_name(self) -> str:
        taken = {c.name for c in self._containers.values()}
        for retry in range(20):
            name = names.generate(retry)
            if name not in taken:
                return name
        return names.generate(1) + secrets.token_hex(2)

    def _check_name(self, name: str, exclude: str = "") -> None:
        for other in self._containers.values():
            if other.name == name and other.id != exclude:
                raise Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other.id}". You have to remove (or rename) that container to be able '
                    "to reuse that name."
                )

    def _prepare(self, c: Container, image: Image, create: ContainerCreate) -> None:
        """Blocking: snapshot, folder, managed files, config.json."""
        parent = self.images.snapshot_parent(image)
        os.makedirs(c.rootfs, mode=0o711, exist_ok=True)
        self._prepare_layers(c, parent or None)
        files = write_files(c.dir, c.hostname, c.network_mode)
        # build_spec reads the image's /etc/passwd and makes the working directory,
        # so the container's filesystem is mounted while it runs.
        self._mount(c)
        try:
            spec = self._build_spec(c, image, files, create)
        finally:
            self._unmount(c)
        write_config(c.dir, spec)

    def _build_spec(
        self, c: Container, image: Image, files: dict[str, str], create: ContainerCreate
    ) -> dict[str, Any]:
        from skiff.containers.spec import ContainerFiles, build_spec, volume_targets

        volumes: dict[str, str] = {}
        c.mounts = []
        for m in create.host_config.mounts:
            if m.type == "bind":
                c.mounts.append(_mount_point("bind", m.source, m.target, m, ""))
        for m in volume_targets(create, image):
            if self.volumes is None:
                raise InvalidArgument("volumes are not available in this daemon")
            volume, made = self.volumes.ensure(m.source or "")
            volumes[m.target] = volume.mountpoint
            if made and not m.no_copy:
                # Docker fills a new volume with what the image has at that path.
                self.volumes.copy_up(volume, os.path.join(c.rootfs, m.target.lstrip("/")))
            c.mounts.append(_mount_point("volume", volume.mountpoint, m.target, m, volume.name))
        # The netns the network hook makes at each start, at a path known now: then a
        # start need not rewrite config.json. `container:` modes are resolved at start.
        namespaces: dict[str, str] = {}
        if self.network is not None and not c.network_mode.startswith("container:"):
            netns_path = self.network.spec_netns(c)
            if netns_path:
                namespaces["network"] = netns_path
        return build_spec(
            create,
            image,
            c.rootfs,
            ContainerFiles(
                hostname=files.get("/etc/hostname", ""),
                hosts=files.get("/etc/hosts", ""),
                resolv_conf=files.get("/etc/resolv.conf", ""),
            ),
            container_id=c.id,
            volumes=volumes,
            namespaces=namespaces,
            hostname=c.hostname,
            shm_path=c.shm_dir if c.shares_shm else "",
        )

    def _prepare_layers(self, c: Container, parent: str | None) -> None:
        """Blocking: the container's writable snapshot, on the init layer of its image."""
        snaps = self.images.snapshotter
        for attempt in (1, 2):
            init = self._init_layer(c, parent)
            try:
                snaps.prepare(c.snapshot_key, init)
                return
            except NotFound:  # swept by the collector meanwhile (no container was on it)
                if attempt == 2:
                    raise

    def _init_layer(self, c: Container, parent: str | None) -> str:
        """Blocking: the init layer (container_fs.INIT_LAYER) on `parent`, committed,
        as dockerd's "-init" layer under each container's writable one. Its content
        depends on the image alone, so the containers of an image share one, made by
        the first; the collector sweeps it once no container is on it (metadata.gc)."""
        from skiff.services.container_fs import fill_init_layer

        snaps = self.images.snapshotter
        name = init_snapshot(parent)
        with contextlib.suppress(NotFound):
            snaps.stat(name)
            return name
        work = c.snapshot_key + "-init-prep"
        target = os.path.join(c.dir, "init")
        mounts = snaps.prepare(work, parent)
        try:
            os.makedirs(target, mode=0o700, exist_ok=True)
            mount_all(mounts, target)
            try:
                fill_init_layer(target)
            finally:
                unmount(target, detach=True)
                os.rmdir(target)
            try:
                snaps.commit(name, work)
                return name
            except Conflict:  # another container of the image made it first
                pass
        except BaseException:
            with contextlib.suppress(NotFound, Conflict):
                snaps.remove(work)
            raise
        snaps.remove(work)
        return name

    def _discard(self, c: Container) -> None:
        """Blocking: undo what create made (after a failed create, or for rm)."""
        from skiff.runtime.rootfs import unmount_under

        # The rootfs, and any private mount of it (cp/export of a stopped container)
        # whose user went away mid-way: nothing mounted may outlive the folder.
        with contextlib.suppress(OSError, ValueError):
            unmount_under(c.dir)
        # The init layer under it stays for the image's next container; the
        # collector sweeps it with the image's layers once no container is on it.
        for key in (c.snapshot_key, c.snapshot_key + "-init-prep"):
            with contextlib.suppress(NotFound):
                self.images.snapshotter.remove(key)
        if os.path.isdir(c.dir):
            shutil.rmtree(c.dir, ignore_errors=True)

    # --- start ---------------------------------------------------------------------------

    async def start(self, ref: str) -> Container:
        c = self.get(ref)
        async with self.lock(c):
            if c.state.status in (RUNNING, PAUSED):
                raise NotModified(f"container {c.id} is already started")
            if c.state.status == REMOVING:
                raise Conflict("container is marked for removal and cannot be started")
            if c.state.status == RESTARTING:
                self._cancel_restart(c)
            c.manually_stopped = False
            await self._start(c)
        return c

    async def _start(self, c: Container) -> None:
        plug: asyncio.Future[None] | None = None
        try:
            # Network hook: the netns file and its path in the spec before the runtime's
            # create; the endpoints (veths, addresses, files) while it runs, awaited
            # before the process starts.
            prepared = await _all(
                asyncio.to_thread(self._mount, c),
                asyncio.to_thread(self.network.prepare, c) if self.network else _false(),
            )
            if prepared[1]:
                plug = asyncio.ensure_future(asyncio.to_thread(self.network.plug, c))
            await asyncio.to_thread(self._join_namespaces, c)
            if c.shares_shm:
                await asyncio.to_thread(self._mount_shm, c)
            shim = self.shim(c)
            with contextlib.suppress(ShimGone, SkiffError):
                await shim.shutdown()  # a stopped shim of an earlier run
            req = SpawnRequest(
                id=c.id,
                dir=c.shim_dir,
                bundle=c.bundle,
                runtime=self.runtime,
                runtime_root=self.runtime_root,
                tty=c.tty,
                stdin=c.open_stdin,
            )
            await spawn_async(self.parent_socket, req)
            size = c.host_config.get("ConsoleSize") or [0, 0]
            if c.tty and isinstance(size, list) and len(size) == 2 and size[0] and size[1]:
                # The client's terminal size, before the process can ask for it.
                with contextlib.suppress(SkiffError):
                    await shim.resize(int(size[0]), int(size[1]))
            await self._deliver_attaches(c, shim)
            if plug is not None:
                await plug
            state = await shim.start()
        except BaseException as e:
            if plug is not None:  # done before the failed start is cleaned up
                with contextlib.suppress(BaseException):
                    await plug
            await self._start_failed(c, e)
            if c.auto_remove and isinstance(e, Exception):
                # As dockerd does: `docker run --rm` waits for the removal.
                with contextlib.suppress(SkiffError, OSError):
                    await self._remove(c, volumes=True)
            raise _start_error(e) from None
        c.state = State(
            status=RUNNING,
            pid=state.pid,
            started_at=state.started_at or now_rfc3339(),
            finished_at=c.state.finished_at,
        )
        self.save(c)
        self.event(c, "start")
        self._oom_reported[c.id] = 0  # a new run: every OOM from now on is news
        self._watch(c)

    def _join_namespaces(self, c: Container) -> None:
        """Blocking: point config.json at the current namespaces of the containers that
        `container:` modes name. Docker finds them at every start, so a container made
        while the other was stopped, or kept across its restart, joins its new init.
        The network hook does this for the network namespace when there is one."""
        from skiff.containers.spec import join_namespaces

        joins = {}
        for key, kind, proc_name in (
            ("NetworkMode", "network", "net"),
            ("PidMode", "pid", "pid"),
            ("IpcMode", "ipc", "ipc"),
        ):
            mode = str(c.host_config.get(key) or "")
            if not mode.startswith("container:") or (kind == "network" and self.network):
                continue
            donor = self._namespace_donor(kind, mode.split(":", 1)[1])
            joins[kind] = f"/proc/{donor.state.pid}/ns/{proc_name}"
        if not joins:
            return
        path = os.path.join(c.bundle, "config.json")
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        if join_namespaces(spec, joins):
            write_config(c.bundle, spec)

    def _namespace_donor(self, kind: str, ref: str) -> Container:
        """The running container whose `kind` namespace is joined; dockerd's checks
        and messages (getPidContainer, getIpcContainer, getNetworkedContainer)."""
        context = {
            "pid": f"cannot join PID of a non running container: {ref}: ",
            "ipc": f"can't join IPC of container {ref}: ",
            "network": "",
        }[kind]
        try:
            donor = self.get(ref)
        except NotFound as e:
            raise (SkiffError(context + str(e)) if context else e) from None
        if not donor.state.running or not donor.state.pid:
            if kind == "network":
                raise Conflict(f"cannot join network of a non running container: {ref}")
            prefix = context if kind == "ipc" else ""
            raise Conflict(f"{prefix}container {donor.id} is not running")
        if donor.state.status == RESTARTING:
            prefix = context if kind == "ipc" else ""
            raise Conflict(
                f"{prefix}container {donor.id} is restarting, wait until the container is running"
            )
        donor_ipc = donor.ipc_mode
        # Shareable, host, or itself a joiner: what dockerd's ShmPath check lets through.
        if kind == "ipc" and donor_ipc not in ("shareable", "host") and ":" not in donor_ipc:
            raise Conflict(
                f"{context}non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
            )
        return donor

    async def _network_detach(self, c: Container) -> None:
        """Network hook: endpoints and the netns file go when the container stops."""
        await self._network_settled(c)
        if self.network is not None:
            with contextlib.suppress(SkiffError, OSError):
                await asyncio.to_thread(self.network.detach, c)

    async def _network_settled(self, c: Container) -> None:
        """Wait for the network teardown its exit started, if one still runs."""
        task = self._teardowns.get(c.id)
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
            if self._teardowns.get(c.id) is task:
                del self._teardowns[c.id]

    def _mount(self, c: Container) -> None:
        if os.path.ismount(c.rootfs):
            return
        os.makedirs(c.rootfs, mode=0o711, exist_ok=True)
        mount_all(self.images.snapshotter.mounts(c.snapshot_key), c.rootfs)

    def _unmount(self, c: Container) -> None:
        for target in (c.shm_dir, c.rootfs):
            if os.path.ismount(target):
                try:
                    unmount(target)
                except OSError:
                    unmount(target, detach=True)

    def _mount_shm(self, c: Container) -> None:
        """Blocking: the host folder bound at /dev/shm of a container whose IPC
        namespace is shared (dockerd's ShmPath): with --ipc shareable a tmpfs of
        --shm-size, made at each start; with --ipc container:X the donor's /dev/shm,
        found at each start as its namespace is."""
        from skiff.snapshots.types import Mount

        target = c.shm_dir
        if os.path.ismount(target):
            unmount(target, detach=True)  # left by a run that did not end cleanly
        os.makedirs(target, mode=0o700, exist_ok=True)
        mode = c.ipc_mode
        if mode == "shareable":
            size = int(c.host_config.get("ShmSize") or DEFAULT_SHM_SIZE)
            options = ("nosuid", "nodev", "noexec", "mode=1777", f"size={size}")
            mount_all([Mount("tmpfs", "shm", options)], target)
            return
        donor = self._namespace_donor("ipc", mode.split(":", 1)[1])
        source = "/dev/shm" if donor.ipc_mode == "host" else donor.shm_dir
        mount_all([Mount("bind", source, ("rbind",))], target)

    async def _start_failed(self, c: Container, e: BaseException) -> None:
        """Leave nothing running or mounted; record the error as Docker does."""
        shim = self.shim(c)
        with contextlib.suppress(ShimGone, SkiffError, OSError):
            await shim.kill("SIGKILL", all=True)
        with contextlib.suppress(ShimGone, SkiffError, OSError):
            await shim.shutdown()
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self._unmount, c)
        await self._network_detach(c)
        message = str(e)
        c.state.error = message
        c.state.exit_code = _start_exit_code(message)
        if c.state.status not in (EXITED, CREATED):
            c.state.status = EXITED
        self.save(c)
        for pending in self._pending_attach.pop(c.id, []):
            if not pending.future.done():
                pending.future.set_exception(Conflict(message))

    # --- exits, monitor, restart policy ----------------------------------------------------

    def _watch(self, c: Container) -> None:
        loop = asyncio.get_running_loop()
        for tasks, watch in (
            (self._monitors, self._monitor),
            (self._oom_watchers, self._watch_oom),
        ):
            old = tasks.pop(c.id, None)
            if old is not None and not old.done():
                old.cancel()
            tasks[c.id] = loop.create_task(watch(c))

    async def _watch_oom(self, c: Container) -> None:
        """Docker's `oom` event as the kernel reports an OOM, while the container runs
        (a child killed while the init goes on counts too); the shim listens."""
        shim = self.shim(c)
        try:
            if c.id not in self._oom_reported:  # restored: earlier ones are not news now
                events, stopped = await shim.oom_wait(-1)
                self._oom_reported[c.id] = events
            else:
                stopped = False
            while not stopped:
                events, stopped = await shim.oom_wait(self._oom_reported[c.id])
                self._report_ooms(c, events)
        except (ShimGone, SkiffError, OSError):
            pass
        finally:
            if self._oom_watchers.get(c.id) is asyncio.current_task():
                del self._oom_watchers[c.id]

    def _report_ooms(self, c: Container, events: int) -> None:
        reported = self._oom_reported.get(c.id, 0)
        for _ in range(events - reported):
            self.event(c, "oom")
        self._oom_reported[c.id] = max(reported, events)

    async def _monitor(self, c: Container) -> None:
        shim = self.shim(c)
        started = time.monotonic()
        while True:
            try:
                status: p.ExitStatus | None = await shim.wait()
                break
            except ShimGone as gone:
                status = gone.exit
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(0.5)  # a hiccup talking to the shim; ask again
        self._monitors.pop(c.id, None)
        if time.monotonic() - started > RESTART_RESET_AFTER:
            self._backoff.pop(c.id, None)
        if status is None:
            await self._exited(c, 255, now_rfc3339())
        else:
            finished = status.finished_at or now_rfc3339()
            await self._exited(
                c,
                status.exit_code,
                finished,
                oom_killed=status.oom_killed,
                oom_events=status.oom_events,
            )

    async def _exited(
        self,
        c: Container,
        code: int,
        finished: str,
        restore: bool = False,
        oom_killed: bool = False,
        oom_events: int = 0,
    ) -> None:
        # The run's `oom` events not reported yet, before anything awaits: the
        # listener stops here, so none is reported twice.
        watcher = self._oom_watchers.pop(c.id, None)
        if watcher is not None:
            watcher.cancel()
        reported = self._oom_reported.pop(c.id, 0)
        ooms = max(0, oom_events - reported)
        if oom_killed and not ooms and not reported:  # no listener (cgroup v2, daemon away)
            ooms = 1
        shim = self.shim(c)

        async def shutdown() -> None:
            with contextlib.suppress(ShimGone, SkiffError, OSError):
                await shim.shutdown()

        async def unmount() -> None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(self._unmount, c)

        async def network() -> None:
            # Endpoints, ports, rules and the netns file go now; deleting the host veths
            # waits for the kernel (~20 ms each), so it goes on while the exit is
            # handled, and what needs it done awaits it (_network_settled: the removal,
            # the next start, the daemon's shutdown).
            if self.network is None:
                return
            await self._network_settled(c)
            try:
                veths = await asyncio.to_thread(self.network.release, c)
            except (SkiffError, OSError):
                return
            if veths:
                self._teardowns[c.id] = asyncio.ensure_future(
                    asyncio.to_thread(self.network.delete_links, veths)
                )

        # Independent, and each mostly waits (the shim, the kernel): side by side.
        await asyncio.gather(shutdown(), unmount(), network())
        c.state = State(
            status=EXITED,
            exit_code=code,
            started_at=c.state.started_at,
            finished_at=finished,
            oom_killed=oom_killed,
        )
        c.exits += 1
        if c.id not in self._containers:
            self._notify()
            return
        self.save(c)
        for _ in range(ooms):
            # dockerd emits it when the kernel reports the kill, so before `die`.
            self.event(c, "oom")
        self.event(c, "die", exitCode=str(code))
        if self._closing:
            return
        if c.auto_remove:
            with contextlib.suppress(SkiffError):
                await self._remove(c, volumes=True)
            return
        if self._should_restart(c, code):
            delay = self._backoff.get(c.id, 0.0)
            delay = RESTART_BACKOFF_START if delay == 0 else min(delay * 2, RESTART_BACKOFF_MAX)
            self._backoff[c.id] = delay
            self._schedule_restart(c, delay)

    def _should_restart(self, c: Container, code: int) -> bool:
        if c.manually_stopped:
            return False
        policy = c.restart_policy
        if policy.name in ("always", "unless-stopped"):
            return True
        if policy.name == "on-failure" and code != 0:
            return policy.maximum_retry_count == 0 or c.restart_count < policy.maximum_retry_count
        return False

    def _schedule_restart(self, c: Container, delay: float) -> None:
        c.state.status = RESTARTING
        self.save(c)

        async def restart() -> None:
            await asyncio.sleep(delay)
            async with self.lock(c):
                if c.state.status != RESTARTING or c.id not in self._containers:
                    return
                c.restart_count += 1
                try:
                    await self._start(c)
                except (SkiffError, OSError):
                    c.state.status = EXITED
                    self.save(c)
                    return
                self.event(c, "restart")

        task = asyncio.get_running_loop().create_task(restart())
        self._restarts[c.id] = task
        task.add_done_callback(lambda _: self._restarts.pop(c.id, None))

    def _cancel_restart(self, c: Container) -> None:
        task = self._restarts.pop(c.id, None)
        if task is not None:
            task.cancel()
        if c.state.status == RESTARTING:
            c.state.status = EXITED
            self.save(c)

    async def wait_for(self, c: Container, condition: str = "not-running") -> int:
        """Docker's wait: returns the exit code once `condition` holds."""
        if condition not in ("not-running", "next-exit", "removed", ""):
            raise InvalidArgument(f"invalid condition: {condition}")
        assert self._changed is not None
        exits = c.exits
        async with self._changed:
            while True:
                if condition == "removed":
                    if c.id not in self._containers:
                        return c.state.exit_code
                elif condition == "next-exit":
                    if c.exits > exits:
                        return c.state.exit_code
                elif c.state.status not in (RUNNING, PAUSED, RESTARTING):
                    return c.state.exit_code
                await self._changed.wait()

    # --- stop, kill, restart, pause --------------------------------------------------------

    async def stop(self, ref: str, timeout: int | None = None, signal_: str = "") -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.state.status == RESTARTING:
                c.manually_stopped = True
                self._cancel_restart(c)
                self.save(c)
                self.event(c, "stop")
                return
            if c.state.status not in (RUNNING, PAUSED):
                raise NotModified(f"container {c.id} is already stopped")
            c.manually_stopped = True
            self.save(c)
            await self._stop(c, timeout, signal_)
        self.event(c, "stop")

    async def _stop(self, c: Container, timeout: int | None, signal_: str = "") -> None:
        if timeout is None:
            timeout = c.stop_timeout if c.stop_timeout is not None else STOP_TIMEOUT
        sig = parse_signal(signal_ or c.stop_signal)
        shim = self.shim(c)
        exits = c.exits
        if c.state.status == PAUSED:
            with contextlib.suppress(ShimGone, SkiffError):
                await shim.resume()
        with contextlib.suppress(ShimGone, SkiffError):
            await shim.kill(sig)
            self.event(c, "kill", signal=str(sig))
        if timeout < 0 or await self._wait_exit(c, exits, timeout):
            if timeout < 0:
                await self._wait_exit(c, exits, None)
            return
        with contextlib.suppress(ShimGone, SkiffError):
            await shim.kill(signal.SIGKILL, all=True)
            self.event(c, "kill", signal=str(int(signal.SIGKILL)))
        await self._wait_exit(c, exits, None)

    async def _wait_exit(self, c: Container, exits: int, timeout: float | None) -> bool:
        assert self._changed is not None

        async def exited() -> None:
            assert self._changed is not None
            async with self._changed:
                await self._changed.wait_for(
                    lambda: c.exits > exits or c.state.status not in (RUNNING, PAUSED)
                )

        try:
            await asyncio.wait_for(exited(), timeout)
        except TimeoutError:
            return False
        return True

    async def kill(self, ref: str, signal_: str = "SIGKILL") -> None:
        c = self.get(ref)
        sig = parse_signal(signal_ or "SIGKILL")
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            c.manually_stopped = True  # Docker: a user's kill is a manual stop for restart policies
            self.save(c)
        try:
            await self.shim(c).kill(sig, all=sig == signal.SIGKILL)
        except ShimGone:
            raise Conflict(
                f"Cannot kill container: {ref}: Container {c.id} is not running"
            ) from None
        self.event(c, "kill", signal=str(sig))

    async def restart(self, ref: str, timeout: int | None = None, signal_: str = "") -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.state.status == RESTARTING:
                self._cancel_restart(c)
            if c.state.status in (RUNNING, PAUSED):
                c.manually_stopped = True
                await self._stop(c, timeout, signal_)
            c.manually_stopped = False
            await self._start(c)
        self.event(c, "restart")

    async def pause(self, ref: str) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.state.status == PAUSED:
                raise Conflict(f"Container {c.id} is already paused")
            if c.state.status != RUNNING:
                raise Conflict(f"Container {c.id} is not running")
            await self.shim(c).pause()
            c.state.status = PAUSED
            self.save(c)
        self.event(c, "pause")

    async def unpause(self, ref: str) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.state.status != PAUSED:
                raise Conflict(f"Container {c.id} is not paused")
            await self.shim(c).resume()
            c.state.status = RUNNING
            self.save(c)
        self.event(c, "unpause")

    # --- remove, rename ----------------------------------------------------------------------

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        c = self.get(ref)
        async with self.lock(c):
            if c.state.status in (RUNNING, PAUSED, RESTARTING) and not force:
                verb = "paused" if c.state.status == PAUSED else c.state.status
                hint = (
                    "Unpause and then stop the container before attempting removal or force remove"
                    if c.state.status == PAUSED
                    else "stop the container before removing or force remove"
                )
                raise Conflict(f'cannot remove container "/{c.name}": container is {verb}: {hint}')
            if c.state.status == REMOVING:
                raise Conflict(f"removal of container {c.name} is already in progress")
            if c.state.status == RESTARTING:
                self._cancel_restart(c)
            if c.state.status in (RUNNING, PAUSED):
                c.manually_stopped = True
                await self._kill_and_wait(c)
            await self._remove(c, volumes)

    async def _kill_and_wait(self, c: Container) -> None:
        shim = self.shim(c)
        exits = c.exits
        if c.state.status == PAUSED:
            with contextlib.suppress(ShimGone, SkiffError):
                await shim.resume()
        with contextlib.suppress(ShimGone, SkiffError):
            await shim.kill(signal.SIGKILL, all=True)
            self.event(c, "kill", signal=str(int(signal.SIGKILL)))
        if not await self._wait_exit(c, exits, 20):
            await self._exited(c, 137, now_rfc3339())

    async def _remove(self, c: Container, volumes: bool) -> None:
        if c.id not in self._containers:
            return
        c.state.status = REMOVING
        self.save(c)
        for tasks in (self._monitors, self._oom_watchers):
            task = tasks.pop(c.id, None)
            if task is not None:
                task.cancel()
        self._oom_reported.pop(c.id, None)
        with contextlib.suppress(ShimGone, SkiffError, OSError):
            await self.shim(c).shutdown()
        await _all(self._network_detach(c), asyncio.to_thread(self._discard, c))
        self._containers.pop(c.id, None)
        self.store.delete(c.id)
        self._locks.pop(c.id, None)
        self._backoff.pop(c.id, None)
        self._notify()
        self.event(c, "destroy")

    async def rename(self, ref: str, new_name: str) -> None:
        c = self.get(ref)
        new_name = new_name.removeprefix("/")
        if not new_name or not VALID_NAME.match(new_name):
            raise InvalidArgument(
                f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        if new_name == c.name:
            raise InvalidArgument("Renaming a container with the same name as its current name")
        self._check_name(new_name, exclude=c.id)
        old = c.name
        c.name = new_name
        self.save(c)
        self.event(c, "rename", oldName="/" + old)

    # --- attach, resize, logs -------------------------------------------------------------------

    async def attach(
        self,
        c: Container,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
    ) -> AsyncStream:
        """A stream of the container's process. A created or exited container is
        attached once it next starts (as `docker run` attaches before start)."""
        stdin = stdin and c.open_stdin
        if c.state.status in (RUNNING, PAUSED):
            return await self.shim(c).attach(
                stdin=stdin, stdout=stdout, stderr=stderr, stdin_once=c.stdin_once
            )
        pending = _PendingAttach(stdin, stdout, stderr, c.stdin_once)
        self._pending_attach.setdefault(c.id, []).append(pending)
        try:
            return await pending.future
        finally:
            with contextlib.suppress(ValueError):
                self._pending_attach.get(c.id, []).remove(pending)

    async def _deliver_attaches(self, c: Container, shim: AsyncShim) -> None:
        for pending in self._pending_attach.pop(c.id, []):
            if pending.future.done():
                continue
            try:
                stream = await shim.attach(
                    stdin=pending.stdin,
                    stdout=pending.stdout,
                    stderr=pending.stderr,
                    stdin_once=pending.stdin_once,
                )
            except Exception as e:  # the attacher gets the error; the start goes on
                pending.future.set_exception(e)
            else:
                pending.future.set_result(stream)

    async def resize(self, c: Container, height: int, width: int) -> None:
        if c.state.status not in (RUNNING, PAUSED):
            raise Conflict(f"Container {c.id} is not running")
        await self.shim(c).resize(height, width)

    async def logs(
        self,
        c: Container,
        *,
        follow: bool = False,
        since_ns: int | None = None,
        until_ns: int | None = None,
        tail: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """log_batches, one entry at a time."""
        batches = self.log_batches(
            c, follow=follow, since_ns=since_ns, until_ns=until_ns, tail=tail
        )
        async for batch in batches:
            for entry in batch:
                yield entry

    def log_batches(
        self,
        c: Container,
        *,
        follow: bool = False,
        since_ns: int | None = None,
        until_ns: int | None = None,
        tail: int | None = None,
    ) -> AsyncIterator[LogBatch]:
        """logs in lists of entries, for a writer that sends each list at once."""
        exits = c.exits
        gone = lambda: c.exits > exits or c.state.status not in (RUNNING, PAUSED, RESTARTING)  # noqa: E731
        return read_log_batches_async(
            c.log_path,
            since_ns=since_ns,
            until_ns=until_ns,
            tail=tail,
            follow=follow,
            stopped=gone,
        )


class _PendingAttach:
    def __init__(self, stdin: bool, stdout: bool, stderr: bool, stdin_once: bool) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdin_once = stdin_once
        self.future: asyncio.Future[AsyncStream] = asyncio.get_running_loop().create_future()


def _remove_cgroup_parent() -> None:
    """The default cgroup parent, where no container (of any daemon) is left in it."""
    from skiff.cgroups import remove_empty_parent
    from skiff.containers.spec import DEFAULT_CGROUP_PARENT

    with contextlib.suppress(OSError):  # no cgroup hierarchy here: nothing to remove
        remove_empty_parent(DEFAULT_CGROUP_PARENT)


def _start_exit_code(message: str) -> int:
    # The docker CLI picks 127/126 from these words in the daemon's message.
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 128


def _start_error(e: BaseException) -> BaseException:
    if isinstance(e, NotFound | InvalidArgument | Conflict):
        return e
    message = str(e)
    if _start_exit_code(message) in (126, 127):
        return InvalidArgument(f"failed to create task for container: {message}")
    if isinstance(e, SkiffError):
        return e
    return SkiffError(f"failed to start container: {message}")


def _familiar(ref: str) -> str:
    try:
        return refs.parse_familiar(ref).familiar()
    except SkiffError:
        return ref


async def _false() -> bool:
    return False


async def _all(*aws: Awaitable[Any]) -> list[Any]:
    """Await all of `aws` side by side, then raise the first error if any (gather alone
    would raise at once and leave the others running, unseen by the caller's cleanup)."""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results


def init_snapshot(parent: str | None) -> str:
    """The committed snapshot of the init layer on `parent` (an image's top layer)."""
    from skiff.metadata.gc import INIT_PREFIX

    return INIT_PREFIX + (parent or "scratch")
