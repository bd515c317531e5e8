"""The two forked stages of `create`: stage-1 makes namespaces, init becomes the container.

See sync.py for the messages. Both stages run in a fork of the runtime and
never return into the caller: they end in `os._exit` or `os.execve`. Any
exception becomes an `error` message for the parent, which cleans up.

Why two stages: unshare(CLONE_NEWPID) moves only the caller's future children
into the new pid namespace, and a proc mount shows the pid namespace of the
process that mounts it, so the process that mounts /proc and execs the user's
program must be a child of the one that unshared.
"""

from __future__ import annotations

import os
import stat
import sys

from skiff.linux import syscalls as sc

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

    from skiff.cgroups.manager import CgroupManager
    from skiff.oci.runtime_spec import Process, RuntimeConfig, Seccomp
    from skiff.runtime.seccomp import Program
    from skiff.runtime.sync import Channel

NS_FLAGS = {
    "mount": sc.CLONE_NEWNS,
    "uts": sc.CLONE_NEWUTS,
    "ipc": sc.CLONE_NEWIPC,
    "user": sc.CLONE_NEWUSER,
    "pid": sc.CLONE_NEWPID,
    "network": sc.CLONE_NEWNET,
    "cgroup": sc.CLONE_NEWCGROUP,
    "time": sc.CLONE_NEWTIME,
}
# The order to join existing namespaces in: user first (it grants the rights
# to join the others), mount last (paths after it resolve in the container).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class InitArgs:
    """What the forked stages need, gathered by `create` before forking."""

    __slots__ = (
        "bundle", "cgroup", "config", "console", "fifo", "preserve_fds", "rootfs", "seccomp",
        "stage1_joins",
    )  # fmt: skip

    def __init__(
        self,
        config: RuntimeConfig,
        bundle: str,
        rootfs: str,
        fifo: int,
        console: socket.socket | None,
        preserve_fds: int,
        seccomp: Program | None = None,
        cgroup: CgroupManager | None = None,
        stage1_joins: bool = False,
    ) -> None:
        self.config = config
        self.bundle = bundle
        self.rootfs = rootfs
        # exec.fifo's read end, opened by `create` before forking: the
        # container's root user may be nobody on the host and unable to open it.
        self.fifo = fifo
        self.console = console
        self.preserve_fds = preserve_fds
        self.seccomp = seccomp  # the config's filter, compiled before forking
        # Joined by init first thing, or by stage 1 before it unshares a user
        # namespace (stage1_joins), and then init is born in it.
        self.cgroup = cgroup
        self.stage1_joins = stage1_joins


def _fail(chan: Channel, e: BaseException) -> None:
    message = _describe(e)
    try:
        chan.send("error", message=message)
    except OSError:
        print(f"skiff-runtime: {message}", file=sys.stderr)
    os._exit(1)


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename:
        return f"{e.strerror or e}: {e.filename}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror  # not "[Errno 11] ..."
    return str(e) or type(e).__name__


def stage1(chan: Channel, args: InitArgs) -> None:
    try:
        chan.recv("go")
        if args.cgroup is not None and args.stage1_joins:
            args.cgroup.join()
        linux = args.config.linux
        joined = {
            ns.type: os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
            for ns in linux.namespaces
            if ns.path
        }
        if "user" in joined:
            sc.setns(joined.pop("user"), sc.CLONE_NEWUSER)
        elif linux.namespace("user") is not None:
            sc.unshare(sc.CLONE_NEWUSER)
            chan.send("userns")
            chan.recv("mapped")
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        for kind in JOIN_ORDER:
            if kind in joined:
                fd = joined.pop(kind)
                sc.setns(fd, NS_FLAGS[kind])
                os.close(fd)
        flags = 0
        for ns in linux.namespaces:
            # A new cgroup namespace is init's own, made once it is in the cgroup.
            if not ns.path and ns.type not in ("user", "cgroup"):
                flags |= NS_FLAGS[ns.type]
        if flags:
            sc.unshare(flags)
        # init shares our end of the channel: it must not speak ("hooks")
        # before we have said "pid", or create reads them out of order. It
        # waits until we close `release` (or exit).
        hold, release = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(release)
            os.read(hold, 1)
            os.close(hold)
            init(chan, args)
        os.close(hold)
        chan.send("pid", pid=pid)
        os.close(release)
    except BaseException as e:
        _fail(chan, e)
    os._exit(0)


