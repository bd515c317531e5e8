"""`POST /containers/create`: Docker's JSON body + `name`/`platform` query -> ContainerCreate.

The only reader of the wire format of a create request. It checks what dockerd checks
at create time, with dockerd's words (InvalidArgument -> 400):

    Invalid container name (a/b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed
    invalid reference format: repository name (library/BUSYBOX) must be lowercase
    invalid volume specification: '/x:rel': invalid mount config for type "bind": ...
    invalid mount config for type "bind": bind source path does not exist: /x
    Duplicate mount point: /x
    invalid restart policy: unknown policy 'sometimes'; use one of ...
    invalid CapAdd: unknown capability: "CAP_FOO"
    Conflicting options: Nano CPUs and CPU Period cannot both be set
    conflicting options: hostname and the network mode

and applies dockerd's create-time defaults (MemorySwap = 2 x Memory when only Memory
is set, ShmSize 64 MiB, IpcMode "private"), so the result is what inspect shows.
Checks that need the image or other containers (No command specified, No such
container) belong to the service.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from typing import Any, TypeVar

from skiff.containers.mountopts import merge_tmpfs_options, tmpfs_data_from_options
from skiff.containers.signals import parse_signal
from skiff.errors import InvalidArgument
from skiff.linux.capabilities import NAMES as CAPABILITY_NAMES
from skiff.oci import reference
from skiff.services.container_types import (
    DEFAULT_SHM_SIZE,
    ContainerConfig,
    ContainerCreate,
    DeviceMapping,
    EndpointConfig,
    HostConfig,
    LogConfig,
    MountSpec,
    MountType,
    PortBinding,
    Resources,
    RestartPolicy,
    ThrottleDevice,
    Ulimit,
    WeightDevice,
)

__all__ = [
    "normalize_capabilities",
    "parse_bind",
    "parse_create",
    "parse_mount",
    "parse_signal",
    "validate_name",
]

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NAME_RE = re.compile(rf"^/?{NAME_CHARS}+$")
_MIN_MEMORY = 6 * 1024 * 1024
_RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
_LOG_DRIVERS = frozenset({"", "json-file", "local", "none"})
_ULIMITS = frozenset(
    [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ]
)
_DEVICE_RULE_RE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_BIND_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_THROTTLE = "blkiodev.ThrottleDevice"

T = TypeVar("T")


def parse_create(
    body: object, name: str = "", platform: str = "", *, ncpus: int | None = None
) -> ContainerCreate:
    """The create request `body` (decoded JSON) with the query's `name` and `platform`.

    `ncpus` bounds NanoCpus (default: this machine's CPU count), as dockerd does.
    """
    if body is None or body == {}:
        raise InvalidArgument("Config cannot be empty in order to create a container")
    obj = _Obj(body, "ContainerConfigWrapper")
    if name:
        validate_name(name)
    config = _parse_config(obj)
    host = _parse_host_config(
        _Obj(obj.raw.get("HostConfig") or {}, "HostConfig"),
        config,
        ncpus if ncpus is not None else (os.cpu_count() or 1),
    )
    networks = _parse_networking(obj.raw.get("NetworkingConfig"))
    _check_network_conflicts(config, host)
    return ContainerCreate(
        config=config,
        host_config=host,
        networks=networks,
        name=name.lstrip("/"),
        platform=platform,
    )


def validate_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise InvalidArgument(f"Invalid container name ({name}), only {NAME_CHARS} are allowed")


# -- typed access to the decoded JSON ---------------------------------------


class _Obj:
    """A JSON object with typed getters; errors name the field as Go's decoder does.

    Every getter is one `checked` read: an absent or null field gives the getter's zero
    value, a field of the wrong JSON kind the decoder's "cannot unmarshal" error.
    """

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise InvalidArgument(
                f"json: cannot unmarshal {_json_kind(raw)} into Go value of type {where}"
            )
        self.raw: dict[str, Any] = raw
        self.where = where

    def _bad(self, key: str, value: object, want: str) -> InvalidArgument:
        return InvalidArgument(
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{self.where}.{key} of type {want}"
        )

    def checked(self, key: str, want: str) -> Any:
        """The value at `key` (None if absent or null), refused if it is JSON that Go's
        decoder would not put in a `want`."""
        value = self.raw.get(key)
        if value is not None and not _fits(value, want):
            raise self._bad(key, value, want)
        return value

    def text(self, key: str) -> str:
        value: str | None = self.checked(key, "string")
        return value or ""

    def flag(self, key: str) -> bool:
        return self.checked(key, "bool") is True

    def number(self, key: str) -> int:
        return int(self.checked(key, "int64") or 0)

    def texts(self, key: str) -> tuple[str, ...]:
        value: str | list[str] | None = self.checked(key, "[]string")
        if isinstance(value, str):  # Docker's StrSlice takes a bare string too
            return (value,)
        return tuple(value or ())

    def text_map(self, key: str) -> dict[str, str]:
        return dict(self.checked(key, "map[string]string") or {})

    def keys(self, key: str) -> tuple[str, ...]:
        """The keys of a `{"x": {}}` set (ExposedPorts, Volumes)."""
        return tuple(self.checked(key, "map[string]struct {}") or ())

    def obj(self, key: str, type_name: str) -> _Obj | None:
        value = self.checked(key, type_name)
        return None if value is None else _Obj(value, type_name)

    def objs(self, key: str, type_name: str) -> list[_Obj]:
        return [_Obj(v, type_name) for v in self.checked(key, "[]" + type_name) or ()]

    def each(self, key: str, type_name: str, read: Callable[[_Obj], T]) -> tuple[T, ...]:
        """Every object of the list at `key` (Devices, Ulimits, ...), as `read` makes it."""
        return tuple(read(o) for o in self.objs(key, type_name))

    # A null field and an absent one are alike: both leave dockerd's default in place.
    def opt_flag(self, key: str) -> bool | None:
        return None if self.raw.get(key) is None else self.flag(key)

    def opt_number(self, key: str) -> int | None:
        return None if self.raw.get(key) is None else self.number(key)

    def opt_texts(self, key: str) -> tuple[str, ...] | None:
        return None if self.raw.get(key) is None else self.texts(key)


def _strings(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v))


def _string_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(s, str) for s in v.values())


# The JSON (never null: `checked` reads null as absent) that Go's decoder puts in a type.
_FITS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "int64": lambda v: not isinstance(v, bool) and isinstance(v, int | float) and v == int(v),
    "[]string": _strings,  # Docker's StrSlice takes a bare string too
    "map[string]string": _string_map,
}


def _fits(value: object, go_type: str) -> bool:
    fits = _FITS.get(go_type)
    if fits is not None:
        return fits(value)
    return isinstance(value, list if go_type.startswith("[]") else dict)  # slice; struct or map


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


# -- Config -------------------------------------------------------------------


def _parse_config(obj: _Obj) -> ContainerConfig:
    image = obj.text("Image")
    _check_image(image)
    working_dir = obj.text("WorkingDir")
    if working_dir and not posixpath.isabs(working_dir):
        raise InvalidArgument(
            f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
        )
    stop_signal = obj.text("StopSignal")
    if stop_signal:
        parse_signal(stop_signal)
    stop_timeout = obj.opt_number("StopTimeout")
    healthcheck = obj.checked("Healthcheck", "container.HealthConfig")
    return ContainerConfig(
        image=image,
        hostname=obj.text("Hostname"),
        domainname=obj.text("Domainname"),
        user=obj.text("User"),
        attach_stdin=obj.flag("AttachStdin"),
        attach_stdout=obj.flag("AttachStdout"),
        attach_stderr=obj.flag("AttachStderr"),
        tty=obj.flag("Tty"),
        open_stdin=obj.flag("OpenStdin"),
        stdin_once=obj.flag("StdinOnce"),
        env=obj.texts("Env"),
        cmd=obj.opt_texts("Cmd"),
        entrypoint=obj.opt_texts("Entrypoint"),
        working_dir=working_dir,
        labels=obj.text_map("Labels"),
        exposed_ports=tuple(_normalize_port(p) for p in obj.keys("ExposedPorts")),
        volumes=obj.keys("Volumes"),
        stop_signal=stop_signal,
        stop_timeout=stop_timeout,
        network_disabled=obj.flag("NetworkDisabled"),
        mac_address=obj.text("MacAddress"),
        healthcheck=healthcheck,
        args_escaped=obj.flag("ArgsEscaped"),
        on_build=obj.texts("OnBuild"),
        shell=obj.opt_texts("Shell"),
    )


def _check_image(image: str) -> None:
    if not image:
        return  # the service answers "No such image: " as dockerd does
    if reference.is_id_like(image) or image.startswith("sha256:"):
        return
    reference.parse_normalized(image)  # raises "invalid reference format..."


def _normalize_port(port: str) -> str:
    number, _, proto = port.partition("/")
    proto = proto or "tcp"
    start, _, end = number.partition("-")
    if not start.isdigit() or (end and not end.isdigit()) or proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f'invalid port specification: "{port}"')
    return f"{number}/{proto}"


# -- HostConfig -------------------------------------------------------------------


def _parse_host_config(obj: _Obj, config: ContainerConfig, ncpus: int) -> HostConfig:
    privileged = obj.flag("Privileged")
    security_opt = obj.texts("SecurityOpt")
    no_new_privs, seccomp, apparmor = _parse_security_opt(security_opt)
    restart = _parse_restart_policy(obj.obj("RestartPolicy", "container.RestartPolicy"))
    auto_remove = obj.flag("AutoRemove")
    if auto_remove and restart.name not in ("", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    binds = obj.texts("Binds")
    tmpfs = obj.text_map("Tmpfs")
    mounts = _collect_mounts(obj, binds, tmpfs, config.volumes)
    ipc_mode = obj.text("IpcMode") or "private"
    _check_mode("IPC", ipc_mode, ("private", "shareable", "none", "host"))
    pid_mode = obj.text("PidMode")
    _check_mode("PID", pid_mode, ("", "host"))
    uts_mode = obj.text("UTSMode")
    _check_mode("UTS", uts_mode, ("", "host"), container_ok=False)
    cgroupns_mode = obj.text("CgroupnsMode")
    if cgroupns_mode not in ("", "private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {cgroupns_mode}")
    isolation = obj.text("Isolation")
    if isolation not in ("", "default"):
        raise InvalidArgument(f"Invalid isolation: \"{isolation}\" - linux only supports 'default'")
    shm_size = obj.number("ShmSize")
    if shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    oom_score_adj = obj.number("OomScoreAdj")
    if not -1000 <= oom_score_adj <= 1000:
        raise InvalidArgument(
            f"Invalid value {oom_score_adj}, range for oom score adj is [-1000, 1000]"
        )
    log = obj.obj("LogConfig", "container.LogConfig")
    log_config = (
        LogConfig(type=log.text("Type"), config=log.text_map("Config")) if log else LogConfig()
    )
    if log_config.type not in _LOG_DRIVERS:
        raise InvalidArgument(
            f'error looking up logging plugin {log_config.type}: plugin "{log_config.type}" '
            "not found"
        )
    console = obj.raw.get("ConsoleSize") or [0, 0]
    if (
        not isinstance(console, list)
        or len(console) != 2
        or not all(isinstance(v, int) and v >= 0 for v in console)
    ):
        raise obj._bad("ConsoleSize", console, "[2]uint")
    masked = obj.opt_texts("MaskedPaths")
    readonly = obj.opt_texts("ReadonlyPaths")
    return HostConfig(
        binds=binds,
        mounts=tuple(mounts),
        tmpfs=tmpfs,
        network_mode=obj.text("NetworkMode") or "default",
        port_bindings=_parse_port_bindings(obj),
        publish_all_ports=obj.flag("PublishAllPorts"),
        restart_policy=restart,
        auto_remove=auto_remove,
        volume_driver=obj.text("VolumeDriver"),
        volumes_from=obj.texts("VolumesFrom"),
        links=obj.texts("Links"),
        cap_add=normalize_capabilities(obj.texts("CapAdd"), "CapAdd"),
        cap_drop=normalize_capabilities(obj.texts("CapDrop"), "CapDrop"),
        privileged=privileged,
        read_only_rootfs=obj.flag("ReadonlyRootfs"),
        group_add=obj.texts("GroupAdd"),
        dns=obj.texts("Dns"),
        dns_options=obj.texts("DnsOptions"),
        dns_search=obj.texts("DnsSearch"),
        extra_hosts=obj.texts("ExtraHosts"),
        ipc_mode=ipc_mode,
        pid_mode=pid_mode,
        uts_mode=uts_mode,
        cgroupns_mode=cgroupns_mode,
        userns_mode=obj.text("UsernsMode"),
        shm_size=shm_size or DEFAULT_SHM_SIZE,
        sysctls=obj.text_map("Sysctls"),
        security_opt=security_opt,
        no_new_privileges=no_new_privs,
        seccomp_profile=seccomp,
        apparmor_profile=apparmor,
        masked_paths=masked,
        readonly_paths=readonly,
        init=obj.opt_flag("Init"),
        oom_score_adj=oom_score_adj,
        runtime=obj.text("Runtime"),
        log_config=log_config,
        resources=_parse_resources(obj, ncpus),
        console_size=(console[0], console[1]),
        isolation=isolation,
        annotations=obj.text_map("Annotations"),
    )


def _check_mode(kind: str, mode: str, plain: tuple[str, ...], container_ok: bool = True) -> None:
    if mode in plain:
        return
    if container_ok and mode.startswith("container:") and mode != "container:":
        return
    raise InvalidArgument(f"invalid {kind} mode: {mode}")


def _parse_restart_policy(obj: _Obj | None) -> RestartPolicy:
    if obj is None:
        return RestartPolicy()
    name = obj.text("Name")
    count = obj.number("MaximumRetryCount")
    if name in ("", "no", "always", "unless-stopped"):
        if count != 0:
            message = (
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            )
            if count < 0:
                message += " and cannot be negative"
            raise InvalidArgument(message)
        return RestartPolicy(name or "no", 0)
    if name == "on-failure":
        if count < 0:
            raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
        return RestartPolicy(name, count)
    raise InvalidArgument(
        f"invalid restart policy: unknown policy '{name}'; use one of "
        + ", ".join(f"'{p}'" for p in _RESTART_POLICIES[:-1])
        + f", or '{_RESTART_POLICIES[-1]}'"
    )


def _parse_security_opt(options: tuple[str, ...]) -> tuple[bool, str, str]:
    """(no_new_privileges, seccomp profile, apparmor profile), as moby's parseSecurityOpt."""
    no_new_privs, seccomp, apparmor = False, "", ""
    for opt in options:
        if opt == "no-new-privileges":
            no_new_privs = True
            continue
        if opt == "disable":
            continue
        if "=" in opt:
            key, _, value = opt.partition("=")
        elif ":" in opt:
            key, _, value = opt.partition(":")
        else:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        if key == "label":
            continue  # no SELinux here
        if key == "apparmor":
            apparmor = value
        elif key == "seccomp":
            seccomp = "" if value == "builtin" else value
        elif key == "no-new-privileges":
            lowered = value.lower()
            if lowered in ("1", "t", "true"):
                no_new_privs = True
            elif lowered in ("0", "f", "false"):
                no_new_privs = False
            else:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    if seccomp and seccomp != "unconfined":
        import json

        try:
            profile = json.loads(seccomp)
        except ValueError as e:
            raise InvalidArgument(f"Decoding seccomp profile failed: {e}") from None
        if not isinstance(profile, dict):
            raise InvalidArgument(
                "Decoding seccomp profile failed: json: cannot unmarshal "
                f"{_json_kind(profile)} into Go value of type seccomp.Seccomp"
            )
    return no_new_privs, seccomp, apparmor


def normalize_capabilities(names: tuple[str, ...], field: str) -> tuple[str, ...]:
    """["net_admin", "CAP_SYS_ADMIN", "all"] -> ("CAP_NET_ADMIN", "CAP_SYS_ADMIN", "ALL")."""
    out: list[str] = []
    for raw in names:
        upper = raw.strip().upper()
        if upper == "ALL":
            name = "ALL"
        else:
            name = upper if upper.startswith("CAP_") else "CAP_" + upper
            if name not in CAPABILITY_NAMES:
                raise InvalidArgument(f'invalid {field}: unknown capability: "{name}"')
        if name not in out:
            out.append(name)
    return tuple(out)


def _parse_port_bindings(obj: _Obj) -> dict[str, tuple[PortBinding, ...]]:
    raw = obj.checked("PortBindings", "nat.PortMap") or {}
    out: dict[str, tuple[PortBinding, ...]] = {}
    for port, bindings in raw.items():
        items = []
        for b in bindings or []:
            one = _Obj(b, "nat.PortBinding")
            items.append(PortBinding(host_ip=one.text("HostIp"), host_port=one.text("HostPort")))
        out[_normalize_port(port)] = tuple(items)
    return out


# -- mounts -------------------------------------------------------------------


def _clean(path: str) -> str:
    return posixpath.normpath(path) if path else path


def _invalid_mount(kind: str, reason: str) -> InvalidArgument:
    return InvalidArgument(f'invalid mount config for type "{kind}": {reason}')


def _check_target(kind: str, target: str) -> None:
    if not target:
        raise _invalid_mount(kind, "field Target must not be empty")
    if _clean(target) == "/":
        raise _invalid_mount(kind, "invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise _invalid_mount(kind, f"invalid mount path: '{target}' mount path must be absolute")


def _valid_mode(mode: str) -> bool:
    if not mode:
        return True
    counts = {"rw": 0, "label": 0, "propagation": 0, "copy": 0, "consistency": 0}
    for option in mode.split(","):
        if option in ("rw", "ro"):
            counts["rw"] += 1
        elif option in ("z", "Z"):
            counts["label"] += 1
        elif option in _BIND_PROPAGATIONS:
            counts["propagation"] += 1
        elif option == "nocopy":
            counts["copy"] += 1
        elif option in ("consistent", "cached", "delegated"):
            counts["consistency"] += 1
        else:
            return False
    return all(n <= 1 for n in counts.values())


def parse_bind(raw: str) -> MountSpec:
    """One `-v` entry of HostConfig.Binds: "src:dst[:mode]" (src a path or a volume name)."""
    invalid = f"invalid volume specification: '{raw}'"
    parts = raw.split(":", 2)
    if raw.count(":") > 2 or not parts[0]:
        raise InvalidArgument(invalid)
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):
            raise InvalidArgument(invalid)  # "/foo:rw": a volume can't have a mode alone
        source, target = parts
    else:
        source, target, mode = parts
    if not _valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    options = mode.split(",") if mode else []
    kind: MountType = "bind" if source.startswith("/") else "volume"
    propagation = next((o for o in options if o in _BIND_PROPAGATIONS), "")
    try:
        _check_target(kind, target)
        if kind == "bind":
            if "nocopy" in options:
                raise _invalid_mount(kind, "field VolumeOptions must not be specified")
        else:
            if propagation:
                raise _invalid_mount(kind, "field BindOptions must not be specified")
            if "ro" in options and not source:
                raise _invalid_mount(
                    kind, "must not set ReadOnly mode when using anonymous volumes"
                )
    except InvalidArgument as e:
        raise InvalidArgument(f"{invalid}: {e}") from None
    return MountSpec(
        type=kind,
        target=_clean(target),
        source=_clean(source) if kind == "bind" else source,
        read_only="ro" in options,
        propagation=(propagation or "rprivate") if kind == "bind" else "",
        no_copy="nocopy" in options,
        create_source=kind == "bind",
        mode=mode,
        origin="binds",
    )


def parse_mount(obj: _Obj) -> MountSpec:
    """One HostConfig.Mounts entry (`--mount type=...`)."""
    kind = obj.text("Type")
    target = obj.text("Target")
    source = obj.text("Source")
    read_only = obj.flag("ReadOnly")
    bind_opts = obj.obj("BindOptions", "mount.BindOptions")
    volume_opts = obj.obj("VolumeOptions", "mount.VolumeOptions")
    tmpfs_opts = obj.obj("TmpfsOptions", "mount.TmpfsOptions")
    if kind not in ("bind", "volume", "tmpfs"):
        raise _invalid_mount(kind, "mount type unknown")
    _check_target(kind, target)
    if kind == "bind":
        if not source:
            raise _invalid_mount(kind, "field Source must not be empty")
        propagation = bind_opts.text("Propagation") if bind_opts else ""
        if propagation and propagation not in _BIND_PROPAGATIONS:
            raise _invalid_mount(kind, f"invalid propagation mode: {propagation}")
        if volume_opts is not None:
            raise _invalid_mount(kind, "field VolumeOptions must not be specified")
        if tmpfs_opts is not None:
            raise _invalid_mount(kind, "field TmpfsOptions must not be specified")
        if not source.startswith("/"):
            raise _invalid_mount(
                kind, f"invalid mount path: '{source}' mount path must be absolute"
            )
        create = bool(bind_opts and bind_opts.flag("CreateMountpoint"))
        if not create and not os.path.exists(source):
            raise _invalid_mount(kind, f"bind source path does not exist: {source}")
        return MountSpec(
            type="bind",
            target=_clean(target),
            source=_clean(source),
            read_only=read_only,
            propagation=propagation or "rprivate",
            non_recursive=bool(bind_opts and bind_opts.flag("NonRecursive")),
            create_source=create,
            origin="mounts",
        )
    if kind == "volume":
        if bind_opts is not None:
            raise _invalid_mount(kind, "field BindOptions must not be specified")
        if tmpfs_opts is not None:
            raise _invalid_mount(kind, "field TmpfsOptions must not be specified")
        if read_only and not source:
            raise _invalid_mount(kind, "must not set ReadOnly mode when using anonymous volumes")
        driver = volume_opts.obj("DriverConfig", "mount.Driver") if volume_opts else None
        return MountSpec(
            type="volume",
            target=_clean(target),
            source=source,
            read_only=read_only,
            no_copy=bool(volume_opts and volume_opts.flag("NoCopy")),
            volume_driver=driver.text("Name") if driver else "",
            volume_labels=volume_opts.text_map("Labels") if volume_opts else {},
            volume_driver_options=driver.text_map("Options") if driver else {},
            origin="mounts",
        )
    if bind_opts is not None:
        raise _invalid_mount(kind, "field BindOptions must not be specified")
    if volume_opts is not None:
        raise _invalid_mount(kind, "field VolumeOptions must not be specified")
    if source:
        raise _invalid_mount(kind, "field Source must not be specified")
    size = tmpfs_opts.number("SizeBytes") if tmpfs_opts else 0
    mode = tmpfs_opts.number("Mode") if tmpfs_opts else 0
    if size < 0:
        raise _invalid_mount(kind, f"invalid tmpfs size: {size}")
    return MountSpec(
        type="tmpfs",
        target=_clean(target),
        read_only=read_only,
        tmpfs_options=tmpfs_data_from_options(size, mode, read_only),
        origin="mounts",
    )


def _collect_mounts(
    obj: _Obj, binds: tuple[str, ...], tmpfs: dict[str, str], volumes: tuple[str, ...]
) -> list[MountSpec]:
    """Binds, then Mounts, then Tmpfs, then Config.Volumes not covered by the others."""
    out: list[MountSpec] = []
    taken: set[str] = set()

    def add(spec: MountSpec) -> None:
        if spec.target in taken:
            raise InvalidArgument(f"Duplicate mount point: {spec.target}")
        taken.add(spec.target)
        out.append(spec)

    for raw in binds:
        add(parse_bind(raw))
    for item in obj.objs("Mounts", "mount.Mount"):
        add(parse_mount(item))
    for target, data in tmpfs.items():
        if not target.startswith("/"):
            raise InvalidArgument(f"invalid mount path: '{target}' mount path must be absolute")
        if data:
            merge_tmpfs_options(data.split(","))  # refuse bad options now, not at start
        add(MountSpec(type="tmpfs", target=_clean(target), tmpfs_options=data, origin="tmpfs"))
    for target in volumes:
        clean = _clean(target)
        if clean in taken:
            continue  # a bind or mount at the same place wins, silently
        if not target.startswith("/"):
            raise InvalidArgument(f"invalid mount path: '{target}' mount path must be absolute")
        add(MountSpec(type="volume", target=clean, origin="volumes"))
    return out


# -- resources ------------------------------------------------------------------


def _parse_resources(obj: _Obj, ncpus: int) -> Resources:
    memory = obj.number("Memory")
    swap = obj.number("MemorySwap")
    reservation = obj.number("MemoryReservation")
    swappiness = obj.opt_number("MemorySwappiness")
    nano_cpus = obj.number("NanoCpus")
    period = obj.number("CpuPeriod")
    quota = obj.number("CpuQuota")
    if memory and memory < _MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory == 0 and swap > 0:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if reservation and reservation < _MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    if swappiness == -1:
        swappiness = None
    if swappiness is not None and not 0 <= swappiness <= 100:
        raise InvalidArgument(
            f"Invalid value: {swappiness}, valid memory swappiness range is 0-100"
        )
    if nano_cpus and period:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano_cpus and quota:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano_cpus < 0 or nano_cpus > ncpus * 10**9:
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {ncpus:.2f}, as there are only {ncpus} CPUs available"
        )
    if period and not 1000 <= period <= 1000000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if quota and 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if obj.number("CpuShares") < 0:
        raise InvalidArgument("shares: invalid argument")
    for key, what in (("CpusetCpus", "cpus"), ("CpusetMems", "mems")):
        value = obj.text(key)
        if value and not _CPUSET_RE.match(value):
            raise InvalidArgument(
                f"Invalid value {value} for cpuset {what}: invalid format: {value}"
            )
    weight = obj.number("BlkioWeight")
    if weight and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    rules = obj.texts("DeviceCgroupRules")
    for rule in rules:
        if not _DEVICE_RULE_RE.match(rule):
            raise InvalidArgument(f"invalid device cgroup rule format: '{rule}'")
    if memory > 0 and swap == 0:
        swap = memory * 2  # dockerd's default
    return Resources(
        memory=memory,
        memory_swap=swap,
        memory_reservation=reservation,
        memory_swappiness=swappiness,
        kernel_memory=obj.number("KernelMemory"),
        oom_kill_disable=obj.opt_flag("OomKillDisable"),
        nano_cpus=nano_cpus,
        cpu_shares=obj.number("CpuShares"),
        cpu_period=period,
        cpu_quota=quota,
        cpu_realtime_period=obj.number("CpuRealtimePeriod"),
        cpu_realtime_runtime=obj.number("CpuRealtimeRuntime"),
        cpuset_cpus=obj.text("CpusetCpus"),
        cpuset_mems=obj.text("CpusetMems"),
        pids_limit=obj.opt_number("PidsLimit"),
        blkio_weight=weight,
        blkio_weight_device=obj.each("BlkioWeightDevice", "blkiodev.WeightDevice", _weight),
        blkio_device_read_bps=obj.each("BlkioDeviceReadBps", _THROTTLE, _throttle),
        blkio_device_write_bps=obj.each("BlkioDeviceWriteBps", _THROTTLE, _throttle),
        blkio_device_read_iops=obj.each("BlkioDeviceReadIOps", _THROTTLE, _throttle),
        blkio_device_write_iops=obj.each("BlkioDeviceWriteIOps", _THROTTLE, _throttle),
        cgroup_parent=obj.text("CgroupParent"),
        devices=obj.each("Devices", "container.DeviceMapping", _parse_device),
        device_cgroup_rules=rules,
        ulimits=obj.each("Ulimits", "units.Ulimit", _parse_ulimit),
    )


