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

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from skiff.api.registry import ApiRegistry
from skiff.api.system import SystemApi
from skiff.daemon.config import DaemonConfig
from skiff.services.events import EventBus
from skiff.services.system import HostInfo
from skiff.version import __version__

Hook = Callable[[], Awaitable[None]]


@dataclass
class Daemon:
    config: DaemonConfig
    events: EventBus
    registry: ApiRegistry
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)


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

    # Image and container services plug in here (see the module docstring).
    return daemon
