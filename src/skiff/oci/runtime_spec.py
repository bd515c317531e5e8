"""The OCI runtime spec's config.json (Linux), parsed once into typed objects.

`parse_config(data)` is the boundary: it checks every field the runtime reads
against the spec's schema (types, ranges, enums, required fields) and raises
`SpecError` naming the field. Nothing past this module reads a raw dict.
Field names stay close to the spec's so the spec doubles as documentation.
"""

from __future__ import annotations

from skiff.oci.spec_reader import INT64, UINT32, UINT64, Reader, SpecError, check_int, child_path

NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOOK_KINDS = (
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
)
RLIMIT_TYPES = frozenset(
    "RLIMIT_" + n
    for n in [
        "AS",
        "CORE",
        "CPU",
        "DATA",
        "FSIZE",
        "LOCKS",
        "MEMLOCK",
        "MSGQUEUE",
        "NICE",
        "NOFILE",
        "NPROC",
        "RSS",
        "RTPRIO",
        "RTTIME",
        "SIGPENDING",
        "STACK",
    ]
)
PROPAGATIONS = (
    "private",
    "shared",
    "slave",
    "unbindable",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
)
SECCOMP_ACTIONS = frozenset(
    "SCMP_ACT_" + a
    for a in [
        "KILL",
        "KILL_PROCESS",
        "KILL_THREAD",
        "TRAP",
        "ERRNO",
        "TRACE",
        "ALLOW",
        "LOG",
        "NOTIFY",
    ]
)
SECCOMP_OPS = frozenset("SCMP_CMP_" + o for o in ["NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"])
SECCOMP_FLAGS = frozenset(
    "SECCOMP_FILTER_FLAG_" + f for f in ["TSYNC", "LOG", "SPEC_ALLOW", "WAIT_KILLABLE_RECV"]
)


class Hook:
    __slots__ = ("args", "env", "path", "timeout")

    def __init__(self, r: Reader) -> None:
        self.path = r.text("path", required=True)
        if not self.path.startswith("/"):
            raise SpecError(r.path + ".path", f"{self.path!r} must be an absolute path")
        self.args = r.strs("args")
        self.env = r.strs("env")
        self.timeout = r.opt_int("timeout", lo=1)


class Hooks:
    __slots__ = HOOK_KINDS
    prestart: list[Hook]
    createRuntime: list[Hook]  # noqa: N815 - the spec's names
    createContainer: list[Hook]  # noqa: N815
    startContainer: list[Hook]  # noqa: N815
    poststart: list[Hook]
    poststop: list[Hook]

    def __init__(self, r: Reader | None) -> None:
        for kind in HOOK_KINDS:
            setattr(self, kind, r.objs(kind, Hook) if r else [])

    def of(self, kind: str) -> list[Hook]:
        hooks: list[Hook] = getattr(self, kind)
        return hooks


class Mount:
    __slots__ = ("destination", "gid_mappings", "options", "source", "type", "uid_mappings")

    def __init__(self, r: Reader) -> None:
        self.destination = r.text("destination", required=True)
        self.type = r.text("type")
        self.source = r.text("source")
        self.options = r.strs("options")
        self.uid_mappings = r.objs("uidMappings", IDMapping)
        self.gid_mappings = r.objs("gidMappings", IDMapping)


class IDMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, r: Reader) -> None:
        self.container_id = r.integer("containerID", required=True, lo=0, hi=UINT32[1])
        self.host_id = r.integer("hostID", required=True, lo=0, hi=UINT32[1])
        self.size = r.integer("size", required=True, lo=0, hi=UINT32[1])


class Rlimit:
    __slots__ = ("hard", "soft", "type")

    def __init__(self, r: Reader) -> None:
        self.type = r.enum("type", RLIMIT_TYPES, required=True)
        self.soft = r.integer("soft", required=True, lo=0, hi=UINT64[1])
        self.hard = r.integer("hard", required=True, lo=0, hi=UINT64[1])


