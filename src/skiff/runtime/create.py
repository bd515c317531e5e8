"""`create`: set a container up so that its process waits for `start`.

On any failure everything made so far is undone before the error surfaces:
no state folder, cgroup, mount or process is left behind (the mounts live in
the container's own mount namespace and die with its processes).
"""

from __future__ import annotations

import json
import os
import signal
import time

from skiff.errors import Conflict, InvalidArgument
from skiff.oci.runtime_spec import SpecError, parse_config
from skiff.runtime.state import CREATED, ContainerState, validate_id, write_atomic

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

    from skiff.cgroups.manager import CgroupManager
    from skiff.oci.runtime_spec import RuntimeConfig


def load_bundle(bundle: str) -> tuple[RuntimeConfig, bytes, str]:
    """Read and check a bundle; return its config, the raw config and the rootfs path."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InvalidArgument(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise InvalidArgument(f"config.json is not valid JSON: {e}") from None
    try:
        config = parse_config(doc)
    except SpecError as e:
        raise InvalidArgument(f"config.json: {e}") from None
    if config.process is None:
        raise InvalidArgument("config.json: process: is required to create a container")
    _check_capabilities(config)
    rootfs = config.root_path
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(bundle, rootfs)
    if not os.path.isdir(rootfs):
        raise InvalidArgument(f"config.json: root.path: {rootfs} is not a directory")
    return config, raw, os.path.realpath(rootfs)


def _check_capabilities(config: RuntimeConfig) -> None:
    """Unknown capability names fail create, before anything is made (the spec's MUST)."""
    from skiff.linux.capabilities import NUMBERS

    assert config.process is not None
    caps = config.process.capabilities
    for name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        for i, cap in enumerate(caps.of(name)):
            if cap not in NUMBERS:
                raise InvalidArgument(
                    f"config.json: process.capabilities.{name}[{i}]: unknown capability {cap!r}"
                )


def create(
    root: str,
    container_id: str,
    bundle: str,
    pid_file: str | None = None,
    console: socket.socket | None = None,
    preserve_fds: int = 0,
    systemd_cgroup: bool = False,
) -> ContainerState:
    validate_id(container_id)
    bundle = os.path.abspath(bundle)
    config, raw, rootfs = load_bundle(bundle)
    assert config.process is not None
    if config.process.terminal and console is None:
        raise InvalidArgument(
            "process.terminal is set: a --console-socket is needed to receive the pty"
        )
    os.makedirs(root, mode=0o711, exist_ok=True)
    state = ContainerState(root, container_id)
    try:
        os.mkdir(state.dir, 0o711)
    except FileExistsError:
        raise Conflict(f"container with id exists: {container_id}") from None

    cgroup: CgroupManager | None = None
    stage1_pid = 0
    try:
        state.bundle = bundle
        state.rootfs = rootfs
        state.annotations = config.annotations
        state.created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        state.owner = str(os.geteuid())
        write_atomic(state.config_file, raw)
        state.save()
        os.mkfifo(state.fifo, 0o622)

        from skiff.cgroups import open_manager

        cgroup = open_manager(config.linux.cgroups_path, container_id, systemd=systemd_cgroup)
        cgroup.create()
        state.cgroup_paths = cgroup.paths()
        add_default_device_rules(config)
        cgroup.apply(config.linux.resources)

        stage1_pid, init_pid = _fork_stages(config, rootfs, state, cgroup, console, preserve_fds)
        if pid_file:
            write_atomic(os.path.abspath(pid_file), str(init_pid).encode(), 0o644)
        state.stage = CREATED
        state.save()
        return state
    except BaseException:
        _undo(state, cgroup, stage1_pid, config)
        raise


def _fork_stages(
    config: RuntimeConfig,
    rootfs: str,
    state: ContainerState,
    cgroup: CgroupManager,
    console: socket.socket | None,
    preserve_fds: int,
) -> tuple[int, int]:
    from skiff.runtime.init import InitArgs, preload, stage1
    from skiff.runtime.state import process_start_time
    from skiff.runtime.sync import Channel

    preload(config)
    program = None
    state.seccomp_key = ""
    if config.linux.seccomp is not None:
        from skiff.runtime.seccomp import program_for, spec_key

        state.seccomp_key = spec_key(config.linux.seccomp)
        cache = seccomp_cache(os.path.dirname(state.dir))
        program = program_for(config.linux.seccomp, cache, state.seccomp_key)
    state.namespaces = [ns.type for ns in config.linux.namespaces]
    parent, child = Channel.pair()
    fifo = os.open(state.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    # The cgroup is joined by a move that names no pid (CgroupManager.join: on v1
    # no wait for an RCU grace period, where a move by pid waits 10-30 ms). Init
    # makes it first thing, so that it alone moves in, past a pids limit of 1 as
    # with runc, and then unshares a new cgroup namespace; stage 1 makes it when a
    # new user namespace would leave init without rights on the host's files.
    stage1_joins = config.linux.namespace("user") is not None
    args = InitArgs(
        config, state.bundle, rootfs, fifo, console, preserve_fds, program, cgroup, stage1_joins
    )
    stage1_pid = os.fork()
    if stage1_pid == 0:
        parent.close()
        stage1(child, args)
    child.close()
    os.close(fifo)
    state.pid = stage1_pid  # so that _undo can find it until init is known
    try:
        parent.send("go")
        msg = parent.recv("userns", "pid")
        if msg["type"] == "userns":
            write_id_maps(stage1_pid, config)
            parent.send("mapped")
            msg = parent.recv("pid")
        init_pid = msg["pid"]
        assert isinstance(init_pid, int)
        state.pid = init_pid
        os.waitpid(stage1_pid, 0)
        state.pid_start = process_start_time(init_pid) or 0
        state.save()
        process = config.process
        assert process is not None
        if process.oom_score_adj is not None:
            with open(f"/proc/{init_pid}/oom_score_adj", "w") as f:
                f.write(str(process.oom_score_adj))
        parent.recv("hooks")
        hooks_state = state.oci_state()
        if config.hooks.prestart or config.hooks.createRuntime:
            from skiff.runtime.hooks import run_hooks

            run_hooks("prestart", config.hooks.prestart, hooks_state)
            run_hooks("createRuntime", config.hooks.createRuntime, hooks_state)
        parent.send("hooks-done", state=hooks_state)
        parent.recv("ready")
        return stage1_pid, init_pid
    finally:
        parent.close()


# "@" is not allowed in a container id, so no container can have this name.
SECCOMP_CACHE = "@seccomp"


def seccomp_cache(root: str) -> str:
    """Where compiled seccomp programs are kept: beside the containers' state."""
    return os.path.join(root, SECCOMP_CACHE)


# Device rules every container gets after its own, as runc's specconv adds:
# mknod of anything, and the devices the runtime itself creates in /dev.
DEFAULT_DEVICE_RULES = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts/*
]


def add_default_device_rules(config: RuntimeConfig) -> None:
    from skiff.oci.runtime_spec import DeviceRule
    from skiff.oci.spec_reader import Reader

    rules = config.linux.resources.devices
    rules.extend(DeviceRule(Reader(doc, "default")) for doc in DEFAULT_DEVICE_RULES)
    # Devices the config creates are usable, as runc allows them.
    for dev in config.linux.devices:
        if dev.type in ("c", "b"):
            doc = {
                "allow": True,
                "type": dev.type,
                "major": dev.major,
                "minor": dev.minor,
                "access": "rwm",
            }
            rules.append(DeviceRule(Reader(doc, "linux.devices")))


def write_id_maps(pid: int, config: RuntimeConfig) -> None:
    for name, mappings in (
        ("uid_map", config.linux.uid_mappings),
        ("gid_map", config.linux.gid_mappings),
    ):
        lines = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(lines)
        except OSError as e:
            field = "linux.uidMappings" if name == "uid_map" else "linux.gidMappings"
            raise InvalidArgument(f"config.json: {field}: {e.strerror}") from None


def _undo(
    state: ContainerState, cgroup: CgroupManager | None, stage1_pid: int, config: RuntimeConfig
) -> None:
    """Remove everything a failed create made: processes, cgroup, state folder."""
    from skiff.runtime.state import remove_tree

    pids = set()
    if state.pid:
        pids.add(state.pid)
    if stage1_pid:
        pids.add(stage1_pid)
    if cgroup is not None:
        try:
            pids.update(cgroup.pids())
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    if cgroup is not None:
        try:
            cgroup.destroy()
        except OSError:
            pass
    if config.linux.namespace("mount") is None and state.rootfs:
        from skiff.runtime.rootfs import unmount_under

        unmount_under(state.rootfs)
    remove_tree(state.dir)
