"""What `/info` reports, gathered from providers the services register.

The daemon fills the host facts; each service adds its own (the container service its
counts, the image service its image count and storage driver) by implementing
`InfoProvider`. Field names are Python's; skiff.api.system turns them into Docker's JSON.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class RuntimeInfo:
    path: str
    args: list[str] = field(default_factory=list)


@dataclass
class SystemInfo:
    id: str = ""
    name: str = ""
    server_version: str = ""
    containers: int = 0
    containers_running: int = 0
    containers_paused: int = 0
    containers_stopped: int = 0
    images: int = 0
    driver: str = "overlay2"
    driver_status: list[tuple[str, str]] = field(default_factory=list)
    root_dir: str = ""
    exec_root: str = ""
    logging_driver: str = "json-file"
    cgroup_driver: str = "cgroupfs"
    cgroup_version: str = "2"
    kernel_version: str = ""
    operating_system: str = ""
    os_version: str = ""
    os_type: str = "linux"
    architecture: str = ""
    ncpu: int = 0
    mem_total: int = 0
    debug: bool = False
    n_fd: int = 0
    n_threads: int = 0
    n_events_listeners: int = 0
    memory_limit: bool = True
    swap_limit: bool = True
    pids_limit: bool = True
    cpu_cfs_period: bool = True
    cpu_cfs_quota: bool = True
    cpu_shares: bool = True
    cpu_set: bool = True
    oom_kill_disable: bool = False
    ipv4_forwarding: bool = True
    runtimes: dict[str, RuntimeInfo] = field(default_factory=dict)
    default_runtime: str = "runc"
    live_restore: bool = True
    labels: list[str] = field(default_factory=list)
    security_options: list[str] = field(default_factory=list)
    volume_plugins: list[str] = field(default_factory=lambda: ["local"])
    network_plugins: list[str] = field(default_factory=lambda: ["bridge", "host", "null"])
    log_plugins: list[str] = field(default_factory=lambda: ["json-file", "local"])
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    warnings: list[str] = field(default_factory=list)


class InfoProvider(Protocol):
    """Adds a service's facts to the `/info` answer (called once per request)."""

    async def contribute_info(self, info: SystemInfo) -> None: ...


class HostInfo:
    """The daemon's own and the host's facts: identity, directories, kernel, CPUs, memory."""

    def __init__(
        self,
        *,
        daemon_id: str,
        name: str,
        root_dir: str,
        exec_root: str,
        debug: bool,
        server_version: str,
        count_listeners: Callable[[], int] = lambda: 0,
    ) -> None:
        self._daemon_id = daemon_id
        self._name = name
        self._root_dir = root_dir
        self._exec_root = exec_root
        self._debug = debug
        self._server_version = server_version
        self._count_listeners = count_listeners

    async def contribute_info(self, info: SystemInfo) -> None:
        uname = os.uname()
        info.id = self._daemon_id
        info.name = self._name
        info.server_version = self._server_version
        info.root_dir = self._root_dir
        info.exec_root = self._exec_root
        info.debug = self._debug
        info.kernel_version = uname.release
        info.architecture = uname.machine
        info.operating_system, info.os_version = _os_release()
        info.ncpu = os.cpu_count() or 1
        info.mem_total = _mem_total()
        info.cgroup_version = "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"
        info.n_fd = _count_fds()
        info.n_threads = threading.active_count()
        info.n_events_listeners = self._count_listeners()
        info.ipv4_forwarding = _read("/proc/sys/net/ipv4/ip_forward").strip() == "1"
        info.swap_limit = info.cgroup_version == "2" or os.path.exists(
            "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"
        )
        info.http_proxy = os.environ.get("HTTP_PROXY", os.environ.get("http_proxy", ""))
        info.https_proxy = os.environ.get("HTTPS_PROXY", os.environ.get("https_proxy", ""))
        info.no_proxy = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
        if not info.runtimes:
            info.runtimes = {"runc": RuntimeInfo("skiff-runtime")}
        info.security_options = ["name=seccomp,profile=builtin"]
        if info.cgroup_version == "2":
            info.security_options.append("name=cgroupns")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _os_release() -> tuple[str, str]:
    fields: dict[str, str] = {}
    for line in _read("/etc/os-release").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value.strip().strip('"')
    return fields.get("PRETTY_NAME", "Linux"), fields.get("VERSION_ID", "")


def _mem_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _count_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0
