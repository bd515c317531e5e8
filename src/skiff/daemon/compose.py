"""The composition root: builds every service and plugs it into the API.

To add a service (images, containers, ...), construct it in `compose` and register it:

    images = ImageService(store, events)               # skiff.services.images
    registry.add_routes(ImagesApi(images).routes())    # skiff.api.images: its route table
    registry.add_info_provider(images)                 # fills SystemInfo.images, driver...
    registry.add_disk_usage_provider(ImagesApi(...))   # wire entries for /system/df
    daemon.on_start.append(images.start)               # async hooks, run in order
    daemon.on_stop.append(images.close)                # run in reverse order

Services publish events with `events.publish(Event("image", "tag", actor_id=..., ...))`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Interface

from skiff.api.build import BuildApi
from skiff.api.containers import ContainersApi
from skiff.api.distribution import DistributionApi
from skiff.api.images import ImagesApi
from skiff.api.networks import NetworksApi
from skiff.api.registry import ApiRegistry
from skiff.api.system import SystemApi
from skiff.build.cache import SqliteCache
from skiff.daemon.config import DaemonConfig
from skiff.distribution.credentials import DockerConfig
from skiff.images.service import ImageService
from skiff.network import ipam
from skiff.network.manager import NetworkConfig, NetworkManager
from skiff.services.build import BuildService
from skiff.services.build_executor import EngineExecutor
from skiff.services.container_network import ContainerNetworking
from skiff.services.containers import ContainerService
from skiff.services.distribution import DistributionService
from skiff.services.events import Event, EventBus
from skiff.services.system import HostInfo
from skiff.services.volumes import VolumeService
from skiff.version import __version__

Hook = Callable[[], Awaitable[None]]


@dataclass
class Daemon:
    config: DaemonConfig
    events: EventBus
    registry: ApiRegistry
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    containers: ContainerService | None = None
    volumes: VolumeService | None = None


def engine_id(data_root: str) -> str:
    """A stable id for this daemon, made once and kept in the data root (as dockerd does)."""
    path = os.path.join(data_root, "engine-id")
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = str(uuid.uuid4())
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(value + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return value


def compose(config: DaemonConfig) -> Daemon:
    os.makedirs(config.data_root, mode=0o711, exist_ok=True)
    os.makedirs(config.exec_root, mode=0o711, exist_ok=True)
    events = EventBus()
    registry = ApiRegistry()
    daemon = Daemon(config, events, registry)

    host = HostInfo(
        daemon_id=engine_id(config.data_root),
        name=socket.gethostname(),
        root_dir=config.data_root,
        exec_root=config.exec_root,
        debug=config.debug,
        server_version=__version__,
        count_listeners=lambda: events.listeners,
    )
    registry.add_info_provider(host)
    registry.add_routes(SystemApi(registry, events).routes())

    image_events = ThreadEvents(events, "image")
    daemon.on_start.append(image_events.start)
    images = ImageService.open(config.data_root, on_event=image_events)
    distribution = DistributionService(
        images,
        credentials=DockerConfig(os.path.join(config.data_root, "registry-auth.json")),
        insecure=config.insecure_registries,
        on_event=image_events,
    )
    distribution_api = DistributionApi(distribution)
    registry.add_routes(distribution_api.routes())
    images_api = ImagesApi(images, events, pull=distribution_api.pull)
    registry.add_routes(images_api.routes())
    registry.add_info_provider(images)  # image count, storage driver
    registry.add_disk_usage_provider(images_api)

    async def close_images() -> None:
        await asyncio.to_thread(images.close)

    daemon.on_stop.append(close_images)
    containers = ContainerService(
        images, config.data_root, config.exec_root, publish=events.publish
    )
    _wire_network(daemon, containers)
    registry.add_routes(ContainersApi(containers).routes())
    registry.add_info_provider(containers)
    daemon.on_start.append(containers.start_service)
    daemon.on_stop.append(containers.close)
    daemon.containers = containers
    compose_extras(daemon, images, containers)

    executor = EngineExecutor(images, containers, config.data_root, distribution)
    daemon.on_start.append(executor.start)
    build_cache = SqliteCache(os.path.join(config.data_root, "builder", "cache.db"))

    async def close_build_cache() -> None:
        build_cache.close()

    daemon.on_stop.append(close_build_cache)
    builds = BuildService(
        executor,
        build_cache,
        os.path.join(config.data_root, "tmp"),
        prune_image=executor.prune_image,
    )
    registry.add_routes(BuildApi(builds).routes())
    return daemon


def compose_extras(daemon: Daemon, images: ImageService, containers: ContainerService) -> None:
    """Volumes, exec, top, stats, cp, export, diff, commit, update, container prune."""
    from skiff.api.volumes import VolumesApi
    from skiff.services.volumes import VolumeService

    volume_events = ThreadEvents(daemon.events, "volume")
    daemon.on_start.append(volume_events.start)
    volumes = VolumeService(
        os.path.join(daemon.config.data_root, "volumes"), on_event=volume_events
    )
    daemon.volumes = volumes
    containers.volumes = volumes  # -v NAME:/path and the image's VOLUMEs
    volumes_api = VolumesApi(volumes, daemon.events)
    daemon.registry.add_routes(volumes_api.routes())
    daemon.registry.add_disk_usage_provider(volumes_api)

    def volume_users() -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for c in containers.list(all=True):
            for m in c.mounts:
                if m.get("Type") == "volume" and m.get("Name"):
                    users.setdefault(str(m["Name"]), []).append(c.id)
        return users

    volumes.set_in_use(volume_users)

    from skiff.api.container_extras import ContainerExtrasApi
    from skiff.api.execs import ExecApi
    from skiff.services.container_admin import ContainerAdmin
    from skiff.services.container_fs import ContainerFs
    from skiff.services.container_stats import StatsService
    from skiff.services.execs import ExecService

    fs = ContainerFs(containers)
    admin = ContainerAdmin(containers, fs)
    daemon.registry.add_routes(ExecApi(ExecService(containers)).routes())
    extras_api = ContainerExtrasApi(containers, fs, StatsService(containers), admin, daemon.events)
    daemon.registry.add_routes(extras_api.routes())


def network_config(config: DaemonConfig) -> NetworkConfig:
    flags = config.network
    subnet = gateway = ""
    if flags.bip:
        iface = IPv4Interface(flags.bip)
        subnet, gateway = str(iface.network), str(iface.ip)
    return NetworkConfig(
        state_dir=os.path.join(config.data_root, "network"),
        chain_prefix=flags.prefix(),
        default_bridge=flags.bridge,
        default_subnet=subnet,
        default_gateway=gateway,
        default_ip_range=flags.fixed_cidr,
        address_pools=flags.address_pools or ipam.DEFAULT_POOLS,
        mtu=flags.mtu,
        ip_forward=flags.ip_forward,
        default_network=flags.bridge not in ("none", ""),
        iptables=flags.iptables,
    )


def _wire_network(daemon: Daemon, containers: ContainerService) -> None:
    """The NetworkManager, the containers' network hook and /networks."""
    manager = NetworkManager(network_config(daemon.config))
    hook = ContainerNetworking(
        manager, daemon.config.exec_root, default_network=manager.config.default_network
    )
    containers.network = hook
    hook.containers = containers
    daemon.registry.add_routes(NetworksApi(manager, hook, containers).routes())

    async def start() -> None:
        await asyncio.to_thread(manager.restore)

    async def stop() -> None:
        await asyncio.to_thread(manager.close)

    daemon.on_start.append(start)  # before the containers' restore
    daemon.on_stop.append(stop)  # after the containers' close (reverse order)


class ThreadEvents:
    """An event hook for services that work in worker threads: the bus belongs to the
    event loop, so events are handed to it with call_soon_threadsafe."""

    def __init__(self, events: EventBus, kind: str) -> None:
        self._events = events
        self._kind = kind
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, action: str, actor_id: str, attributes: dict[str, str]) -> None:
        event = Event(
            self._kind, action, actor_id=actor_id, attributes={"name": actor_id, **attributes}
        )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            self._loop = running
            self._events.publish(event)
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self._events.publish, event)
        else:
            self._events.publish(event)  # before serving: no loop, no subscribers yet

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
