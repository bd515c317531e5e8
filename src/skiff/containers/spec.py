"""A container's OCI runtime config, as dockerd + containerd write it for the same request.

    build_spec(create, image, rootfs, files, container_id=...)  -> config.json as a dict

The pieces, in the order dockerd applies them (moby daemon/oci_linux.go):

    process    args = Entrypoint + Cmd (the request's, else the image's; [""] resets the
               entrypoint), env = PATH, HOSTNAME, TERM (with -t), then image env and the
               request's (by key), user from the rootfs's /etc/passwd and /etc/group,
               cwd = -w or the image's WorkingDir or "/", rlimits, oomScoreAdj,
               capabilities (Docker's 14, --cap-add/--cap-drop, ALL, --privileged; no
               effective/permitted set for a non-root user, as execve would do), tini
               as /sbin/docker-init with --init
    mounts     proc, /dev, devpts, sysfs (ro), cgroup (ro), mqueue, /dev/shm (--shm-size),
               then /sbin/docker-init, then the user's binds/volumes/tmpfs with
               /etc/resolv.conf, /etc/hostname, /etc/hosts and an IPC /dev/shm, sorted by depth
    linux      namespaces (--network/--ipc/--pid/--uts/--cgroupns), masked and read-only
               paths, sysctls (domainname, unprivileged ports and ping), resources,
               devices and their cgroup rules, seccomp (Docker's default policy, a custom
               profile, or none), cgroupsPath "/skiff/<id>"

Host facts (the capabilities ALL means, the architecture, cgroup version, the init
binary, host devices) come in a HostFacts, so tests can pin them. The stop signal is
not part of the spec: `stop_signal()` gives it to the service.
"""

from __future__ import annotations

import json
import os
import posixpath
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from skiff.containers import devices as host_devices_mod
from skiff.containers.devices import HostDevice
from skiff.containers.mountopts import tmpfs_mount_options
from skiff.containers.seccomp_profile import default_profile
from skiff.containers.signals import parse_signal
from skiff.containers.users import ExecUser, make_workdir, resolve_user
from skiff.errors import InvalidArgument, SkiffError
from skiff.oci.image import ImageConfig
from skiff.services.container_types import ContainerConfig, ContainerCreate, MountSpec
from skiff.services.images import Image

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_PATH",
    "ContainerFiles",
    "HostFacts",
    "build_spec",
    "container_env",
    "effective_hostname",
    "host_capabilities",
    "join_namespaces",
    "process_args",
    "stop_signal",
    "volume_targets",
]

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"
DEFAULT_CGROUP_PARENT = "/skiff"

#: Docker's default capabilities, in Docker's order.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",  # Docker >= 23 (RAPL energy counters leak)
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# The devices cgroup of an unprivileged container: nothing, then the harmless nodes
# (/dev/zero, null, urandom, random, tty, console), and never fuse unless asked.
_DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)

# Mounts a read-only rootfs leaves writable.
_WRITABLE_ON_READONLY = frozenset({"/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"})
_INIT_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/local/bin/docker-init")


@dataclass(frozen=True)
class ContainerFiles:
    """Files the service writes for the container and bind-mounts over /etc ("" = none)."""

    hostname: str = ""
    hosts: str = ""
    resolv_conf: str = ""


def host_capabilities() -> tuple[str, ...]:
    """What `--privileged` grants (a container's, and an exec's): moby's GetAllCapabilities."""
    from skiff.linux import capabilities

    known = [n for n in capabilities.NAMES if capabilities.number(n) <= capabilities.last_cap()]
    # A capability the daemon itself lacks cannot be granted; leaving it out keeps
    # --privileged working inside a restricted host, as in nested containers.
    have = set(capabilities.bounding())
    return tuple(n for n in known if n in have)


def _find_init() -> str:
    for path in _INIT_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return ""