class User:
    __slots__ = ("additional_gids", "gid", "uid", "umask", "username")

    def __init__(self, r: Reader | None) -> None:
        self.uid = r.integer("uid", lo=0, hi=UINT32[1]) if r else 0
        self.gid = r.integer("gid", lo=0, hi=UINT32[1]) if r else 0
        self.umask = r.opt_int("umask", lo=0, hi=UINT32[1]) if r else None
        self.additional_gids = r.ints("additionalGids", lo=0, hi=UINT32[1]) if r else []
        self.username = r.text("username") if r else ""


CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


class Capabilities:
    __slots__ = CAP_SETS

    def __init__(self, r: Reader | None) -> None:
        for name in CAP_SETS:
            caps = r.strs(name) if r else []
            for i, cap in enumerate(caps):
                if not cap.startswith("CAP_"):
                    where = f"{r.path}.{name}[{i}]" if r else name
                    raise SpecError(where, f"{cap!r} is not a capability name")
            setattr(self, name, caps)

    def of(self, name: str) -> list[str]:
        caps: list[str] = getattr(self, name)
        return caps


class Process:
    __slots__ = (
        "apparmor_profile",
        "args",
        "capabilities",
        "console_size",
        "cwd",
        "env",
        "no_new_privileges",
        "oom_score_adj",
        "rlimits",
        "selinux_label",
        "terminal",
        "user",
    )

    def __init__(self, r: Reader) -> None:
        self.terminal = r.flag("terminal")
        size = r.obj("consoleSize")
        self.console_size = (
            (
                size.integer("height", required=True, lo=0, hi=UINT32[1]),
                size.integer("width", required=True, lo=0, hi=UINT32[1]),
            )
            if size
            else None
        )
        self.cwd = r.text("cwd", required=True)
        if not self.cwd.startswith("/"):
            raise SpecError(r.path + ".cwd", f"{self.cwd!r} must be an absolute path")
        self.env = r.strs("env")
        self.args = r.strs("args")
        self.rlimits = r.objs("rlimits", Rlimit)
        seen: set[str] = set()
        for i, rl in enumerate(self.rlimits):
            if rl.type in seen:
                raise SpecError(f"{r.path}.rlimits[{i}].type", f"{rl.type} is given twice")
            seen.add(rl.type)
        self.apparmor_profile = r.text("apparmorProfile")
        self.capabilities = Capabilities(r.obj("capabilities"))
        self.no_new_privileges = r.flag("noNewPrivileges")
        self.oom_score_adj = r.opt_int("oomScoreAdj", lo=-1000, hi=1000)
        self.selinux_label = r.text("selinuxLabel")
        self.user = User(r.obj("user", required=True))


class Namespace:
    __slots__ = ("path", "type")

    def __init__(self, r: Reader) -> None:
        self.type = r.enum("type", NAMESPACE_TYPES, required=True)
        self.path = r.text("path")


class Device:
    __slots__ = ("file_mode", "gid", "major", "minor", "path", "type", "uid")

    def __init__(self, r: Reader) -> None:
        self.type = r.enum("type", ("c", "b", "u", "p"), required=True)
        self.path = r.text("path", required=True)
        need_numbers = self.type != "p"
        self.major = r.integer("major", required=need_numbers, lo=INT64[0], hi=INT64[1])
        self.minor = r.integer("minor", required=need_numbers, lo=INT64[0], hi=INT64[1])
        self.file_mode = r.opt_int("fileMode", lo=0, hi=UINT32[1])
        self.uid = r.opt_int("uid", lo=0, hi=UINT32[1])
        self.gid = r.opt_int("gid", lo=0, hi=UINT32[1])


