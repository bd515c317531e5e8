"""The stdio of a container's process as its shim holds it: pipes or a pty master.

A `Proc` is the init or an exec. Its output goes to the json-file log (the
init's only) and, framed, to every attached client; a client that reads too
slowly pauses the reading of the output (and so, once the pipe is full, the
process) instead of making the shim buffer without end. It is finished once
it has been reaped and its output has ended (or DRAIN_TIMEOUT after the exit,
when something else still holds the output open).
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import termios

from skiff.shim import protocol as p
from skiff.shim.jsonfile import JsonFileWriter, LineSplitter
from skiff.shim.loop import READ, WRITE, Handler, Timer

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.shim.conn import Conn
    from skiff.shim.server import Shim

HIGH_WATER = 256 * 1024  # output queued for a slow client before the container is paused
DRAIN_TIMEOUT = 2.0  # how long output may stay open after its process exited


def exit_code_of(status: int) -> int:
    """Docker's convention: the exit status, or 128 + the signal that killed it."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Output(Handler):
    """A pipe the process writes its stdout or stderr to."""

    def __init__(self, proc: Proc, fd: int, kind: int) -> None:
        self.proc = proc
        self.fd = fd
        self.kind = kind

    def events(self) -> int:
        return 0 if self.proc.output_paused() else READ

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.proc.deliver(self.kind, data)
        else:
            self.proc.output_closed(self)

    def close(self) -> None:
        if self.fd >= 0:
            self.proc.shim.loop.forget(self)
            os.close(self.fd)
            self.fd = -1


class Stdin(Handler):
    """The write end of the process's stdin pipe, buffered."""

    def __init__(self, proc: Proc, fd: int) -> None:
        self.proc = proc
        self.fd = fd
        self.buf = bytearray()
        self.closing = False

    def events(self) -> int:
        return WRITE if self.buf else 0

    def write(self, data: bytes) -> None:
        if self.fd < 0 or self.closing:
            return
        self.buf += data
        self.on_writable()

    def on_writable(self) -> None:
        try:
            while self.buf:
                n = os.write(self.fd, self.buf)
                del self.buf[:n]
        except BlockingIOError:
            pass
        except OSError:  # nobody reads any more (EPIPE): drop what is left
            self.buf.clear()
        if not self.buf and self.closing:
            self._close_now()
        else:
            self.proc.shim.loop.refresh(self)
        self.proc.stdin_drained()

    def close(self) -> None:
        """Close once what was written has gone in (stdin EOF for the process)."""
        self.closing = True
        if not self.buf:
            self._close_now()

    def _close_now(self) -> None:
        if self.fd >= 0:
            self.proc.shim.loop.forget(self)
            os.close(self.fd)
            self.fd = -1

    def full(self) -> bool:
        return len(self.buf) > HIGH_WATER


class Pty(Stdin):
    """The pty master: the process's output (all of it STDOUT) and its stdin."""

    def __init__(self, proc: Proc, fd: int) -> None:
        super().__init__(proc, fd)
        self.kind = p.STDOUT
        self.reading = True

    def events(self) -> int:
        events = WRITE if self.buf else 0
        if self.reading and not self.proc.output_paused():
            events |= READ
        return events

    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every holder of the pty's other side is gone
            data = b""
        if data:
            self.proc.deliver(p.STDOUT, data)
            return
        self.reading = False
        self.proc.output_closed(self)

    def close(self) -> None:
        # A tty has no stdin EOF to give: closing stdin of `-it` leaves it open.
        pass

    def close_all(self) -> None:
        self.reading = False
        self.buf.clear()
        self._close_now()

    def resize(self, height: int, width: int) -> None:
        if self.fd >= 0:
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