@dataclass(frozen=True)
class HostFacts:
    """What the spec depends on besides the request; `detect()` reads this machine."""

    all_capabilities: tuple[str, ...]
    arch: str = "amd64"  # Go's naming, for seccomp
    kernel_release: str = "6.1.0"
    cgroup_v2: bool = True
    init_path: str = "/usr/bin/tini-static"
    hostname: str = "localhost"
    host_devices: Callable[[], list[HostDevice]] = field(default=list)
    device_lookup: Callable[[str, str], list[HostDevice]] = field(
        default=host_devices_mod.devices_for_mapping
    )

    @classmethod
    def detect(cls) -> HostFacts:
        from skiff.runtime.seccomp_docker import native_arch

        return cls(
            all_capabilities=host_capabilities(),
            arch=native_arch(),
            kernel_release=os.uname().release,
            cgroup_v2=os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
            init_path=_find_init(),
            hostname=socket.gethostname(),
            host_devices=host_devices_mod.host_devices,
        )


# -- what the image and the request combine into --------------------------------


def process_args(config: ContainerConfig, image: ImageConfig) -> list[str]:
    """Entrypoint + Cmd as dockerd merges them ("No command specified" if both are empty)."""
    entrypoint = list(config.entrypoint) if config.entrypoint is not None else None
    cmd = list(config.cmd) if config.cmd is not None else None
    if not entrypoint:
        if not cmd:
            cmd = list(image.cmd) if image.cmd is not None else None
        if entrypoint is None:
            entrypoint = list(image.entrypoint) if image.entrypoint is not None else None
    if entrypoint == [""]:
        entrypoint = None
    args = [*(entrypoint or []), *(cmd or [])]
    if not args:
        raise InvalidArgument("No command specified")
    return args


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def merged_env(config: ContainerConfig, image: ImageConfig) -> list[str]:
    """Config.Env after create: the request's, then the image's keys it did not set."""
    env = list(config.env)
    if not env:
        return list(image.env)
    keys = {_env_key(e) for e in env}
    return env + [e for e in image.env if _env_key(e) not in keys]


def container_env(config: ContainerConfig, image: ImageConfig, hostname: str) -> list[str]:
    """The process's environment: dockerd's defaults overridden in place, others appended;
    a bare `KEY` (no "=") removes a default."""
    env = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if config.tty:
        env.append("TERM=xterm")
    index = {_env_key(e): i for i, e in enumerate(env)}
    removed: set[int] = set()
    for entry in merged_env(config, image):
        key, eq, _ = entry.partition("=")
        if not eq:
            if key in index:
                removed.add(index[key])
            continue
        if key in index:
            env[index[key]] = entry
        else:
            env.append(entry)
    return [e for i, e in enumerate(env) if i not in removed]


def effective_hostname(create: ContainerCreate, container_id: str, host_hostname: str) -> str:
    """Config.Hostname as dockerd fills it: given, the host's with --network host, else
    the short container id (also with --uts host: only the spec's hostname goes)."""
    if create.config.hostname:
        return create.config.hostname
    if create.host_config.network_mode == "host":
        return host_hostname
    return container_id[:12]


def stop_signal(create: ContainerCreate, image: Image) -> int:
    """--stop-signal, else the image's STOPSIGNAL, else SIGTERM."""
    name = create.config.stop_signal or image.config.stop_signal
    return parse_signal(name) if name else int(signal.SIGTERM)


def volume_targets(create: ContainerCreate, image: Image) -> list[MountSpec]:
    """Every volume mount the container gets: the request's (named or anonymous) and
    the image's VOLUMEs not covered by another mount. The service makes a volume for
    each and passes their paths to build_spec as `volumes` (target -> host path)."""
    mounts = [m for m in create.host_config.mounts if m.type == "volume"]
    taken = {m.target for m in create.host_config.mounts}
    for target in image.config.volumes:
        clean = posixpath.normpath(target)
        if clean not in taken:
            taken.add(clean)
            mounts.append(MountSpec(type="volume", target=clean, origin="image"))
    return mounts


