"""The shim: one small process that supervises one container.

It is forked by the shim parent (skiff.shim.parent) and detached from it:

    shim parent ──fork──▶ child: reads the request, ──fork──▶ shim (this module;
                           setsid, exits at once              re-parented away from
                                                              parent and skiffd)

Then, in the container's folder (its working directory):

    shim                                skiff-runtime                container
    ────                                ─────────────                ─────────
    subreaper; bind shim.sock
    pipes (or console.sock) ───────────▶ create --pid-file init.pid ─▶ init waits
    read init.pid (+ pty master)  ◀──── exits                         (re-parented
    reply to the spawner                                               to the shim)
    "start" ───────────────────────────▶ start ─────────────────────▶ runs
    stdout/stderr ──▶ log.json + attachers                 ◀───────── output
    SIGCHLD: reap init, read the memory
    cgroup's oom_kill count ───────────▶ delete --force (leftovers, cgroup)
    drain output, write exit.json, answer waiters, send EXIT to attachers
    "start" again ─────────────────────▶ create + start (a restart)
    "shutdown" ──▶ remove shim.sock, exit

Every runtime command runs as a child the loop reaps, so the shim keeps
serving while one runs. The protocol is in skiff.shim.protocol; the stdio of
the init and of execs in skiff.shim.stdio; client connections in skiff.shim.conn.
"""

from __future__ import annotations

# Imported here, not where used: the shim parent imports this module before it
# forks, so every shim shares these modules instead of loading its own copies.
import _signal  # type: ignore[import-not-found]  # the wrappers in signal.py convert to enums
import _socket
import ctypes
import errno
import json
import os
import signal
import socket
import sys
import time

from skiff.cgroups import oom
from skiff.errors import Conflict, InvalidArgument, NotFound, NotModified
from skiff.linux.libc import check, libc
from skiff.shim import protocol as p
from skiff.shim.conn import Conn, Listener
from skiff.shim.jsonfile import JsonFileWriter, LogOptions, format_time
from skiff.shim.loop import READ, Handler, Loop
from skiff.shim.protocol import Layout
from skiff.shim.stdio import Proc, exit_code_of

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

KEEP_EXECS = 64  # finished execs remembered for exec-state
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
# Ignored by the shim, reset to default in the runtime it runs (SIGPIPE: Python ignores it).
IGNORED_SIGNALS = (
    signal.SIGPIPE, signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
)  # fmt: skip
# The default runtime runs in a fork of the shim, which has it imported already,
# rather than in a new interpreter: a fresh interpreter and its imports cost about
# 50 ms per command, and `run` waits on create, start and delete in turn.
IN_PROCESS_RUNTIME = (sys.executable, "-m", "skiff.runtime.cli.main")
IN_PROCESS_COMMANDS = ("create", "start", "exec", "kill", "delete", "pause", "resume")
# What those commands import, loaded once in the shim parent so that every shim
# (and every fork of one) shares the pages instead of importing its own copies.
RUNTIME_MODULES = (
    "fcntl", "hashlib", "resource", "select", "struct", "termios",
    "skiff.cgroups.manager", "skiff.cgroups.v1", "skiff.cgroups.v2",
    "skiff.linux.capabilities", "skiff.linux.syscalls",
    "skiff.oci.runtime_spec", "skiff.oci.spec_reader",
    "skiff.runtime.control", "skiff.runtime.create", "skiff.runtime.execute",
    "skiff.runtime.foreground",
    "skiff.runtime.hooks", "skiff.runtime.init", "skiff.runtime.rootfs",
    "skiff.runtime.seccomp", "skiff.runtime.state", "skiff.runtime.sync",
    "skiff.runtime.cli.main", "skiff.runtime.cli.create", "skiff.runtime.cli.start",
    "skiff.runtime.cli.exec_", "skiff.runtime.cli.kill", "skiff.runtime.cli.delete",
    "skiff.runtime.cli.pause",
)  # fmt: skip


def now() -> str:
    return format_time(time.time_ns())