class DeviceRule:
    __slots__ = ("access", "allow", "major", "minor", "type")

    def __init__(self, r: Reader) -> None:
        self.allow = r.flag("allow")
        if "allow" not in r.data:
            raise SpecError(r.path + ".allow", "is required")
        self.type = r.enum("type", ("a", "b", "c"), default="a") or "a"
        self.major = r.opt_int("major", lo=INT64[0], hi=INT64[1])
        self.minor = r.opt_int("minor", lo=INT64[0], hi=INT64[1])
        self.access = r.text("access", default="rwm") or "rwm"
        if set(self.access) - set("rwm"):
            raise SpecError(r.path + ".access", f"{self.access!r} is not a subset of rwm")


class Memory:
    __slots__ = (
        "check_before_update",
        "disable_oom_killer",
        "kernel",
        "kernel_tcp",
        "limit",
        "reservation",
        "swap",
        "swappiness",
        "use_hierarchy",
    )

    def __init__(self, r: Reader) -> None:
        self.limit = r.opt_int("limit", *INT64)
        self.reservation = r.opt_int("reservation", *INT64)
        self.swap = r.opt_int("swap", *INT64)
        self.kernel = r.opt_int("kernel", *INT64)
        self.kernel_tcp = r.opt_int("kernelTCP", *INT64)
        self.swappiness = r.opt_int("swappiness", *UINT64)
        self.disable_oom_killer = r.opt_bool("disableOOMKiller")
        self.use_hierarchy = r.opt_bool("useHierarchy")
        self.check_before_update = r.opt_bool("checkBeforeUpdate")


class Cpu:
    __slots__ = (
        "burst",
        "cpus",
        "idle",
        "mems",
        "period",
        "quota",
        "realtime_period",
        "realtime_runtime",
        "shares",
    )

    def __init__(self, r: Reader) -> None:
        self.shares = r.opt_int("shares", *UINT64)
        self.quota = r.opt_int("quota", *INT64)
        self.burst = r.opt_int("burst", *UINT64)
        self.period = r.opt_int("period", *UINT64)
        self.realtime_runtime = r.opt_int("realtimeRuntime", *INT64)
        self.realtime_period = r.opt_int("realtimePeriod", *UINT64)
        self.cpus = r.opt_str("cpus")
        self.mems = r.opt_str("mems")
        self.idle = r.opt_int("idle", *INT64)


def blkio_weight(r: Reader, key: str) -> int | None:
    """A blkio weight: 10..1000, or 0 for "not set" (dockerd sends 0 when no
    --blkio-weight was given, and runc leaves the cgroup's weight alone then)."""
    value = r.opt_int(key, 0, 1000)
    if value == 0:
        return None
    if value is not None and value < 10:
        raise SpecError(child_path(r.path, key), f"{value} is below the minimum 10")
    return value


class WeightDevice:
    __slots__ = ("leaf_weight", "major", "minor", "weight")

    def __init__(self, r: Reader) -> None:
        self.major = r.integer("major", required=True, lo=INT64[0], hi=INT64[1])
        self.minor = r.integer("minor", required=True, lo=INT64[0], hi=INT64[1])
        self.weight = blkio_weight(r, "weight")
        self.leaf_weight = blkio_weight(r, "leafWeight")


class ThrottleDevice:
    __slots__ = ("major", "minor", "rate")

    def __init__(self, r: Reader) -> None:
        self.major = r.integer("major", required=True, lo=INT64[0], hi=INT64[1])
        self.minor = r.integer("minor", required=True, lo=INT64[0], hi=INT64[1])
        self.rate = r.integer("rate", required=True, lo=0, hi=UINT64[1])


class BlockIO:
    __slots__ = (
        "leaf_weight",
        "throttle_read_bps",
        "throttle_read_iops",
        "throttle_write_bps",
        "throttle_write_iops",
        "weight",
        "weight_device",
    )

    def __init__(self, r: Reader) -> None:
        self.weight = blkio_weight(r, "weight")
        self.leaf_weight = blkio_weight(r, "leafWeight")
        self.weight_device = r.objs("weightDevice", WeightDevice)
        self.throttle_read_bps = r.objs("throttleReadBpsDevice", ThrottleDevice)
        self.throttle_write_bps = r.objs("throttleWriteBpsDevice", ThrottleDevice)
        self.throttle_read_iops = r.objs("throttleReadIOPSDevice", ThrottleDevice)
        self.throttle_write_iops = r.objs("throttleWriteIOPSDevice", ThrottleDevice)