# -- capabilities --------------------------------------------------------------


def capabilities(create: ContainerCreate, all_caps: Sequence[str]) -> list[str]:
    """The bounding set: moby's TweakCapabilities."""
    hc = create.host_config
    if hc.privileged:
        return list(all_caps)
    adds, drops = hc.cap_add, hc.cap_drop
    if "ALL" in adds:
        return [c for c in all_caps if c not in drops]
    if "ALL" in drops:
        return [c for c in adds if c != "ALL"]
    caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
    return caps + [c for c in adds if c not in caps]


# -- mounts --------------------------------------------------------------------


def _mount(destination: str, kind: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": destination, "type": kind, "source": source, "options": options}


def _default_mounts() -> list[dict[str, Any]]:
    return [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        ),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["ro", "nosuid", "noexec", "nodev"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777"]),
    ]


@dataclass
class _UserMount:
    """One entry of dockerd's `ms`: a bind (or tmpfs) the container asked for."""

    destination: str
    source: str
    writable: bool = True
    propagation: str = ""
    non_recursive: bool = False
    tmpfs_data: str | None = None  # not None: a tmpfs mount with this data

    def to_spec(self) -> dict[str, Any]:
        if self.tmpfs_data is not None:
            return _mount(self.destination, "tmpfs", "tmpfs", tmpfs_mount_options(self.tmpfs_data))
        options = ["bind" if self.non_recursive else "rbind"]
        if not self.writable:
            options.append("ro")
        if self.propagation:
            options.append(self.propagation)
        return _mount(self.destination, "bind", self.source, options)


def _depth(path: str) -> int:
    return len(posixpath.normpath(path).split("/"))


def _user_mounts(
    create: ContainerCreate,
    image: Image,
    files: ContainerFiles,
    volumes: Mapping[str, str],
    shm_path: str,
) -> list[_UserMount]:
    """dockerd's `ms`: binds and volumes (by depth), the /etc files, the IPC /dev/shm,
    then tmpfs mounts (--tmpfs before --mount type=tmpfs), all sorted by depth."""
    hc = create.host_config
    binds: list[_UserMount] = []
    for m in [*hc.mounts, *(v for v in volume_targets(create, image) if v.origin == "image")]:
        if m.type == "bind":
            binds.append(
                _UserMount(m.target, m.source, not m.read_only, m.propagation, m.non_recursive)
            )
        elif m.type == "volume":
            if m.target not in volumes:
                raise ValueError(f"no volume path given for {m.target}")
            binds.append(_UserMount(m.target, volumes[m.target], not m.read_only))
    binds.sort(key=lambda u: _depth(u.destination))
    tmpfs = [
        _UserMount(m.target, "tmpfs", tmpfs_data=m.tmpfs_options)
        for m in sorted(
            (m for m in hc.mounts if m.type == "tmpfs"), key=lambda m: m.origin != "tmpfs"
        )
    ]
    taken = {u.destination for u in binds} | {u.destination for u in tmpfs}
    writable = not hc.read_only_rootfs
    network = [
        _UserMount(dest, path, writable, "rprivate")
        for dest, path in (
            ("/etc/resolv.conf", files.resolv_conf),
            ("/etc/hostname", files.hostname),
            ("/etc/hosts", files.hosts),
        )
        if path and dest not in taken
    ]
    ipc: list[_UserMount] = []
    if "/dev/shm" not in taken:
        if hc.ipc_mode == "host":
            ipc.append(_UserMount("/dev/shm", "/dev/shm", True, "rprivate"))
        elif (hc.ipc_mode == "shareable" or hc.ipc_mode.startswith("container:")) and shm_path:
            ipc.append(_UserMount("/dev/shm", shm_path, True, "rprivate"))
    ms = binds + network + ipc + tmpfs
    ms.sort(key=lambda u: _depth(u.destination))  # stable, as Go's sort is for a few mounts
    return ms


def _mounts(
    create: ContainerCreate,
    user: list[_UserMount],
    init_mount: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], str]:
    """The spec's mounts and its rootfsPropagation ("" unless a bind needs one)."""
    hc = create.host_config
    user_dests = {u.destination for u in user}
    mounts: list[dict[str, Any]] = []
    for m in _default_mounts():
        dest = m["destination"]
        if dest in user_dests:
            continue
        if dest == "/dev/shm" and hc.ipc_mode == "none":
            continue
        if "/dev" in user_dests and dest.startswith("/dev/"):
            continue
        if dest == "/dev/shm":
            m["options"].append(f"size={hc.shm_size}")
        mounts.append(m)
    if init_mount is not None:
        mounts.append(init_mount)
    propagation = ""
    for u in user:
        if u.propagation in ("shared", "rshared"):
            if propagation not in ("shared", "rshared"):
                propagation = "shared"
        elif u.propagation in ("slave", "rslave") and propagation not in (
            "shared",
            "rshared",
            "slave",
            "rslave",
        ):
            propagation = "rslave"
        mounts.append(u.to_spec())
    if hc.read_only_rootfs:
        for m in mounts:
            dest = m["destination"]
            if dest in _WRITABLE_ON_READONLY or dest in user_dests:
                continue
            if "ro" not in m["options"]:
                m["options"].append("ro")
    if hc.privileged:
        for m in mounts:
            if m["destination"] == "/sys" or m["type"] == "cgroup":
                m["options"] = [o for o in m["options"] if o != "ro"]
    return mounts, propagation