def write_atomic(path: str, data: bytes, sync: bool = True) -> None:
    """`sync=False` for a file nothing needs after a crash (an exec's spec, read
    once by the runtime and removed): fsync there only adds a disk wait."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def parse_signal(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65:
        return value
    if isinstance(value, str):
        if value.isdigit():
            return parse_signal(int(value))
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        sig = getattr(signal.Signals, name, None)
        if sig is not None:
            return int(sig)
    raise InvalidArgument(f"invalid signal: {value!r}")


class Reaper(Handler):
    """The self-pipe SIGCHLD writes to: reap every child that exited."""

    def __init__(self, shim: Shim) -> None:
        self.shim = shim
        rd, wr = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.fd, self.wr = rd, wr
        _signal.set_wakeup_fd(wr, warn_on_full_buffer=False)
        _signal.signal(signal.SIGCHLD, _ignore)

    def events(self) -> int:
        return READ

    def on_readable(self) -> None:
        try:
            while os.read(self.fd, 512):
                pass
        except BlockingIOError:
            pass
        self.shim.reap()


class RuntimeCall(Handler):
    """A runtime command the shim waits for; `done` gets None or its error, once.

    An in-process command writes its exit code to a pipe (this handler's fd) just
    before it exits: the caller need not wait for its teardown, the unmapping of
    a fork of the shim, and the SIGCHLD after it (a millisecond and a half). A
    command that dies without writing, or a spawned runtime, ends at the reap.
    """

    def __init__(self, shim: Shim, command: str, done: Callable[[Exception | None], None]) -> None:
        self.shim = shim
        self.command = command
        self.done: Callable[[Exception | None], None] | None = done
        self.log = shim.files.path(Layout.RUNTIME_LOG)
        try:
            self.log_start = os.stat(self.log).st_size
        except FileNotFoundError:
            self.log_start = 0

    def events(self) -> int:
        return READ

    def watch(self, fd: int) -> None:
        self.fd = fd
        self.shim.loop.refresh(self)

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, 1)
        except OSError:
            data = b""
        self._close()
        if data:
            self._finish(data[0])

    def exited(self, status: int) -> None:
        self._close()
        self._finish(exit_code_of(status))

    def _close(self) -> None:
        if self.fd >= 0:
            self.shim.loop.forget(self)
            os.close(self.fd)
            self.fd = -1

    def _finish(self, code: int) -> None:
        done, self.done = self.done, None
        if done is not None:
            done(
                None if code == 0 else _runtime_error(self.log, self.log_start, self.command, code)
            )


class OomEvents(Handler):
    """The kernel's OOM notifications for the init's v1 memory cgroup: an eventfd
    registered through cgroup.event_control with memory.oom_control, as
    containerd's shim listens for them. Each wake-up is one `oom` event (a read
    takes every notification pending). Removing the cgroup signals it too, so the
    shim stops listening before `delete`; cgroup v2 has no such file."""

    def __init__(self, shim: Shim, control_file: str) -> None:
        self.shim = shim
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            target = os.open(control_file, os.O_RDONLY | os.O_CLOEXEC)
            try:
                events = os.path.join(os.path.dirname(control_file), "cgroup.event_control")
                fd = os.open(events, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, f"{efd} {target}".encode())
                finally:
                    os.close(fd)
            finally:
                os.close(target)  # the registration holds what it needs
        except OSError:
            os.close(efd)
            raise
        self.fd = efd

    def events(self) -> int:
        return READ

    def on_readable(self) -> None:
        if self.take():
            self.shim.oom_happened()

    def take(self) -> bool:
        """Whether a notification was pending (read now)."""
        try:
            return os.eventfd_read(self.fd) > 0
        except OSError:  # nothing pending (EAGAIN)
            return False

    def close(self) -> None:
        if self.fd >= 0:
            self.shim.loop.forget(self)
            os.close(self.fd)
            self.fd = -1


# --- the shim -------------------------------------------------------------------


class Shim:
    def __init__(self, req: p.SpawnRequest, loop: Loop) -> None:
        self.req = req
        self.loop = loop
        self.files = Layout(req.dir)
        options = LogOptions.from_dict(req.log)
        if not options.path:
            options.path = self.files.path(Layout.LOG)
        self.writer = JsonFileWriter(options) if options.driver != "none" else None
        self.status = p.CREATING
        self.init: Proc | None = None
        self.execs: dict[str, Proc] = {}
        self.waiting_attachers: list[Conn] = []
        self.waiters: list[tuple[Conn, int]] = []
        self.runs = 0
        self.last_exit: p.ExitStatus | None = None
        self.started_at = ""
        self.finished_at = ""
        # The init's OOM-kill counter (a file of its memory cgroup) and its value at
        # create; the cgroup is gone after `delete`, so the count is taken before.
        self.oom_file = ""
        self.oom_base = 0
        self.oom_killed = False
        self.oom_watch: OomEvents | None = None
        self.oom_events = 0  # notifications this run
        self.oom_waiters: list[Conn] = []
        self.busy = ""  # a runtime command in flight that changes the state
        self.children: dict[int, Callable[[int], None]] = {}
        self.orphans: dict[int, int] = {}  # reaped before we knew whose they were
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.console_count = 0

    # requests

    def handle(self, conn: Conn, line: bytes) -> None:
        try:
            msg = p.decode(line)
            op = OPS.get(str(msg.get("op")))
            if op is None:
                raise InvalidArgument(f"unknown op: {msg.get('op')!r}")
            reply = op(self, conn, msg)
        except Exception as e:
            reply = p.error_reply(e)
        if reply is not None:
            conn.reply(reply)

    def state(self) -> p.ShimState:
        init = self.init
        alive = init is not None and init.exit_code is None
        last = self.last_exit
        return p.ShimState(
            id=self.req.id,
            status=self.status,
            pid=init.pid if init is not None and alive else 0,
            shim_pid=os.getpid(),
            exit_code=last.exit_code if last else None,
            started_at=self.started_at,
            finished_at=last.finished_at if last else "",
            runs=self.runs,
            tty=self.req.tty,
            stdin=self.req.stdin,
        )

    def ok_state(self) -> dict[str, object]:
        return {"ok": True, **self.state().to_dict()}

    def op_state(self, conn: Conn, msg: dict[str, object]) -> dict[str, object]:
        return self.ok_state()

    def not_busy(self) -> None:
        if self.busy:
            raise Conflict(f"container {self.req.id} is busy: {self.busy}")

    def op_start(self, conn: Conn, msg: dict[str, object]) -> None:
        self.not_busy()
        if self.status in (p.RUNNING, p.PAUSED):
            raise NotModified(f"container {self.req.id} is already running")
        if self.status not in (p.CREATED, p.STOPPED):
            raise Conflict(f"cannot start container {self.req.id}: it is {self.status}")

        def started(error: Exception | None) -> None:
            conn.reply(p.error_reply(error) if error else self.ok_state())

        if self.status == p.STOPPED:
            self.create(lambda error: started(error) if error else self.start(started))
        else:
            self.start(started)

    def op_kill(self, conn: Conn, msg: dict[str, object]) -> dict[str, object] | None:
        sig = parse_signal(msg.get("signal", "SIGTERM"))
        init = self.init
        if init is None or init.exit_code is not None or init.pid <= 0:
            raise Conflict(f"container {self.req.id} is not running")
        if msg.get("all"):

            def killed(error: Exception | None) -> None:
                conn.reply(p.error_reply(error) if error else {"ok": True})

            self.runtime(["kill", "--all", self.req.id, str(sig)], killed)
            return None
        # The init is our child until we reap it, so its pid cannot be reused yet.
        os.kill(init.pid, sig)
        return {"ok": True}

    def op_wait(self, conn: Conn, msg: dict[str, object]) -> dict[str, object] | None:
        if self.status == p.STOPPED and not msg.get("next") and self.last_exit is not None:
            return {"ok": True, **self.last_exit.to_dict()}
        conn.mode = "waiting"
        self.waiters.append((conn, self.runs + 1))
        return None

    def op_attach(self, conn: Conn, msg: dict[str, object]) -> None:
        conn.stdin = bool(msg.get("stdin")) and self.req.stdin
        conn.stdout = bool(msg.get("stdout", True))
        conn.stderr = bool(msg.get("stderr", True))
        conn.stdin_once = bool(msg.get("stdin_once"))
        conn.reply({"ok": True, "tty": self.req.tty})
        init = self.init
        if init is not None and not init.finished and self.status != p.EXITING:
            conn.become_stream(init)
            init.attachers.append(conn)
        else:  # stopped: wait for the next run
            conn.become_stream(None)
            self.waiting_attachers.append(conn)

    def target(self, msg: dict[str, object]) -> Proc:
        exec_id = msg.get("exec_id")
        if exec_id:
            proc = self.execs.get(str(exec_id))
            if proc is None:
                raise NotFound(f"no such exec: {exec_id}")
            return proc
        if self.init is None:
            raise Conflict(f"container {self.req.id} is not running")
        return self.init

    def op_resize(self, conn: Conn, msg: dict[str, object]) -> dict[str, object]:
        proc = self.target(msg)
        height, width = msg.get("height"), msg.get("width")
        if not (isinstance(height, int) and isinstance(width, int)) or height < 0 or width < 0:
            raise InvalidArgument("resize: height and width are counts of characters")
        if proc.pty is None:
            raise Conflict("the process has no tty to resize")
        proc.pty.resize(height, width)
        return {"ok": True}

    def op_close_stdin(self, conn: Conn, msg: dict[str, object]) -> dict[str, object]:
        self.target(msg).close_stdin()
        return {"ok": True}

    def op_pause(self, conn: Conn, msg: dict[str, object]) -> None:
        self.pause_resume(conn, "pause", p.RUNNING, p.PAUSED)

    def op_resume(self, conn: Conn, msg: dict[str, object]) -> None:
        self.pause_resume(conn, "resume", p.PAUSED, p.RUNNING)

    def pause_resume(self, conn: Conn, command: str, before: str, after: str) -> None:
        self.not_busy()
        if self.status != before:
            raise Conflict(f"cannot {command} container {self.req.id}: it is {self.status}")
        self.busy = command

        def done(error: Exception | None) -> None:
            self.busy = ""
            if error is None and self.status == before:
                self.status = after
            conn.reply(p.error_reply(error) if error else self.ok_state())

        self.runtime([command, self.req.id], done)

    def op_shutdown(self, conn: Conn, msg: dict[str, object]) -> None:
        self.not_busy()
        if self.status not in (p.CREATED, p.STOPPED):
            raise Conflict(f"cannot shut the shim down: container {self.req.id} is {self.status}")

        def bye(error: Exception | None = None) -> None:
            if error is not None:
                conn.reply(p.error_reply(error))
                return
            self.exit(conn, {"ok": True})

        if self.status == p.CREATED:
            self.busy = "shutdown"
            self.runtime(["delete", "--force", self.req.id], bye)
        else:
            bye()

    # exec

    def op_exec(self, conn: Conn, msg: dict[str, object]) -> None:
        exec_id = msg.get("exec_id")
        if not isinstance(exec_id, str) or not exec_id.replace("-", "").isalnum():
            raise InvalidArgument("exec_id: letters, digits and dashes")
        if exec_id in self.execs:
            raise Conflict(f"exec {exec_id} exists")
        process = msg.get("process")
        if not isinstance(process, dict):
            raise InvalidArgument("process: expected an OCI process object")
        if self.status != p.RUNNING:
            raise Conflict(f"container {self.req.id} is not running")
        tty = bool(process.get("terminal"))
        attach = bool(msg.get("attach"))
        proc = Proc(self, exec_id, tty, None)
        self.execs[exec_id] = proc
        spec_file = self.files.path(f"exec-{exec_id}.json")
        pid_file = self.files.path(f"exec-{exec_id}.pid")
        write_atomic(spec_file, p.dumps(process).encode(), sync=False)
        args = ["exec", "--process", spec_file, "--detach", "--pid-file", pid_file]

        def done(error: Exception | None) -> None:
            for name in (spec_file, pid_file):
                try:
                    os.unlink(name)
                except FileNotFoundError:
                    pass
            if error is None:
                try:
                    proc.pid = int(pid)
                except ValueError:
                    error = OSError(f"no pid for exec {exec_id}")
            if error is not None:
                del self.execs[exec_id]
                proc.finished = True
                conn.reply(p.error_reply(error))
                return
            conn.reply({"ok": True, "pid": proc.pid})
            if attach:
                conn.stdin = bool(msg.get("stdin"))
                conn.stdout = conn.stderr = True
                conn.stdin_once = True
                conn.become_stream(proc)
                proc.attachers.append(conn)
            self.adopt(proc)

        pid = ""

        def read_pid(error: Exception | None) -> None:
            nonlocal pid
            if error is None:
                pid = _read(pid_file)
            done(error)

        self.with_stdio(proc, bool(msg.get("stdin")), args, read_pid)

    def op_exec_state(self, conn: Conn, msg: dict[str, object]) -> dict[str, object]:
        proc = self.target({"exec_id": msg.get("exec_id") or "-"})
        return {"ok": True, **proc.state().to_dict()}

    def op_wait_exec(self, conn: Conn, msg: dict[str, object]) -> dict[str, object] | None:
        proc = self.target({"exec_id": msg.get("exec_id") or "-"})
        if proc.finished:
            return {"ok": True, **proc.state().to_dict()}
        conn.mode = "waiting"
        conn.proc = proc
        proc.waiters.append(conn)
        return None

    # the container's lifecycle

    def create(self, done: Callable[[Exception | None], None]) -> None:
        """skiff-runtime create, with fresh stdio: the container waits for start."""
        self.busy = "create"
        self.status = p.CREATING
        for name in (Layout.INIT_PID, Layout.EXIT):
            try:
                os.unlink(self.files.path(name))
            except FileNotFoundError:
                pass
        proc = Proc(self, "", self.req.tty, self.writer)
        pid_file = self.files.path(Layout.INIT_PID)
        args = ["create", "--bundle", self.req.bundle, "--pid-file", pid_file]

        def created(error: Exception | None) -> None:
            self.busy = ""
            if error is None:
                try:
                    proc.pid = int(_read(pid_file))
                except ValueError:
                    error = OSError("the runtime wrote no init pid")
            if error is not None:
                self.status = p.STOPPED
                done(error)
                return
            proc.ready_to_finish = False  # until the runtime has deleted the container
            self.oom_file = oom.counter_file(proc.pid)
            self.oom_base = oom.oom_kills(self.oom_file)
            self.oom_events = 0
            if self.oom_file.endswith(oom.V1_FILE):
                try:
                    self.oom_watch = OomEvents(self, self.oom_file)
                    self.loop.refresh(self.oom_watch)
                except OSError:
                    self.oom_watch = None  # OOMs are still counted at exit
            self.init = proc
            proc.attachers, self.waiting_attachers = self.waiting_attachers, []
            for conn in proc.attachers:
                conn.proc = proc
                self.loop.refresh(conn)
            self.status = p.CREATED
            self.adopt(proc)
            done(None)

        self.with_stdio(proc, self.req.stdin, args, created)

    def with_stdio(
        self, proc: Proc, stdin: bool, args: list[str], done: Callable[[Exception | None], None]
    ) -> None:
        """Run `create` or `exec` (args) with new pipes, or a console socket for a tty."""
        if proc.tty:
            self.console_count += 1
            name = f"console-{self.console_count}.sock"
            console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            _unlink(name)
            console.bind(name)  # relative: the folder's path may be too long for a socket
            console.listen(1)
            path = self.files.path(name)
            args = [*args, "--console-socket", path if len(path) < 100 else name, self.req.id]

            def received(error: Exception | None) -> None:
                try:
                    if error is None:
                        proc.use_pty(_receive_master(console))
                except OSError as e:
                    error = e
                finally:
                    console.close()
                    _unlink(name)
                done(error)

            self.runtime(args, received)
            return
        child_ends: list[int] = []
        stdin_rd = stdin_wr = None
        if stdin:
            stdin_rd, stdin_wr = os.pipe2(os.O_CLOEXEC)
            child_ends.append(stdin_rd)
        out_rd, out_wr = os.pipe2(os.O_CLOEXEC)
        err_rd, err_wr = os.pipe2(os.O_CLOEXEC)
        child_ends += [out_wr, err_wr]
        stdio = (stdin_rd if stdin_rd is not None else self.devnull, out_wr, err_wr)

        def ran(error: Exception | None) -> None:
            if error is None:
                proc.use_pipes(stdin_wr, out_rd, err_rd)
            else:
                for fd in (stdin_wr, out_rd, err_rd):
                    if fd is not None:
                        os.close(fd)
            done(error)

        try:
            self.runtime([*args, self.req.id], ran, stdio)
        finally:
            for fd in child_ends:  # the runtime (and so the container) has its copies
                os.close(fd)

    def start(self, done: Callable[[Exception | None], None]) -> None:
        self.busy = "start"
        self.started_at = now()

        def started(error: Exception | None) -> None:
            self.busy = ""
            if error is None and self.status == p.CREATED:
                self.status = p.RUNNING
            done(error)

        self.runtime(["start", self.req.id], started)

    def adopt(self, proc: Proc) -> None:
        """Watch a new process: its output, and its exit (maybe reaped already)."""
        proc.watch()
        if proc.pid in self.orphans:
            self.exited(proc, self.orphans.pop(proc.pid))
        else:
            self.children[proc.pid] = lambda status: self.exited(proc, status)

    def exited(self, proc: Proc, status: int) -> None:
        if proc is self.init:
            self.status = p.EXITING
            self.finished_at = now()
            self.oom_killed = oom.oom_kills(self.oom_file) > self.oom_base
            watch, self.oom_watch = self.oom_watch, None
            if watch is not None:  # before delete removes the cgroup, which signals it
                if watch.take():
                    self.oom_happened()
                watch.close()

            def deleted(error: Exception | None) -> None:
                proc.ready_to_finish = True
                proc.maybe_finish()

            # Kill what is left of the container (its output then ends), free the cgroup.
            self.runtime(["delete", "--force", self.req.id], deleted)
        proc.reaped(status)

    def proc_finished(self, proc: Proc) -> None:
        code = proc.exit_code if proc.exit_code is not None else 255
        if proc is not self.init:
            for conn in proc.waiters:
                conn.mode = "request"
                conn.reply({"ok": True, **proc.state().to_dict()})
            proc.waiters.clear()
            finished = [e for e, x in self.execs.items() if x.finished]
            for exec_id in finished[: max(0, len(finished) - KEEP_EXECS)]:
                del self.execs[exec_id]
            return
        status = p.ExitStatus(
            code, self.started_at, self.finished_at, proc.pid, self.oom_killed, self.oom_events
        )
        write_atomic(self.files.path(Layout.EXIT), p.encode(status.to_dict()))
        self.last_exit = status
        self.runs += 1
        self.status = p.STOPPED
        reply = {"ok": True, **status.to_dict()}
        still = []
        for conn, target in self.waiters:
            if target <= self.runs:
                conn.mode = "request"
                conn.reply(reply)
            else:
                still.append((conn, target))
        self.waiters = still
        self.answer_oom_waiters()

    def oom_happened(self) -> None:
        self.oom_events += 1
        self.answer_oom_waiters()

    def op_oom_wait(self, conn: Conn, msg: dict[str, object]) -> dict[str, object] | None:
        """Answer once the run has had more than `seen` OOM notifications, or has
        ended: {"events": count this run, "stopped": bool}."""
        seen = msg.get("seen")
        if not isinstance(seen, int):
            raise InvalidArgument("seen: expected a number")
        if self.oom_events > seen or self.status == p.STOPPED:
            return self.oom_reply()
        conn.mode = "waiting"
        self.oom_waiters.append(conn)
        return None

    def oom_reply(self) -> dict[str, object]:
        return {"ok": True, "events": self.oom_events, "stopped": self.status == p.STOPPED}

    def answer_oom_waiters(self) -> None:
        waiters, self.oom_waiters = self.oom_waiters, []
        reply = self.oom_reply()
        for conn in waiters:
            conn.mode = "request"
            conn.reply(reply)

    def conn_closed(self, conn: Conn) -> None:
        if conn in self.oom_waiters:
            self.oom_waiters.remove(conn)
        if conn in self.waiting_attachers:
            self.waiting_attachers.remove(conn)
        self.waiters = [(c, t) for c, t in self.waiters if c is not conn]

    # children

    def runtime(
        self,
        args: list[str],
        done: Callable[[Exception | None], None],
        stdio: tuple[int, int, int] | None = None,
    ) -> None:
        """Run the runtime as a child; `done` gets None or the error it logged."""
        call = RuntimeCall(self, args[0], done)
        argv = [*self.req.runtime, "--root", self.req.runtime_root, "--log", call.log]
        argv += ["--log-format", "json", *args]
        fds = stdio or (self.devnull, self.devnull, self.devnull)
        actions = [(os.POSIX_SPAWN_DUP2, fd, i) for i, fd in enumerate(fds)]
        try:
            if tuple(self.req.runtime) == IN_PROCESS_RUNTIME and args[0] in IN_PROCESS_COMMANDS:
                rd, wr = os.pipe2(os.O_CLOEXEC)
                try:
                    pid = os.fork()
                except OSError:
                    os.close(rd)
                    os.close(wr)
                    raise
                if pid == 0:
                    os.close(rd)
                    _runtime_in_child(argv[len(IN_PROCESS_RUNTIME) :], fds, wr)  # never returns
                os.close(wr)
                call.watch(rd)
            else:
                pid = os.posix_spawnp(
                    argv[0], argv, os.environ, file_actions=actions, setsigdef=IGNORED_SIGNALS
                )
        except OSError as e:
            done(OSError(e.errno, f"cannot run {argv[0]}: {e.strerror}"))
            return
        self.children[pid] = call.exited

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            callback = self.children.pop(pid, None)
            if callback is not None:
                callback(status)
            else:
                self.orphans[pid] = status
                if len(self.orphans) > 256:
                    del self.orphans[next(iter(self.orphans))]

    def exit(self, conn: Conn | None = None, reply: dict[str, object] | None = None) -> None:
        """Remove the socket, then answer `conn` (so a client that got the answer finds
        no socket), then end."""
        for name in (Layout.SOCKET, Layout.PID):
            _unlink(self.files.path(name))
        if self.writer is not None:
            self.writer.close()
        if conn is not None and reply is not None:
            conn.sock.setblocking(True)
            try:
                conn.sock.sendall(bytes(conn.out) + p.encode(reply))
            except OSError:
                pass
        os._exit(0)


# The requests a shim serves. A table of the class's functions, made once in the
# shim parent: one of bound methods made per shim would write to every function.
OPS: dict[str, Callable[[Shim, Conn, dict[str, object]], dict[str, object] | None]] = {
    "state": Shim.op_state,
    "start": Shim.op_start,
    "kill": Shim.op_kill,
    "wait": Shim.op_wait,
    "oom-wait": Shim.op_oom_wait,
    "attach": Shim.op_attach,
    "resize": Shim.op_resize,
    "close-stdin": Shim.op_close_stdin,
    "exec": Shim.op_exec,
    "exec-state": Shim.op_exec_state,
    "wait-exec": Shim.op_wait_exec,
    "pause": Shim.op_pause,
    "resume": Shim.op_resume,
    "shutdown": Shim.op_shutdown,
}


def _read(path: str) -> str:
    """A small file's text, stripped; "" if it cannot be read. Bytes, not a text
    file: that would run the codecs machinery's Python code in the shim."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        return os.read(fd, 4096).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _receive_master(console: socket.socket) -> int:
    console.setblocking(False)
    try:
        conn, _ = console.accept()
    except BlockingIOError:
        raise OSError(errno.EPIPE, "the runtime did not connect to the console socket") from None
    with conn:
        conn.settimeout(5)
        _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    if not fds:
        raise OSError(errno.EPIPE, "the runtime sent no pty master")
    os.set_inheritable(fds[0], False)  # recv_fds does not ask for close-on-exec
    return fds[0]