def _weight(obj: _Obj) -> WeightDevice:
    return WeightDevice(obj.text("Path"), obj.number("Weight"))


def _throttle(obj: _Obj) -> ThrottleDevice:
    return ThrottleDevice(obj.text("Path"), obj.number("Rate"))


def _parse_device(obj: _Obj) -> DeviceMapping:
    host = obj.text("PathOnHost")
    inside = obj.text("PathInContainer") or host
    permissions = obj.text("CgroupPermissions") or "rwm"
    if not host:
        raise InvalidArgument("invalid device mapping: PathOnHost must not be empty")
    if any(c not in "rwm" for c in permissions) or len(set(permissions)) != len(permissions):
        raise InvalidArgument(f"invalid device mode: {permissions}")
    return DeviceMapping(host, inside, permissions)


def _parse_ulimit(obj: _Obj) -> Ulimit:
    name = obj.text("Name")
    soft, hard = obj.number("Soft"), obj.number("Hard")
    if name not in _ULIMITS:
        raise InvalidArgument(f"invalid ulimit type: {name}")
    if 0 <= hard < soft:
        raise InvalidArgument(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return Ulimit(name, soft, hard)


# -- networking -------------------------------------------------------------------


def _parse_networking(raw: object) -> dict[str, EndpointConfig]:
    if raw is None:
        return {}
    obj = _Obj(raw, "network.NetworkingConfig")
    endpoints = obj.raw.get("EndpointsConfig") or {}
    if not isinstance(endpoints, dict):
        raise obj._bad("EndpointsConfig", endpoints, "map[string]*network.EndpointSettings")
    out: dict[str, EndpointConfig] = {}
    for name, value in endpoints.items():
        ep = _Obj(value or {}, "network.EndpointSettings")
        ipam = ep.obj("IPAMConfig", "network.EndpointIPAMConfig")
        out[name] = EndpointConfig(
            aliases=ep.texts("Aliases"),
            links=ep.texts("Links"),
            ipv4_address=ipam.text("IPv4Address") if ipam else "",
            ipv6_address=ipam.text("IPv6Address") if ipam else "",
            link_local_ips=ipam.texts("LinkLocalIPs") if ipam else (),
            mac_address=ep.text("MacAddress"),
            driver_opts=ep.text_map("DriverOpts"),
            network_id=ep.text("NetworkID"),
        )
    return out


def _check_network_conflicts(config: ContainerConfig, host: HostConfig) -> None:
    """dockerd's "conflicting options" checks between network mode and other settings."""
    mode = host.network_mode
    if host.uts_mode == "host" and config.hostname:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    if mode == "host" and host.links:
        raise InvalidArgument(
            "conflicting options: host type networking can't be used with links. "
            "This would result in undefined behavior"
        )
    if not mode.startswith("container:"):
        return
    if config.hostname:
        raise InvalidArgument("conflicting options: hostname and the network mode")
    if host.links:
        raise InvalidArgument(
            "conflicting options: container type network can't be used with links. "
            "This would result in undefined behavior"
        )
    if host.dns or host.dns_search or host.dns_options:
        raise InvalidArgument("conflicting options: dns and the network mode")
    if host.extra_hosts:
        raise InvalidArgument("conflicting options: custom host-to-IP mapping and the network mode")
    if host.port_bindings or host.publish_all_ports:
        raise InvalidArgument(
            "conflicting options: port publishing and the container type network mode"
        )
    if config.exposed_ports:
        raise InvalidArgument(
            "conflicting options: port exposing and the container type network mode"
        )
    if config.mac_address:
        raise InvalidArgument("conflicting options: mac-address and the network mode")