# -- namespaces ----------------------------------------------------------------


def _namespaces(
    create: ContainerCreate, joins: Mapping[str, str], cgroup_v2: bool
) -> list[dict[str, str]]:
    """mount, network, uts, pid, ipc (+ cgroup), minus the ones shared with the host;
    a `container:` mode joins the path the caller gives, or has none yet: Docker finds
    the other container's namespaces at each start (`join_namespaces`), not at create."""
    hc = create.host_config
    out: list[dict[str, str]] = [{"type": "mount"}]

    def add(kind: str, mode: str) -> None:
        if mode == "host":
            return
        ns = {"type": kind}
        if kind in joins:
            ns["path"] = joins[kind]  # e.g. a network namespace the network service made
        out.append(ns)

    add("network", hc.network_mode)
    add("uts", hc.uts_mode)
    add("pid", hc.pid_mode)
    add("ipc", hc.ipc_mode)
    cgroupns = hc.cgroupns_mode or ("private" if cgroup_v2 else "host")
    if cgroupns == "private":
        out.append({"type": "cgroup"})
    return out


def join_namespaces(spec: dict[str, Any], joins: Mapping[str, str]) -> bool:
    """Point the spec's namespaces of the kinds in `joins` ("network", "ipc", "pid")
    at the paths given (the other container's /proc/PID/ns/...), at start.
    True if the spec changed."""
    changed = False
    namespaces = spec.setdefault("linux", {}).setdefault("namespaces", [])
    for kind, path in joins.items():
        entry = next((n for n in namespaces if n.get("type") == kind), None)
        if entry is None:
            namespaces.append({"type": kind, "path": path})
        elif entry.get("path") == path:
            continue
        else:
            entry["path"] = path
        changed = True
    return changed


# -- resources -----------------------------------------------------------------


def _u64(value: int) -> int:
    return value if value >= 0 else value + (1 << 64)


