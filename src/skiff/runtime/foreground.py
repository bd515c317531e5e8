"""Staying with a container in the foreground: `run` and `exec` without --detach.

The runtime waits for the container's process, forwards the signals it gets
to it, and, with a terminal but no --console-socket, relays its own stdio to
the container's pty (in raw mode when its stdin is a terminal). It is a child
subreaper, so the container's init (a grandchild) is re-parented to it and
can be waited for.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

FORWARDED = (
    signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
    signal.SIGUSR2, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
    signal.SIGALRM, signal.SIGPIPE,
)  # fmt: skip

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    from skiff.linux.libc import check, libc

    check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")


def console_pair() -> tuple[socket.socket, socket.socket]:
    """(ours, theirs): the container sends its pty master through `theirs`."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def connect_console_socket(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"connecting to console socket: {e.strerror}", path) from None
    return sock


def receive_master(sock: socket.socket) -> int:
    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    sock.close()
    if not fds:
        raise OSError("the container sent no pty")
    return fds[0]


def exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def wait_foreground(pid: int, master: int | None = None) -> int:
    """Wait for `pid` (reaping any orphan that comes our way); return its exit code."""
    import select

    rd, wr = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wr)
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        pending.append(signum)

    handlers = {sig: signal.signal(sig, forward) for sig in (*FORWARDED, signal.SIGWINCH)}
    signal.signal(signal.SIGCHLD, lambda *_: None)
    restore_tty = _raw_stdin() if master is not None else None
    if master is not None:
        _copy_winsize(master)
    try:
        result: int | None = None
        stdin_open = master is not None
        while result is None:
            result = _reap(pid)
            if result is not None:
                break
            while pending:
                signum = pending.pop(0)
                if signum == signal.SIGWINCH:
                    if master is not None:
                        _copy_winsize(master)
                    continue
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
            fds = [rd]
            if master is not None:
                fds.append(master)
                if stdin_open:
                    fds.append(0)
            ready, _, _ = select.select(fds, [], [], 1.0)
            if rd in ready:
                _drain(rd)
            if master is not None and master in ready:
                _pump(master, 1)
            if 0 in ready and master is not None and not _pump(0, master):
                stdin_open = False
        if master is not None:
            while _pump(master, 1):
                pass
        return result
    finally:
        if restore_tty is not None:
            restore_tty()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(old_wakeup)
        os.close(rd)
        os.close(wr)


def _reap(pid: int) -> int | None:
    while True:
        try:
            got, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 255
        if got == 0:
            return None
        if got == pid:
            return exit_code(status)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _pump(src: int, dst: int) -> bool:
    try:
        data = os.read(src, 65536)
    except OSError:
        return False
    if not data:
        return False
    view = memoryview(data)
    while view:
        try:
            n = os.write(dst, view)
        except BlockingIOError:
            continue
        view = view[n:]
    return True


def _raw_stdin() -> Callable[[], None] | None:
    if not os.isatty(0):
        return None
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)

    def restore() -> None:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)

    return restore


def _copy_winsize(master: int) -> None:
    if not os.isatty(0):
        return
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def fail(message: str) -> int:
    print(f"skiff-runtime: {message}", file=sys.stderr)
    return 1
