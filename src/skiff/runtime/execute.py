"""`exec`: run another process inside a running container.

With --detach (how the shim runs it), the runtime itself is the starter:

exec (host, then starter)                               process (child)
─────────────────────────                               ───────────────
join the container's namespaces but user and
mount (pid: for children only) ──────────────fork────▶ join the cgroup, then mount,
                                                        then user; session, console, cwd,
                                                        binary, rlimits, identity,
                   ◀───────────────────────────error─── seccomp, execve (an error
write the pid file                                      only on failure; a clean
                                                        exec closes the channel)

In the foreground, a forked starter does the same and reports the process's
host pid, so that exec itself stays outside the container to wait for it.

The process is born in the container's pid namespace and moves itself into
its cgroup before anything else: a move, not a fork inside, so that a container
at its pids limit still takes an exec, as with runc; and a move that names no
pid (CgroupManager.join), so that on v1 it does not wait for the RCU grace
period a move by pid waits for. The starter keeps the host's mount namespace
and user namespace: it still writes the pid file and the log on the host's
paths, as the host's root.
"""

from __future__ import annotations

import json
import os
import sys

from skiff.errors import Conflict, InvalidArgument
from skiff.runtime import state as st
from skiff.runtime.state import ContainerState

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

    from skiff.cgroups.manager import CgroupManager
    from skiff.oci.runtime_spec import Process, RuntimeConfig, Seccomp
    from skiff.runtime.seccomp import Program
    from skiff.runtime.sync import Channel

