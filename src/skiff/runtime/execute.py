"""`exec`: run another process inside a running container.

exec (host)                    joiner (child)                 process (grandchild)
───────────                    ──────────────                 ────────────────────
              ──go───────────▶ setns into the container's
                               namespaces (user first,
                               mount last) ─fork───────────▶ (waits for the pid)
                   ◀──pid───── report its host pid, exit      session, console,
cgroup add(process)                                           cwd, binary, rlimits
                   ──joined──────────────────────────────────▶ identity, seccomp,
                   ◀───────────────────────────────────error  execve (an error only
                                                               on failure; a clean
                                                               exec closes the channel)

The process joins the container's cgroup while it prepares itself: the first
cgroup v1 move of a burst waits for an RCU grace period, which then overlaps
that work instead of coming before it. It cannot run the user's program before
"joined".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys

from skiff.errors import Conflict, InvalidArgument
from skiff.runtime import state as st
from skiff.runtime.state import ContainerState

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

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
    from skiff.runtime.sync import Channel, gone

    state = ContainerState.load(root, container_id)
    status = state.status()
    if not st.can_exec(status):
        raise Conflict(f"cannot exec in a container that is {status}: {container_id}")
    cgroup = _cgroup(state)
    if cgroup is not None and cgroup.version == 1:
        from skiff.cgroups.v1 import prime_migration

        prime_migration()  # over by the time the process joins the cgroup, below
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
    if not opts.detach:
        become_subreaper()
    ns_fds = []
    for kind, name in NS_FILES:
        if kind in kinds:
            path = f"/proc/{state.pid}/ns/{name}"
            if os.readlink(path) != os.readlink(f"/proc/self/ns/{name}"):
                ns_fds.append((kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    from skiff.runtime.init import preload_process

    preload_process(process.terminal, filtered=seccomp is not None or program is not None)
    parent, child = Channel.pair()
    joiner = os.fork()
    if joiner == 0:
        parent.close()
        if ours is not None:
            ours.close()
        _joiner(child, ns_fds, process, seccomp, theirs, opts.preserve_fds, program)
    child.close()
    for _, fd in ns_fds:
        os.close(fd)
    if theirs is not None:
        theirs.close()
    try:
        parent.send("go")
        pid = parent.recv("pid")["pid"]
        assert isinstance(pid, int)
        try:
            if cgroup is not None:
                cgroup.add(pid)
        except BaseException as e:
            if gone(e):
                parent.recv("joined")  # it failed and left: its error is on the channel
            os.kill(pid, signal.SIGKILL)  # it must not run outside the container's cgroup
            raise
        with contextlib.suppress(OSError):  # gone already: its error is on the channel
            parent.send("joined")
        os.waitpid(joiner, 0)
        master = receive_master(ours) if ours is not None else None
        # The channel closes on a successful execve (close-on-exec).
        try:
            parent.recv()
        except Exception as e:
            from skiff.runtime.sync import ProtocolError

            if not isinstance(e, ProtocolError):
                raise
    finally:
        parent.close()
    if opts.pid_file:
        write_atomic(os.path.abspath(opts.pid_file), str(pid).encode(), 0o644)
    if opts.detach:
        return 0
    return wait_foreground(pid, master)


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


def _joiner(
    chan: Channel,
    ns_fds: list[tuple[str, int]],
    process: Process,
    seccomp: Seccomp | None,
    console: socket.socket | None,
    preserve_fds: int,
    program: Program | None,
) -> None:
    from skiff.linux import syscalls as sc
    from skiff.runtime.init import NS_FLAGS, _fail

    try:
        chan.recv("go")
        for kind, fd in ns_fds:
            sc.setns(fd, NS_FLAGS[kind])
            os.close(fd)
        # As in create: the process waits until its pid is on the channel.
        hold, release = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(release)
            os.read(hold, 1)
            os.close(hold)
            _process(chan, process, seccomp, console, preserve_fds, program)
        os.close(hold)
        chan.send("pid", pid=pid)
        os.close(release)
    except BaseException as e:
        _fail(chan, e)
    os._exit(0)


def _process(
    chan: Channel,
    process: Process,
    seccomp: Seccomp | None,
    console: socket.socket | None,
    preserve_fds: int,
    program: Program | None = None,
) -> None:
    from skiff.runtime.init import (
        _fail,
        find_executable,
        finish_and_exec,
        make_env,
        set_rlimits,
        setup_console,
    )

    joined = False
    try:
        os.setsid()
        if process.terminal:
            setup_console(console, process, bind_console=False)
        env = make_env(process)
        os.chdir(process.cwd)
        path = find_executable(process.args, env)
        set_rlimits(process)
        chan.recv("joined")
        joined = True
        finish_and_exec(process, seccomp, path, env, preserve_fds, program)
    except BaseException as e:
        if not joined:
            # Take "joined" before leaving: a message left unread when this end
            # closes makes the parent's next read fail with ECONNRESET instead
            # of returning the error below.
            with contextlib.suppress(Exception):
                chan.recv("joined")
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