def _resources(create: ContainerCreate, cgroup_devices: list[dict[str, Any]]) -> dict[str, Any]:
    r = create.host_config.resources
    memory: dict[str, Any] = {}
    if r.memory > 0:
        memory["limit"] = r.memory
    if r.memory_reservation > 0:
        memory["reservation"] = r.memory_reservation
    if r.memory_swap > 0:
        memory["swap"] = r.memory_swap
    if r.memory_swappiness is not None:
        memory["swappiness"] = r.memory_swappiness
    if r.oom_kill_disable is not None:
        memory["disableOOMKiller"] = r.oom_kill_disable
    cpu: dict[str, Any] = {"shares": r.cpu_shares}
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    if r.nano_cpus > 0:
        period = 100_000  # 100 ms, in microseconds
        cpu["period"] = period
        cpu["quota"] = r.nano_cpus * period // 10**9
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpu_realtime_period:
        cpu["realtimePeriod"] = r.cpu_realtime_period
    if r.cpu_realtime_runtime:
        cpu["realtimeRuntime"] = r.cpu_realtime_runtime
    out: dict[str, Any] = {
        "devices": cgroup_devices,
        "memory": memory,
        "cpu": cpu,
        "blockIO": {"weight": r.blkio_weight},
    }
    if r.pids_limit is not None and r.pids_limit > 0:
        out["pids"] = {"limit": r.pids_limit}
    return out