# /proc/<pid>/ns/<name> for each spec namespace type, in the order to join.
NS_FILES = (
    ("user", "user"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("network", "net"),
    ("pid", "pid"),
    ("cgroup", "cgroup"),
    ("time", "time"),
    ("mount", "mnt"),
)
# Joined by the process itself, in this order: the starter keeps the host's
# paths and its rights on them. As root of the host's user namespace it may
# join the container's mount namespace before its user namespace.
LATE_NAMESPACES = ("mount", "user")


class ExecOptions:
    __slots__ = ("console_socket", "detach", "pid_file", "preserve_fds")

    def __init__(
        self,
        detach: bool = False,
        pid_file: str | None = None,
        console_socket: str | None = None,
        preserve_fds: int = 0,
    ) -> None:
        self.detach = detach
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.preserve_fds = preserve_fds


def load_process_file(path: str) -> Process:
    from skiff.oci.runtime_spec import SpecError, parse_process

    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        return parse_process(doc)
    except OSError as e:
        raise InvalidArgument(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        if isinstance(e, SpecError):
            raise InvalidArgument(f"{path}: {e}") from None
        raise InvalidArgument(f"{path} is not valid JSON: {e}") from None


def exec_in(root: str, container_id: str, process: Process, opts: ExecOptions) -> int:
    from skiff.runtime.control import _cgroup
    from skiff.runtime.foreground import (
        become_subreaper,
        connect_console_socket,
        console_pair,
        receive_master,
        wait_foreground,
    )
    from skiff.runtime.state import write_atomic

    state = ContainerState.load(root, container_id)
    status = state.status()
    if not st.can_exec(status):
        raise Conflict(f"cannot exec in a container that is {status}: {container_id}")
    cgroup = _cgroup(state)
    kinds, seccomp, program = _confinement(root, state)
    ours: socket.socket | None = None
    theirs: socket.socket | None = None
    if process.terminal:
        if opts.console_socket:
            theirs = connect_console_socket(opts.console_socket)
        elif opts.detach:
            raise InvalidArgument("cannot allocate a tty when detached without --console-socket")
        else:
            ours, theirs = console_pair()
    ns_fds = []
    for kind, name in NS_FILES:
        if kind in kinds:
            path = f"/proc/{state.pid}/ns/{name}"
            if os.readlink(path) != os.readlink(f"/proc/self/ns/{name}"):
                ns_fds.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    from skiff.runtime.init import preload_process

    preload_process(process.terminal, filtered=seccomp is not None or program is not None)
    start = _Start(cgroup, ns_fds, process, seccomp, theirs, opts.preserve_fds, program)
    if opts.detach:
        pid = start.run()
    else:
        become_subreaper()
        pid = _start_in_child(start)
    master = receive_master(ours) if ours is not None else None
    if opts.pid_file:
        write_atomic(os.path.abspath(opts.pid_file), str(pid).encode(), 0o644)
    if opts.detach:
        return 0
    return wait_foreground(pid, master)


class _Start:
    """Join the container's namespaces, fork the process (which joins the rest and
    the cgroup), wait until it has exec'd (or report why it could not), and return
    its host pid."""

    __slots__ = ("cgroup", "console", "ns_fds", "preserve_fds", "process", "program", "seccomp")

    def __init__(
        self,
        cgroup: CgroupManager | None,
        ns_fds: list[tuple[str, int]],
        process: Process,
        seccomp: Seccomp | None,
        console: socket.socket | None,
        preserve_fds: int,
        program: Program | None,
    ) -> None:
        self.cgroup = cgroup
        self.ns_fds = ns_fds
        self.process = process
        self.seccomp = seccomp
        self.console = console
        self.preserve_fds = preserve_fds
        self.program = program

    def run(self) -> int:
        from skiff.linux import syscalls as sc
        from skiff.runtime.init import NS_FLAGS
        from skiff.runtime.sync import Channel, ProtocolError

        late = []
        for kind, fd in self.ns_fds:
            if kind in LATE_NAMESPACES:
                late.append((kind, fd))
            else:
                sc.setns(fd, NS_FLAGS[kind])
                os.close(fd)
        late.sort(key=lambda item: LATE_NAMESPACES.index(item[0]))
        parent, child = Channel.pair()
        try:
            pid = os.fork()
        except OSError as e:
            raise OSError(e.errno, f"fork: {e.strerror}") from None
        if pid == 0:
            parent.close()
            _process(child, self.cgroup, late, self.process, self.seccomp, self.console,
                     self.preserve_fds, self.program)  # fmt: skip
        child.close()
        for _, fd in late:
            os.close(fd)
        if self.console is not None:
            self.console.close()
        try:
            parent.recv()  # the channel closes on a successful execve (close-on-exec)
        except ProtocolError:
            pass
        finally:
            parent.close()
        return pid


def _start_in_child(start: _Start) -> int:
    """start.run() in a forked starter, which reports the pid and leaves: exec
    itself stays in its own cgroup and namespaces while it waits in the foreground."""
    from skiff.runtime.init import _fail
    from skiff.runtime.sync import Channel

    parent, child = Channel.pair()
    starter = os.fork()
    if starter == 0:
        parent.close()
        try:
            child.send("pid", pid=start.run())
        except BaseException as e:
            _fail(child, e)
        os._exit(0)
    child.close()
    for _, fd in start.ns_fds:
        os.close(fd)
    if start.console is not None:
        start.console.close()
    try:
        pid = parent.recv("pid")["pid"]
    finally:
        parent.close()
        os.waitpid(starter, 0)
    assert isinstance(pid, int)
    return pid


def _confinement(
    root: str, state: ContainerState
) -> tuple[set[str], Seccomp | None, Program | None]:
    """The container's namespace kinds and seccomp filter, for the exec'd process.

    create recorded the kinds and the key of the compiled program in the state,
    so usually config.json need not be read (its parse and the key's hash cost a
    few ms in a fresh fork). Otherwise (an older state, a program no longer in
    the cache, a machine whose seccomp(2) number is unknown) the config says.
    """
    from skiff.runtime.create import seccomp_cache
    from skiff.runtime.seccomp import cached_program, can_load_programs, program_for

    cache = seccomp_cache(root)
    if state.namespaces is not None and state.seccomp_key is not None and can_load_programs():
        if not state.seccomp_key:
            return set(state.namespaces), None, None
        program = cached_program(cache, state.seccomp_key)
        if program is not None:
            return set(state.namespaces), None, program
    from skiff.runtime.control import saved_config

    config = saved_config(state)
    kinds = {ns.type for ns in config.linux.namespaces}
    seccomp = config.linux.seccomp
    if seccomp is None:
        return kinds, None, None
    if not can_load_programs():
        from skiff.runtime.seccomp import libseccomp

        libseccomp()  # the process builds and loads the filter itself, after setns(mnt)
        return kinds, seccomp, None
    return kinds, seccomp, program_for(seccomp, cache)


def _process(
    chan: Channel,
    cgroup: CgroupManager | None,
    late: list[tuple[str, int]],
    process: Process,
    seccomp: Seccomp | None,
    console: socket.socket | None,
    preserve_fds: int,
    program: Program | None = None,
) -> None:
    from skiff.linux import syscalls as sc
    from skiff.runtime.init import (
        NS_FLAGS,
        _fail,
        find_executable,
        finish_and_exec,
        make_env,
        set_rlimits,
        setup_console,
    )

    try:
        if cgroup is not None:
            cgroup.join()  # by the host's paths: before the mount namespace
        for kind, fd in late:
            sc.setns(fd, NS_FLAGS[kind])
            os.close(fd)
        os.setsid()
        if process.terminal:
            setup_console(console, process, bind_console=False)
        env = make_env(process)
        os.chdir(process.cwd)
        path = find_executable(process.args, env)
        set_rlimits(process)
        finish_and_exec(process, seccomp, path, env, preserve_fds, program)
    except BaseException as e:
        _fail(chan, e)


def process_from_args(
    config: RuntimeConfig,
    args: list[str],
    tty: bool,
    cwd: str | None,
    env: list[str],
    user: str | None,
    additional_gids: list[int],
    caps: list[str],
    no_new_privs: bool,
) -> Process:
    """A process for `exec -- CMD`, starting from the container's own, as runc does."""
    import copy

    base = config.process
    if base is None:
        raise InvalidArgument("the container has no process to base the exec on")
    proc = copy.copy(base)
    proc.args = args
    proc.terminal = tty
    proc.console_size = None
    if cwd:
        proc.cwd = cwd
    proc.env = [*base.env, *env]
    proc.user = copy.copy(base.user)
    if user:
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise InvalidArgument(f"--user {user!r}: expected UID[:GID]")
        proc.user.uid = int(uid)
        if gid:
            proc.user.gid = int(gid)
    if additional_gids:
        proc.user.additional_gids = additional_gids
    if caps:
        proc.capabilities = copy.copy(base.capabilities)
        for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            current = proc.capabilities.of(name)
            setattr(proc.capabilities, name, [*current, *(c for c in caps if c not in current)])
    if no_new_privs:
        proc.no_new_privileges = True
    return proc


def fail(message: str) -> int:
    print(f"skiff-runtime: {message}", file=sys.stderr)
    return 1