class HugepageLimit:
    __slots__ = ("limit", "page_size")

    def __init__(self, r: Reader) -> None:
        self.page_size = r.text("pageSize", required=True)
        self.limit = r.integer("limit", required=True, lo=0, hi=UINT64[1])


class Network:
    __slots__ = ("class_id", "priorities")

    def __init__(self, r: Reader) -> None:
        self.class_id = r.opt_int("classID", *UINT32)
        self.priorities: list[tuple[str, int]] = [
            (
                p.text("name", required=True),
                p.integer("priority", required=True, lo=0, hi=UINT32[1]),
            )
            for p in r.objs("priorities", lambda x: x)
        ]


class Resources:
    __slots__ = (
        "block_io",
        "cpu",
        "devices",
        "hugepage_limits",
        "memory",
        "network",
        "pids_limit",
        "unified",
    )

    def __init__(self, r: Reader | None) -> None:
        self.devices = r.objs("devices", DeviceRule) if r else []
        mem = r.obj("memory") if r else None
        self.memory = Memory(mem) if mem else None
        cpu = r.obj("cpu") if r else None
        self.cpu = Cpu(cpu) if cpu else None
        pids = r.obj("pids") if r else None
        self.pids_limit = (
            pids.integer("limit", required=True, lo=INT64[0], hi=INT64[1]) if pids else None
        )
        bio = r.obj("blockIO") if r else None
        self.block_io = BlockIO(bio) if bio else None
        self.hugepage_limits = r.objs("hugepageLimits", HugepageLimit) if r else []
        net = r.obj("network") if r else None
        self.network = Network(net) if net else None
        self.unified = r.str_map("unified") if r else {}


class SeccompArg:
    __slots__ = ("index", "op", "value", "value_two")

    def __init__(self, r: Reader) -> None:
        self.index = r.integer("index", required=True, lo=0, hi=5)
        self.value = r.integer("value", required=True, lo=0, hi=UINT64[1])
        self.value_two = r.integer("valueTwo", lo=0, hi=UINT64[1])
        self.op = r.enum("op", SECCOMP_OPS, required=True)


class SeccompRule:
    __slots__ = ("action", "args", "errno_ret", "names")

    def __init__(self, r: Reader) -> None:
        self.names = r.strs("names", required=True)
        if not self.names:
            raise SpecError(r.path + ".names", "must not be empty")
        self.action = r.enum("action", SECCOMP_ACTIONS, required=True)
        self.errno_ret = r.opt_int("errnoRet", *UINT32)
        self.args = r.objs("args", SeccompArg)


class Seccomp:
    __slots__ = (
        "architectures",
        "default_action",
        "default_errno_ret",
        "flags",
        "listener_metadata",
        "listener_path",
        "syscalls",
    )

    def __init__(self, r: Reader) -> None:
        self.default_action = r.enum("defaultAction", SECCOMP_ACTIONS, required=True)
        self.default_errno_ret = r.opt_int("defaultErrnoRet", *UINT32)
        self.architectures = r.strs("architectures")
        for i, arch in enumerate(self.architectures):
            if not arch.startswith("SCMP_ARCH_"):
                raise SpecError(f"{r.path}.architectures[{i}]", f"{arch!r} is not an architecture")
        self.flags = r.strs("flags")
        for i, flag in enumerate(self.flags):
            if flag not in SECCOMP_FLAGS:
                raise SpecError(f"{r.path}.flags[{i}]", f"{flag!r} is not a seccomp flag")
        self.listener_path = r.text("listenerPath")
        self.listener_metadata = r.text("listenerMetadata")
        self.syscalls = r.objs("syscalls", SeccompRule)