def _devices(
    create: ContainerCreate, host: HostFacts
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(linux.devices, linux.resources.devices)."""
    hc = create.host_config
    nodes: list[HostDevice] = []
    rules: list[dict[str, Any]]
    if hc.privileged:
        nodes += host.host_devices()
        rules = [{"allow": True, "access": "rwm"}]
    else:
        rules = [dict(rule) for rule in _DEFAULT_DEVICE_RULES]
    for mapping in hc.resources.devices:
        found = host.device_lookup(mapping.path_on_host, mapping.path_in_container)
        nodes += found
        if not hc.privileged:
            rules += [
                {
                    "allow": True,
                    "type": d.type,
                    "major": d.major,
                    "minor": d.minor,
                    "access": mapping.cgroup_permissions,
                }
                for d in found
            ]
    if not hc.privileged:
        for rule in hc.resources.device_cgroup_rules:
            kind, numbers, access = rule.split(" ")
            major, _, minor = numbers.partition(":")
            rules.append(
                {
                    "allow": True,
                    "type": kind,
                    "major": -1 if major == "*" else int(major),
                    "minor": -1 if minor == "*" else int(minor),
                    "access": access,
                }
            )
    return [d.to_spec() for d in nodes], rules


def _seccomp(
    create: ContainerCreate, bounding: list[str], host: HostFacts
) -> dict[str, Any] | None:
    hc = create.host_config
    if hc.privileged or hc.seccomp_profile == "unconfined":
        return None
    if hc.seccomp_profile:
        from skiff.runtime.seccomp_docker import docker_profile_to_oci

        profile = json.loads(hc.seccomp_profile)
        return docker_profile_to_oci(
            profile, bounding, host.arch, kernel_release=host.kernel_release
        )
    return default_profile(bounding, host.arch, host.kernel_release)


# -- the whole -----------------------------------------------------------------


def build_spec(
    create: ContainerCreate,
    image: Image,
    rootfs: str,
    files: ContainerFiles,
    *,
    container_id: str,
    volumes: Mapping[str, str] | None = None,
    namespaces: Mapping[str, str] | None = None,
    shm_path: str = "",
    hostname: str | None = None,
    host: HostFacts | None = None,
    cgroup_parent: str = DEFAULT_CGROUP_PARENT,
    create_workdir: bool = True,
) -> dict[str, Any]:
    """The OCI config.json for `create` over `image`, its root filesystem at `rootfs`.

    volumes     target -> host path of every volume mount (see `volume_targets`)
    namespaces  "network" / "ipc" / "pid" -> a namespace path to join (a network
                namespace made ahead); `container:` modes get theirs at start
    shm_path    the /dev/shm to bind for --ipc shareable and container:
    hostname    overrides effective_hostname() (e.g. the one of a container:<id> network)

    Reads the rootfs's /etc/passwd and /etc/group, and creates the working directory
    in it unless `create_workdir` is False. InvalidArgument for what dockerd refuses
    at start (unknown user, no command, a missing --device).
    """
    host = host or HostFacts.detect()
    hc = create.host_config
    config = create.config
    name = (
        hostname
        if hostname is not None
        else effective_hostname(create, container_id, host.hostname)
    )
    args = process_args(config, image.config)
    if hc.init:
        if not host.init_path:
            raise SkiffError('exec: "docker-init": executable file not found in $PATH')
        args = [INIT_PATH_IN_CONTAINER, "--", *args]
        init_mount: dict[str, Any] | None = _mount(
            INIT_PATH_IN_CONTAINER, "bind", host.init_path, ["bind", "ro"]
        )
    else:
        init_mount = None

    user = resolve_user(rootfs, config.user or image.config.user, hc.group_add)
    cwd = posixpath.normpath(config.working_dir or image.config.working_dir or "/")
    if not cwd.startswith("/"):
        cwd = "/" + cwd
    if create_workdir and cwd != "/":
        make_workdir(rootfs, cwd)

    bounding = capabilities(create, host.all_capabilities)
    process: dict[str, Any] = {
        "user": _user(user),
        "args": args,
        "env": container_env(config, image.config, name),
        "cwd": cwd,
        "capabilities": _capabilities(bounding, user.uid),
        "oomScoreAdj": hc.oom_score_adj,
    }
    if config.tty:
        process["terminal"] = True
        if hc.console_size != (0, 0):
            process["consoleSize"] = {"height": hc.console_size[0], "width": hc.console_size[1]}
    if hc.resources.ulimits:
        process["rlimits"] = [
            {"type": "RLIMIT_" + u.name.upper(), "hard": _u64(u.hard), "soft": _u64(u.soft)}
            for u in hc.resources.ulimits
        ]
    if hc.no_new_privileges:
        process["noNewPrivileges"] = True

    user_mounts = _user_mounts(create, image, files, volumes or {}, shm_path)
    mounts, propagation = _mounts(create, user_mounts, init_mount)
    linux_devices, cgroup_devices = _devices(create, host)

    sysctl: dict[str, str] = {}
    if hc.network_mode != "host" and not hc.network_mode.startswith("container:"):
        sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
        sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
    if config.domainname:
        sysctl["kernel.domainname"] = config.domainname
    sysctl.update(hc.sysctls)

    parent = hc.resources.cgroup_parent or cgroup_parent
    linux: dict[str, Any] = {"sysctl": sysctl} if sysctl else {}
    linux |= {
        "resources": _resources(create, cgroup_devices),
        "cgroupsPath": posixpath.join("/", parent, container_id),
        "namespaces": _namespaces(create, namespaces or {}, host.cgroup_v2),
    }
    if linux_devices:
        linux["devices"] = linux_devices
    seccomp = _seccomp(create, bounding, host)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    if not hc.privileged:
        masked = MASKED_PATHS if hc.masked_paths is None else hc.masked_paths
        readonly = READONLY_PATHS if hc.readonly_paths is None else hc.readonly_paths
        if masked:
            linux["maskedPaths"] = list(masked)
        if readonly:
            linux["readonlyPaths"] = list(readonly)
    if propagation:
        linux["rootfsPropagation"] = propagation

    root: dict[str, Any] = {"path": rootfs}
    if hc.read_only_rootfs:
        root["readonly"] = True
    spec: dict[str, Any] = {"ociVersion": OCI_VERSION, "process": process, "root": root}
    if hc.uts_mode != "host":
        spec["hostname"] = name
    spec["mounts"] = mounts
    spec["linux"] = linux
    if hc.annotations:
        spec["annotations"] = dict(hc.annotations)
    return spec


def _user(user: ExecUser) -> dict[str, Any]:
    return {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)}


def _capabilities(bounding: list[str], uid: int) -> dict[str, list[str]]:
    # A non-root process keeps no effective or permitted capabilities, as after execve.
    if uid == 0:
        return {"bounding": bounding, "effective": list(bounding), "permitted": list(bounding)}
    return {"bounding": bounding}