def _runtime_error(log: str, start: int, command: str, code: int) -> Exception:
    """The runtime's last logged error after `start`, as the category it reads as."""
    message = ""
    try:
        with open(log, "rb") as f:
            f.seek(start)
            for line in f.read().splitlines():
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and doc.get("level") == "error":
                    message = str(doc.get("msg", ""))
    except OSError:
        pass
    if not message:
        message = f"skiff-runtime {command} failed with exit status {code}"
    if "not running" in message or "exists" in message or "cannot" in message:
        return Conflict(message)
    return OSError(message)


def _runtime_in_child(argv: list[str], fds: tuple[int, int, int], report: int) -> None:
    """In a fork of the shim: what `python -m skiff.runtime.cli.main ARGV` would do,
    without starting an interpreter and importing the runtime again. The process
    is left as a new interpreter's would be: stdio on `fds`, the shim's signal
    handling undone (Python's own defaults: SIGPIPE and SIGXFSZ ignored, SIGINT
    raises KeyboardInterrupt). Every descriptor the shim has open is close-on-exec.
    The exit code is also written to `report`, once stdout and stderr are flushed."""
    code = 1
    try:
        _signal.set_wakeup_fd(-1)
        for sig in (*IGNORED_SIGNALS, signal.SIGCHLD):
            _signal.signal(sig, _signal.SIG_DFL)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):
            _signal.signal(sig, _signal.SIG_IGN)
        _signal.signal(signal.SIGINT, _signal.default_int_handler)
        for i, fd in enumerate(fds):
            if fd == i:
                os.set_inheritable(fd, True)
            else:
                os.dup2(fd, i)
        from skiff.runtime.cli.main import main

        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        try:
            os.write(report, bytes([code & 0xFF]))
        except OSError:
            pass
        os._exit(code & 0xFF)