class Linux:
    __slots__ = (
        "cgroups_path",
        "devices",
        "gid_mappings",
        "masked_paths",
        "mount_label",
        "namespaces",
        "personality",
        "readonly_paths",
        "resources",
        "rootfs_propagation",
        "seccomp",
        "sysctl",
        "uid_mappings",
    )

    def __init__(self, r: Reader | None) -> None:
        self.namespaces = r.objs("namespaces", Namespace) if r else []
        seen: set[str] = set()
        for i, ns in enumerate(self.namespaces):
            if ns.type in seen:
                raise SpecError(f"linux.namespaces[{i}].type", f"namespace {ns.type!r} repeated")
            seen.add(ns.type)
        self.uid_mappings = r.objs("uidMappings", IDMapping) if r else []
        self.gid_mappings = r.objs("gidMappings", IDMapping) if r else []
        self.devices = r.objs("devices", Device) if r else []
        self.cgroups_path = r.text("cgroupsPath") if r else ""
        self.resources = Resources(r.obj("resources") if r else None)
        self.sysctl = r.str_map("sysctl") if r else {}
        sec = r.obj("seccomp") if r else None
        self.seccomp = Seccomp(sec) if sec else None
        self.rootfs_propagation = r.enum("rootfsPropagation", PROPAGATIONS) if r else ""
        self.masked_paths = r.strs("maskedPaths") if r else []
        self.readonly_paths = r.strs("readonlyPaths") if r else []
        self.mount_label = r.text("mountLabel") if r else ""
        pers = r.obj("personality") if r else None
        self.personality = (
            pers.enum("domain", ("LINUX", "LINUX32"), required=True) if pers else None
        )

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None


class RuntimeConfig:
    """A whole config.json; `process` is None when the bundle only sets up an environment."""

    __slots__ = (
        "annotations",
        "domainname",
        "hooks",
        "hostname",
        "linux",
        "mounts",
        "oci_version",
        "process",
        "root_path",
        "root_readonly",
    )

    def __init__(self, r: Reader) -> None:
        self.oci_version = r.text("ociVersion", required=True)
        root = r.obj("root", required=True)
        assert root is not None
        self.root_path = root.text("path", required=True)
        self.root_readonly = root.flag("readonly")
        self.mounts = r.objs("mounts", Mount)
        proc = r.obj("process")
        self.process = Process(proc) if proc else None
        self.hostname = r.text("hostname")
        self.domainname = r.text("domainname")
        self.hooks = Hooks(r.obj("hooks"))
        self.annotations = r.str_map("annotations")
        self.linux = Linux(r.obj("linux"))
        self._cross_checks()

    def _cross_checks(self) -> None:
        linux = self.linux
        user_ns = linux.namespace("user")
        if (linux.uid_mappings or linux.gid_mappings) and user_ns is None:
            raise SpecError("linux.uidMappings", "mappings need a user namespace")
        if user_ns is not None and not user_ns.path:
            if not linux.uid_mappings:
                raise SpecError("linux.uidMappings", "a new user namespace needs uid mappings")
            if not linux.gid_mappings:
                raise SpecError("linux.gidMappings", "a new user namespace needs gid mappings")
        # A joined uts namespace (by path) may be renamed too, as runc does.
        uts = linux.namespace("uts")
        if self.hostname and uts is None:
            raise SpecError("hostname", "setting the hostname needs a uts namespace")
        if self.domainname and uts is None:
            raise SpecError("domainname", "setting the domainname needs a uts namespace")
        if linux.sysctl and linux.namespace("network") is None:
            for key in linux.sysctl:
                if key.startswith("net."):
                    raise SpecError(f"linux.sysctl.{key}", "needs a network namespace")


def parse_config(data: object) -> RuntimeConfig:
    return RuntimeConfig(Reader(data))


def parse_process(data: object) -> Process:
    """A process.json given to `exec --process`."""
    return Process(Reader(data, "process"))


__all__ = ["RuntimeConfig", "SpecError", "check_int", "parse_config", "parse_process"]