def init(chan: Channel, args: InitArgs) -> None:
    """Become the container: filesystem, identity, then exec the user's program."""
    try:
        config = args.config
        process = config.process
        assert process is not None
        if args.cgroup is not None and not args.stage1_joins:
            args.cgroup.join()
        cgroupns = config.linux.namespace("cgroup")
        if cgroupns is not None and not cgroupns.path:
            # Rooted at the cgroup of whoever unshares it: now, ours (as runc's
            # init unshares it once its parent has set the cgroup).
            sc.unshare(sc.CLONE_NEWCGROUP)
        # A session of its own: the container must not share our terminal's.
        os.setsid()
        if config.hostname:
            sc.sethostname(config.hostname)
        if config.domainname:
            sc.setdomainname(config.domainname)
        fifo = args.fifo

        from skiff.runtime import rootfs

        mounter = sc.Syscalls()
        rootfs.prepare_rootfs(config, args.rootfs, mounter, bundle=args.bundle)
        write_sysctls(config.linux.sysctl, args.rootfs)

        chan.send("hooks")
        msg = chan.recv("hooks-done")
        if config.hooks.createContainer:
            from skiff.runtime.hooks import run_hooks

            state = msg["state"]
            assert isinstance(state, dict)
            run_hooks("createContainer", config.hooks.createContainer, state)
        rootfs.enter_rootfs(config, args.rootfs, mounter)

        if process.terminal:
            setup_console(args.console, process)
        env = make_env(process)
        os.makedirs(process.cwd, exist_ok=True)
        os.chdir(process.cwd)
        path = find_executable(process.args, env)
        set_rlimits(process)
        become_the_process(process, config.linux.seccomp, args.seccomp)
        chan.send("ready")
        chan.close()
    except BaseException as e:
        _fail(chan, e)
    try:
        wait_for_start(fifo)
        if config.hooks.startContainer:
            from skiff.runtime.hooks import run_hooks

            run_hooks("startContainer", config.hooks.startContainer, {})
        assert process is not None
        exec_now(process, config.linux.seccomp, path, env, args.preserve_fds, args.seccomp)
    except BaseException as e:
        print(f"skiff-runtime: {_describe(e)}", file=sys.stderr)
        os._exit(127 if isinstance(e, FileNotFoundError) else 126)


def preload(config: RuntimeConfig, terminal: bool | None = None) -> None:
    """Import, before forking, all that the container's side will need.

    After pivot_root or setns(mnt) the host's Python library is out of sight,
    and in a user namespace the container's root may not even be allowed to
    read it, so nothing may be imported lazily on that side.
    """
    if terminal is None:
        terminal = config.process is not None and config.process.terminal
    preload_process(terminal, filtered=config.linux.seccomp is not None)
    import skiff.runtime.rootfs

    if config.hooks.startContainer or config.hooks.createContainer:
        import skiff.runtime.hooks  # noqa: F401
    if config.linux.seccomp is not None:
        from skiff.runtime import seccomp

        if not seccomp.can_load_programs():  # else the compiled program is loaded by syscall
            seccomp.libseccomp()


def preload_process(terminal: bool, filtered: bool) -> None:
    """What a container process needs after it left the host's mount namespace:
    rlimits, signals, identity, the console, loading a seccomp filter (`filtered`)."""
    import resource  # noqa: F401
    import select  # noqa: F401
    import signal  # noqa: F401

    import skiff.linux.capabilities

    if filtered:
        import skiff.linux.libc
        import skiff.runtime.seccomp  # noqa: F401
    if terminal:
        preload_console()


def preload_console() -> None:
    """What setup_console imports, for a process with a terminal."""
    import fcntl  # noqa: F401
    import socket  # noqa: F401
    import struct  # noqa: F401
    import termios  # noqa: F401


def write_sysctls(sysctl: dict[str, str], rootfs: str) -> None:
    for key, value in sysctl.items():
        if "/" in key or key.startswith(".") or ".." in key:
            raise ValueError(f"linux.sysctl: invalid key {key!r}")
        path = os.path.join(rootfs, "proc/sys", key.replace(".", "/"))
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise ValueError(f"linux.sysctl.{key}: {e.strerror}") from None


# ioctls from <asm-generic/ioctls.h>: unlock the pty, get its number.
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