def preload_runtime() -> None:
    """Import what the in-process runtime commands use, so that every shim shares it."""
    import importlib

    _import_threading_without_fork_hook()
    for name in RUNTIME_MODULES:
        importlib.import_module(name)


def _import_threading_without_fork_hook() -> None:
    """Import `threading` (the runtime's hooks import subprocess, which imports it)
    without the after-fork handler it registers.

    That handler runs in every child of a fork: in the shim parent's spawner, in
    each shim and in each of its runtime commands. It re-creates the thread
    bookkeeping (locks, the main thread's record, a WeakSet) for the one thread
    left, which only matters when other threads existed at the fork; the shim
    parent and everything forked from it are single-threaded. Run in each shim,
    it wrote 150-200 KiB of pages shared with the parent, near a tenth of a shim.
    """
    if "threading" in sys.modules:
        return
    register = os.register_at_fork
    os.register_at_fork = _no_fork_hook
    try:
        import threading  # noqa: F401
    finally:
        os.register_at_fork = register


def _no_fork_hook(**_: object) -> None:
    pass


# --- the process ------------------------------------------------------------------


def serve(req: p.SpawnRequest, reply: _socket.socket) -> None:
    """The body of a forked shim: never returns. `reply` gets the create's outcome."""
    os.chdir(req.dir)
    _become_subreaper()
    # Only SIGKILL or "shutdown" ends a shim: its container would be orphaned.
    for sig in IGNORED_SIGNALS:
        _signal.signal(sig, _signal.SIG_IGN)
    _unlink(Layout.SOCKET)
    listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    listener.bind(Layout.SOCKET)
    listener.listen(64)
    # Not fsynced: both describe this process, which does not outlive a reboot.
    write_atomic(Layout.PID, str(os.getpid()).encode(), sync=False)
    write_atomic(Layout.CONFIG, p.encode(req.to_dict()), sync=False)
    loop = Loop()
    shim = Shim(req, loop)
    loop.refresh(Listener(shim, listener))
    loop.refresh(Reaper(shim))

    def created(error: Exception | None) -> None:
        doc = p.error_reply(error) if error else shim.ok_state()
        if error is not None:  # gone before the spawner hears of it
            _unlink(Layout.SOCKET)
            _unlink(Layout.PID)
        try:
            reply.setblocking(True)
            reply.sendall(p.encode(doc))
        except OSError:
            pass
        reply.close()
        if error is not None:
            shim.exit()

    shim.create(created)
    loop.run()
    os._exit(0)


