"""The container service's request types: `POST /containers/create` as typed data.

    ContainerCreate        one create request (name, platform, config, host config, networks)
    ├── ContainerConfig    what runs: image, command, env, user, tty, labels, ...  (Docker's Config)
    ├── HostConfig         how it runs: mounts, namespaces, security, restart, logs (HostConfig)
    │   ├── MountSpec      one bind / volume / tmpfs, from -v, --mount or --tmpfs, validated
    │   ├── Resources      cgroup limits (--memory, --cpus, --pids-limit, ...) and devices
    │   ├── RestartPolicy
    │   └── LogConfig
    └── EndpointConfig     one entry of NetworkingConfig.EndpointsConfig

`skiff.api.container_create.parse_create` builds these from the wire (Docker's CamelCase
JSON) and is the only place that reads it; `skiff.containers.spec.build_spec` turns one
into an OCI runtime config. Values are already validated and defaulted the way dockerd
does at create (MemorySwap = 2 x Memory, ShmSize 64 MiB, IpcMode "private", capability
names as "CAP_X"), so `docker inspect` can show them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MountType = Literal["bind", "volume", "tmpfs"]
#: Where a MountSpec came from: HostConfig.Binds (-v SRC:DST), HostConfig.Mounts (--mount),
#: HostConfig.Tmpfs (--tmpfs), Config.Volumes (-v DST) or a VOLUME of the image.
MountOrigin = Literal["binds", "mounts", "tmpfs", "volumes", "image"]

DEFAULT_SHM_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True)
class MountSpec:
    """One mount the user asked for, validated (dockerd's volume/mounts parser).

    bind:   `source` is an absolute host path; `create_source` is True for -v binds
            (dockerd makes a missing source directory), False for --mount (it must exist).
    volume: `source` is the volume name, "" for an anonymous volume; `no_copy` skips
            copying the image's files into a new volume.
    tmpfs:  `source` is ""; `tmpfs_options` are the mount data ("size=10m,mode=1777").
    """

    type: MountType
    target: str  # absolute, cleaned
    source: str = ""
    read_only: bool = False
    propagation: str = ""  # "", "rprivate", "rshared", "rslave", "private", "shared", "slave"
    non_recursive: bool = False  # bind-nonrecursive: "bind" instead of "rbind"
    no_copy: bool = False
    create_source: bool = False
    tmpfs_options: str = ""
    mode: str = ""  # the raw mode of a -v spec ("ro,z"), shown by inspect
    volume_driver: str = ""
    volume_labels: dict[str, str] = field(default_factory=dict)
    volume_driver_options: dict[str, str] = field(default_factory=dict)
    origin: MountOrigin = "binds"


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"  # "no", "always", "unless-stopped", "on-failure"
    maximum_retry_count: int = 0


@dataclass(frozen=True)
class LogConfig:
    type: str = ""  # "" = the daemon's default driver
    config: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ulimit:
    name: str  # "nofile"
    soft: int
    hard: int


@dataclass(frozen=True)
class DeviceMapping:
    path_on_host: str
    path_in_container: str
    cgroup_permissions: str = "rwm"


@dataclass(frozen=True)
class WeightDevice:
    path: str
    weight: int


@dataclass(frozen=True)
class ThrottleDevice:
    path: str
    rate: int


@dataclass(frozen=True)
class Resources:
    """HostConfig's resource fields, in bytes / CPU units as the API sends them.

    0 (or None where Docker uses a pointer) means "not set".
    """

    memory: int = 0
    memory_swap: int = 0  # -1 = unlimited; dockerd's default (2 x memory) already applied
    memory_reservation: int = 0
    memory_swappiness: int | None = None
    kernel_memory: int = 0  # accepted and ignored, as Docker 25 does
    oom_kill_disable: bool | None = None
    nano_cpus: int = 0
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_realtime_period: int = 0
    cpu_realtime_runtime: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    blkio_weight: int = 0
    blkio_weight_device: tuple[WeightDevice, ...] = ()
    blkio_device_read_bps: tuple[ThrottleDevice, ...] = ()
    blkio_device_write_bps: tuple[ThrottleDevice, ...] = ()
    blkio_device_read_iops: tuple[ThrottleDevice, ...] = ()
    blkio_device_write_iops: tuple[ThrottleDevice, ...] = ()
    cgroup_parent: str = ""
    devices: tuple[DeviceMapping, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    ulimits: tuple[Ulimit, ...] = ()


@dataclass(frozen=True)
class PortBinding:
    host_ip: str = ""
    host_port: str = ""


@dataclass(frozen=True)
class HostConfig:
    binds: tuple[str, ...] = ()  # as sent, for inspect
    mounts: tuple[MountSpec, ...] = ()  # every bind/volume/tmpfs: Binds, Mounts, Tmpfs
    tmpfs: dict[str, str] = field(default_factory=dict)  # as sent, for inspect
    network_mode: str = "default"  # "default", "bridge", "none", "host", "container:<id>", name
    port_bindings: dict[str, tuple[PortBinding, ...]] = field(default_factory=dict)
    publish_all_ports: bool = False
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    auto_remove: bool = False
    volume_driver: str = ""
    volumes_from: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()  # "CAP_X" or "ALL"
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    read_only_rootfs: bool = False
    group_add: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    ipc_mode: str = "private"  # "private", "shareable", "none", "host", "container:<id>"
    pid_mode: str = ""  # "", "host", "container:<id>"
    uts_mode: str = ""  # "", "host"
    cgroupns_mode: str = ""  # "", "private", "host" ("" = the host's default)
    userns_mode: str = ""
    shm_size: int = DEFAULT_SHM_SIZE
    sysctls: dict[str, str] = field(default_factory=dict)
    security_opt: tuple[str, ...] = ()  # as sent, for inspect
    no_new_privileges: bool = False
    seccomp_profile: str = ""  # "" = default, "unconfined", or a profile's JSON text
    apparmor_profile: str = ""
    masked_paths: tuple[str, ...] | None = None  # None = Docker's defaults
    readonly_paths: tuple[str, ...] | None = None
    init: bool | None = None
    oom_score_adj: int = 0
    runtime: str = ""
    log_config: LogConfig = field(default_factory=LogConfig)
    resources: Resources = field(default_factory=Resources)
    console_size: tuple[int, int] = (0, 0)  # height, width
    isolation: str = ""
    annotations: dict[str, str] = field(default_factory=dict)  # into the OCI spec


@dataclass(frozen=True)
class ContainerConfig:
    """Docker's container Config, before it is merged with the image's.

    `cmd` / `entrypoint`: None = not given (inherit the image's); `[""]` as entrypoint
    = reset it (`--entrypoint ""`), as dockerd reads it.
    """

    image: str
    hostname: str = ""
    domainname: str = ""
    user: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()  # anonymous volume targets (Config.Volumes)
    stop_signal: str = ""
    stop_timeout: int | None = None
    network_disabled: bool = False
    mac_address: str = ""
    healthcheck: dict[str, object] | None = None
    args_escaped: bool = False
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None


@dataclass(frozen=True)
class EndpointConfig:
    """One network of NetworkingConfig.EndpointsConfig (docker run --network N --ip ...)."""

    aliases: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    ipv4_address: str = ""
    ipv6_address: str = ""
    link_local_ips: tuple[str, ...] = ()
    mac_address: str = ""
    driver_opts: dict[str, str] = field(default_factory=dict)
    network_id: str = ""


@dataclass(frozen=True)
class ContainerCreate:
    """One `POST /containers/create?name=&platform=` request, parsed and validated."""

    config: ContainerConfig
    host_config: HostConfig = field(default_factory=HostConfig)
    networks: dict[str, EndpointConfig] = field(default_factory=dict)
    name: str = ""  # without the leading "/"; "" = let the service pick one
    platform: str = ""  # "os[/arch[/variant]]" or ""

    @property
    def image(self) -> str:
        return self.config.image