def setup_console(
    console: socket.socket | None, process: Process, bind_console: bool = True
) -> None:
    """Open a pty in the container's devpts, send the master out, make the slave our tty."""
    import fcntl
    import termios

    if console is None:
        raise ValueError("process.terminal is set but there is no console socket")
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    # unlockpt: TIOCSPTLCK with 0; ptsname: TIOCGPTN.
    fcntl.ioctl(master, TIOCSPTLCK, b"\0\0\0\0")
    number = int.from_bytes(fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"), sys.byteorder)
    slave_path = f"/dev/pts/{number}"
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    if process.console_size:
        import struct

        rows, cols = process.console_size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    if bind_console:
        if not os.path.exists("/dev/console"):
            with open("/dev/console", "a"):
                pass
        sc.mount(slave_path, "/dev/console", "", sc.MS_BIND, None)
    import socket

    socket.send_fds(console, [b"\0"], [master])
    console.close()
    os.close(master)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def make_env(process: Process) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in process.env:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    if "HOME" not in env:
        env["HOME"] = home_of(process.user.uid)
    return env


def home_of(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def find_executable(args: list[str], env: dict[str, str]) -> str:
    if not args:
        raise ValueError("process.args: no program to run")
    name = args[0]
    if "/" in name:
        # Checked before `start`, as runc's exec.LookPath does, so that create
        # fails with runc's words: dockerd maps "permission denied" to exit
        # code 126 and "no such file or directory" to 127.
        try:
            mode = os.stat(name).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f'exec: "{name}": no such file or directory') from None
        if stat.S_ISDIR(mode) or not mode & 0o111:
            raise PermissionError(f'exec: "{name}": permission denied')
        return name
    for d in env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(
        ":"
    ):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f'exec: "{name}": executable file not found in $PATH')


RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip


def set_rlimits(process: Process) -> None:
    import resource

    for i, rl in enumerate(process.rlimits):
        # RLIM_INFINITY is 2**64-1 in the spec and -1 to Python.
        soft = resource.RLIM_INFINITY if rl.soft >= 2**63 else rl.soft
        hard = resource.RLIM_INFINITY if rl.hard >= 2**63 else rl.hard
        try:
            resource.setrlimit(RLIMITS[rl.type], (soft, hard))
        except (ValueError, OSError) as e:
            raise ValueError(f"process.rlimits[{i}] ({rl.type}): {e}") from None


def wait_for_start(fifo: int) -> None:
    """Block until `start` writes a byte into exec.fifo.

    The fifo was opened for reading without blocking, before pivot_root. poll()
    reports nothing on a fifo that never had a writer, so this sleeps until
    `start` opens it for writing; a writer that leaves without writing is
    ignored by reopening the read end.
    """
    import select

    poller = select.poll()
    poller.register(fifo, select.POLLIN)
    while True:
        poller.poll()
        try:
            if os.read(fifo, 1):
                break
        except BlockingIOError:
            continue
        poller.unregister(fifo)
        fifo = os.open(f"/proc/self/fd/{fifo}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        poller.register(fifo, select.POLLIN)
    os.close(fifo)


def become_the_process(
    process: Process, seccomp: Seccomp | None, seccomp_program: Program | None = None
) -> None:
    """Seccomp (when it must come first), user, groups, capabilities, umask, signals.

    The filter is `seccomp` (the config's) or `seccomp_program` (compiled from it
    before forking; exec may have only that); with neither there is none.

    Done before `ready` in create, as runc does: errors then fail `create`, and
    after `start` only the exec itself is left, so the program runs as soon as
    `start` returns (a signal sent right after `start` finds it, not us).
    """
    from skiff.linux.capabilities import switch_identity

    # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
    # identity switch may drop: load it first then, as runc does.
    filtered = seccomp is not None or seccomp_program is not None
    if filtered and not process.no_new_privileges:
        from skiff.runtime.seccomp import load_seccomp

        load_seccomp(seccomp, seccomp_program)
    switch_identity(
        process.capabilities,
        process.user.uid,
        process.user.gid,
        process.user.additional_gids,
        process.no_new_privileges,
    )
    os.umask(process.user.umask if process.user.umask is not None else 0o022)
    # Python ignores SIGPIPE and SIGXFSZ; the container's program must not inherit that.
    import signal

    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def exec_now(
    process: Process,
    seccomp: Seccomp | None,
    path: str,
    env: dict[str, str],
    preserve_fds: int,
    seccomp_program: Program | None = None,
) -> None:
    """The last steps: seccomp under no_new_privs (as late as possible), fds, execve."""
    if (seccomp is not None or seccomp_program is not None) and process.no_new_privileges:
        from skiff.runtime.seccomp import load_seccomp

        load_seccomp(seccomp, seccomp_program)
    keep = 3 + preserve_fds
    if keep < 65536:
        os.closerange(keep, 65536)
    for fd in range(3, keep):
        os.set_inheritable(fd, True)
    os.execve(path, process.args, env)


def finish_and_exec(
    process: Process,
    seccomp: Seccomp | None,
    path: str,
    env: dict[str, str],
    preserve_fds: int,
    seccomp_program: Program | None = None,
) -> None:
    """`seccomp_program`: the filter, compiled already (not loaded), or None."""
    become_the_process(process, seccomp, seccomp_program)
    exec_now(process, seccomp, path, env, preserve_fds, seccomp_program)