def _ignore(*_: object) -> None:
    pass


def _become_subreaper() -> None:
    check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def warm_up(rounds: int = 12) -> None:
    """Run the shim's common paths in the shim parent, before it forks.

    CPython 3.11 rewrites a function's bytecode in place after its first calls
    (quickening) and fills caches lazily; done once here, that writing happens
    in the parent's pages, not again in each shim's private copy of them.
    The runtime is imported first: its classes would otherwise evict the
    shim's entries from the interpreter's type attribute cache.
    """
    preload_runtime()
    folder = f"/tmp/skiff-shim-warm-{os.getpid()}"
    os.mkdir(folder, 0o700)
    try:
        _warm_up(folder, rounds)
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)
    # The first ctypes call sets up what every later one uses (not the subreaper
    # itself: the parent must not become one, or shims would be re-parented to it).
    value = ctypes.c_int()
    libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0)
    oom.oom_kills(oom.counter_file(os.getpid()))  # finds the hierarchy's mount once, for all


def _warm_up(folder: str, rounds: int) -> None:
    req = p.SpawnRequest("warm", folder, folder, ["true"], folder, log={"max_size": 1 << 20})
    loop = Loop()
    shim = Shim(req, loop)
    ours, theirs = _socket.socketpair()
    conn = Conn(shim, ours)
    proc = Proc(shim, "", False, shim.writer)
    out_rd, out_wr = os.pipe2(os.O_CLOEXEC)
    proc.use_pipes(None, out_rd, os.dup(out_rd))
    proc.watch()
    conn.become_stream(proc)
    conn.stdout = conn.stderr = True
    proc.attachers.append(conn)
    theirs.setblocking(False)
    listener = Listener(shim, _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM))
    listener.sock.bind(os.path.join(folder, Layout.SOCKET))
    listener.sock.listen(1)
    for i in range(rounds):
        _warm_up_client(listener, loop)
        write_atomic(os.path.join(folder, Layout.PID), b"%d" % i, sync=False)
        _read(os.path.join(folder, Layout.PID))
        shim.reap()
        conn.mode = "request"
        shim.handle(conn, p.encode({"op": "state"}))
        shim.handle(conn, p.encode({"op": "nope"}))
        conn.mode = "stream"
        os.write(out_wr, b"warm %d\nup" % i)
        for out in proc.outputs:
            out.on_readable()
        conn.on_stream_data(p.frame(p.STDIN, b"x") + p.frame_json(p.RESIZE, {"height": 1}))
        try:
            while theirs.recv(65536):
                pass
        except BlockingIOError:
            pass
        p.check_reply(p.decode(p.encode(shim.ok_state())))
        p.ExitStatus.from_dict(p.ExitStatus(i, now(), now(), i).to_dict())
        p.SpawnRequest.from_dict(req.to_dict())
        parse_signal("SIGKILL")
        parse_signal(15)
        exit_code_of(i << 8)
        loop.call_later(0, lambda: None).cancel()
    for out in proc.outputs:
        out.close()
    os.close(out_wr)
    conn.close()
    theirs.close()
    listener.sock.close()
    if shim.writer is not None:
        shim.writer.close()
    os.close(shim.devnull)
    loop.close()


def _warm_up_client(listener: Listener, loop: Loop) -> None:
    """One client's visit: accepted, a request answered, its end seen, closed."""
    client = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    client.connect(listener.sock.getsockname())
    before = loop.handlers()
    listener.on_readable()
    served = [h for h in loop.handlers() if isinstance(h, Conn) and h not in before]
    client.sendall(p.encode({"op": "state"}))
    for conn in served:
        conn.on_readable()
    client.recv(65536)
    client.close()
    for conn in served:
        conn.on_readable()