class Proc:
    """A process of the container that the shim holds the stdio of: the init or an exec."""

    def __init__(self, shim: Shim, exec_id: str, tty: bool, log: JsonFileWriter | None) -> None:
        self.shim = shim
        self.exec_id = exec_id
        self.tty = tty
        self.pid = 0
        self.outputs: list[Output | Pty] = []
        self.stdin: Stdin | None = None
        self.pty: Pty | None = None
        self.attachers: list[Conn] = []
        self.waiters: list[Conn] = []
        self.exit_code: int | None = None  # set when reaped
        self.finished = False  # reaped, output drained, everyone told
        self.ready_to_finish = True  # the init also waits for the runtime's delete
        self.drain_timer: Timer | None = None
        self.splitters: dict[int, LineSplitter] = {}
        if log is not None:

            def emit(stream: str, line: bytes, time_ns: int) -> None:
                log.write(stream, line, time_ns)

            self.splitters = {
                p.STDOUT: LineSplitter("stdout", emit),
                p.STDERR: LineSplitter("stderr", emit),
            }

    # stdio set-up

    def use_pipes(self, stdin_fd: int | None, stdout_fd: int, stderr_fd: int) -> None:
        for fd in (stdin_fd, stdout_fd, stderr_fd):
            if fd is not None:
                os.set_blocking(fd, False)
        if stdin_fd is not None:
            self.stdin = Stdin(self, stdin_fd)
        self.outputs = [Output(self, stdout_fd, p.STDOUT), Output(self, stderr_fd, p.STDERR)]

    def use_pty(self, master: int) -> None:
        os.set_blocking(master, False)
        self.pty = Pty(self, master)
        self.stdin = self.pty
        self.outputs = [self.pty]

    def watch(self) -> None:
        for out in self.outputs:
            self.shim.loop.refresh(out)

    # output

    def output_paused(self) -> bool:
        return any(len(c.out) > HIGH_WATER for c in self.attachers)

    def deliver(self, kind: int, data: bytes) -> None:
        splitter = self.splitters.get(kind)
        if splitter is not None:
            splitter.feed(data)
        if self.attachers:
            message = p.frame(kind, data)
            for conn in list(self.attachers):
                if conn.wants(kind):
                    conn.send(message)
            if self.output_paused():
                self.watch()

    def output_unpaused(self) -> None:
        if not self.output_paused():
            self.watch()

    def output_closed(self, out: Output | Pty) -> None:
        if isinstance(out, Output):
            out.close()
        else:
            self.shim.loop.refresh(out)
        splitter = self.splitters.get(out.kind)
        if splitter is not None and not any(o.kind == out.kind and o.fd >= 0 for o in self.outputs):
            splitter.close()
        self.maybe_finish()

    def outputs_open(self) -> bool:
        return any((o.reading if isinstance(o, Pty) else o.fd >= 0) for o in self.outputs)

    # stdin

    def write_stdin(self, data: bytes) -> None:
        if self.stdin is not None:
            self.stdin.write(data)

    def close_stdin(self) -> None:
        if self.stdin is not None:
            self.stdin.close()

    def stdin_full(self) -> bool:
        return self.stdin is not None and self.stdin.full()

    def stdin_drained(self) -> None:
        if not self.stdin_full():
            for conn in self.attachers:
                self.shim.loop.refresh(conn)

    # exit

    def reaped(self, status: int) -> None:
        self.exit_code = exit_code_of(status)
        self.maybe_finish()

    def maybe_finish(self) -> None:
        if self.finished or self.exit_code is None or not self.ready_to_finish:
            return
        if not self.outputs_open():
            self.finish()
        elif self.drain_timer is None:
            self.drain_timer = self.shim.loop.call_later(DRAIN_TIMEOUT, self.force_finish)

    def force_finish(self) -> None:
        """The process exited but something still holds its output open: stop waiting."""
        for out in self.outputs:
            for _ in range(64):  # take what is already in the pipe, then give up
                if out.fd < 0 or self.finished or not self.outputs_open():
                    break
                before = out.fd
                out.on_readable()
                if out.fd == before and not _readable(out.fd):
                    break
        self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if self.drain_timer is not None:
            self.drain_timer.cancel()
        for splitter in self.splitters.values():
            splitter.close()
        for out in self.outputs:
            if isinstance(out, Pty):
                out.close_all()
            else:
                out.close()
        if self.stdin is not None and not isinstance(self.stdin, Pty):
            self.stdin.buf.clear()
            self.stdin.close()
        code = self.exit_code if self.exit_code is not None else 255
        self.shim.proc_finished(self)
        message = p.frame_json(p.EXIT, {"exit_code": code})
        for conn in list(self.attachers):
            conn.send(message)
            conn.close_after_flush()
        self.attachers.clear()

    def state(self) -> p.ExecState:
        running = self.exit_code is None and self.pid > 0
        return p.ExecState(self.exec_id, self.pid, running, self.exit_code)


def _readable(fd: int) -> bool:
    return fd >= 0 and bool(select.select([fd], [], [], 0)[0])
