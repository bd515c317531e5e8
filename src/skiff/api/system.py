"""System routes: /_ping, /version, /info, /events, /system/df.

Each handler: parse a typed query, ask the domain, write the wire form. The wire
converters (`info_to_wire`, `event_to_wire`) are plain functions beside the handlers.
"""

from __future__ import annotations

import datetime
import platform
import time
from typing import Any

from aiohttp import web

from skiff.api.app import json_response
from skiff.api.query import query_filters, query_list, query_timestamp
from skiff.api.registry import ApiRegistry, DiskUsage, Route
from skiff.api.streams import JsonStream
from skiff.errors import InvalidArgument
from skiff.services.events import Event, EventBus, EventFilter
from skiff.services.system import SystemInfo
from skiff.version import API_VERSION, MIN_API_VERSION, __version__

DF_KINDS = frozenset({"container", "image", "volume", "build-cache"})
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}


def go_arch(machine: str | None = None) -> str:
    machine = machine or platform.machine()
    return _GO_ARCH.get(machine, machine)


def _nano_to_rfc3339(nanos: int) -> str:
    stamp = datetime.datetime.fromtimestamp(nanos / 1e9, tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos % 1_000_000_000:09d}Z"


def version_to_wire(kernel: str) -> dict[str, Any]:
    details = {
        "ApiVersion": API_VERSION,
        "Arch": go_arch(),
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": "python" + platform.python_version(),
        "KernelVersion": kernel,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    }
    return {
        "Platform": {"Name": "skiff"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": details["GoVersion"],
        "Os": "linux",
        "Arch": details["Arch"],
        "KernelVersion": kernel,
        "BuildTime": "",
    }


def info_to_wire(info: SystemInfo) -> dict[str, Any]:
    return {
        "ID": info.id,
        "Containers": info.containers,
        "ContainersRunning": info.containers_running,
        "ContainersPaused": info.containers_paused,
        "ContainersStopped": info.containers_stopped,
        "Images": info.images,
        "Driver": info.driver,
        "DriverStatus": [list(pair) for pair in info.driver_status],
        "DockerRootDir": info.root_dir,
        "Plugins": {
            "Volume": info.volume_plugins,
            "Network": info.network_plugins,
            "Authorization": None,
            "Log": info.log_plugins,
        },
        "MemoryLimit": info.memory_limit,
        "SwapLimit": info.swap_limit,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": info.cpu_cfs_period,
        "CpuCfsQuota": info.cpu_cfs_quota,
        "CPUShares": info.cpu_shares,
        "CPUSet": info.cpu_set,
        "PidsLimit": info.pids_limit,
        "OomKillDisable": info.oom_kill_disable,
        "IPv4Forwarding": info.ipv4_forwarding,
        "BridgeNfIptables": False,
        "BridgeNfIp6tables": False,
        "Debug": info.debug,
        "NFd": info.n_fd,
        "NGoroutines": info.n_threads,
        "SystemTime": _nano_to_rfc3339(time.time_ns()),
        "LoggingDriver": info.logging_driver,
        "CgroupDriver": info.cgroup_driver,
        "CgroupVersion": info.cgroup_version,
        "NEventsListener": info.n_events_listeners,
        "KernelVersion": info.kernel_version,
        "OperatingSystem": info.operating_system,
        "OSVersion": info.os_version,
        "OSType": info.os_type,
        "Architecture": info.architecture,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": None,
            "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {
                "docker.io": {
                    "Name": "docker.io",
                    "Mirrors": [],
                    "Secure": True,
                    "Official": True,
                }
            },
            "Mirrors": None,
        },
        "NCPU": info.ncpu,
        "MemTotal": info.mem_total,
        "GenericResources": None,
        "HttpProxy": info.http_proxy,
        "HttpsProxy": info.https_proxy,
        "NoProxy": info.no_proxy,
        "Name": info.name,
        "Labels": info.labels,
        "ExperimentalBuild": False,
        "ServerVersion": info.server_version,
        "Runtimes": {
            name: {"path": rt.path, **({"runtimeArgs": rt.args} if rt.args else {})}
            for name, rt in info.runtimes.items()
        },
        "DefaultRuntime": info.default_runtime,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": info.live_restore,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": info.security_options,
        "DefaultAddressPools": [],
        "Warnings": info.warnings or None,
        "CDISpecDirs": [],
    }


def event_to_wire(event: Event) -> dict[str, Any]:
    wire: dict[str, Any] = {}
    if event.type in ("container", "image"):
        # Deprecated fields dockerd still sends at API 1.44; some clients read them.
        wire["status"] = event.action
        wire["id"] = event.actor_id
        if "image" in event.attributes:
            wire["from"] = event.attributes["image"]
    wire.update(
        {
            "Type": event.type,
            "Action": event.action,
            "Actor": {"ID": event.actor_id, "Attributes": dict(event.attributes)},
            "scope": event.scope,
            "time": event.time,
            "timeNano": event.time_nano,
        }
    )
    return wire


class SystemApi:
    def __init__(self, registry: ApiRegistry, events: EventBus) -> None:
        self._registry = registry
        self._events = events

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/_ping", self.ping),
            Route("HEAD", "/_ping", self.ping),
            Route("GET", "/version", self.version),
            Route("GET", "/info", self.info),
            Route("GET", "/events", self.events),
            Route("GET", "/system/df", self.disk_usage),
        ]

    async def ping(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(
            text="OK" if request.method != "HEAD" else None, content_type="text/plain"
        )
        response.headers["Cache-Control"] = "no-cache, no-store, must-revalidate"
        response.headers["Pragma"] = "no-cache"
        response.headers["Builder-Version"] = "1"
        return response

    async def version(self, request: web.Request) -> web.StreamResponse:
        return json_response(version_to_wire(platform.release()))

    async def gather_info(self) -> SystemInfo:
        info = SystemInfo()
        for provider in self._registry.info_providers:
            await provider.contribute_info(info)
        return info

    async def info(self, request: web.Request) -> web.StreamResponse:
        return json_response(info_to_wire(await self.gather_info()))

    async def events(self, request: web.Request) -> web.StreamResponse:
        since = query_timestamp(request.query, "since")
        until = query_timestamp(request.query, "until")
        if since is not None and until is not None and since > until:
            raise InvalidArgument(
                f"`since` time ({request.query['since']}) cannot be after "
                f"`until` time ({request.query['until']})"
            )
        event_filter = EventFilter.parse(query_filters(request.query))
        stream = JsonStream(request)
        async with self._events.subscribe(since, until, event_filter) as subscription:
            await stream.start()  # headers at once: the client is waiting for them
            async with stream:
                async for event in subscription:
                    await stream.send(event_to_wire(event))
        return stream.response

    async def disk_usage(self, request: web.Request) -> web.StreamResponse:
        kinds = frozenset(query_list(request.query, "type"))
        for kind in kinds - DF_KINDS:
            raise InvalidArgument(f"unknown object type: {kind}")
        usage = DiskUsage()
        for provider in self._registry.disk_usage_providers:
            await provider.contribute_disk_usage(usage, kinds)
        wanted = kinds or DF_KINDS
        return json_response(
            {
                "LayersSize": usage.layers_size,
                "Images": usage.images if "image" in wanted else None,
                "Containers": usage.containers if "container" in wanted else None,
                "Volumes": usage.volumes if "volume" in wanted else None,
                "BuildCache": usage.build_cache if "build-cache" in wanted else None,
            }
        )
