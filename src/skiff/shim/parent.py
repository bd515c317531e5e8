"""The shim parent: a small, long-lived process that forks one shim per container.

    python -m skiff.shim.parent --socket PATH

Why: a fresh Python interpreter per container costs about 6.7 MiB; a child
forked from a process that has already imported everything a shim runs shares
those pages and pays only for the pages it writes. So this process imports the
shim, runs its common paths once (warm_up), freezes its objects out of the
garbage collector's reach (a collection would write to, and so copy, every
page they are on), and then only accepts and forks:

    skiffd ─connect─▶ parent: accept, fork ─▶ child: read the request
                        (nothing else: every      ping: answer the parent's pid
                         page it writes after     spawn: setsid, fork ─▶ shim
                         a fork becomes private           exit: the shim is re-parented
                         in that child)                   to init, away from the parent
                                                          and from skiffd
    skiffd ◀──────── reply (the container's state, or create's error) ────── shim

The shim answers the spawn request itself, on the connection it inherits, once
the container is created. SIGCHLD is ignored here, so the kernel reaps the
short-lived children, and killing the parent (or skiffd) leaves every shim
running. It is single-threaded on purpose: fork is only safe without threads.

What a shim pays for is what it touches: CPython writes the reference count of
every object it uses, even to read it, so each function a shim runs and each
object it loads costs it a private copy of the 4 KiB page the object is on.
Hence the shim's habits: _socket's sockets, not socket.socket's Python
methods; JSON straight through _json's C encoder and scanner; no posixpath or
text-file code after the fork; tables made once in the parent, not per shim;
no threading after-fork handler (server.preload_runtime); and a warm-up that
runs a shim's paths here first. bench/shim_memory.py measures the result.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the wrappers in signal.py convert to enums
import _socket
import gc
import os
import signal
import sys
import time

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.shim import protocol as p
from skiff.shim import server  # imported here so that every shim shares its pages

MAX_FD = 1 << 20  # above any descriptor's number (fs.nr_open's default)


def serve_forever(listener: _socket.socket) -> None:
    """Accept and fork; nothing else happens in this process.

    Every page this loop writes after a fork becomes a private copy in that
    child (the child then alone holds the old page), so the loop touches as
    few objects as it can: the request is read and handled in the child.
    """
    accept = listener._accept  # type: ignore[attr-defined]  # the fd, no socket object
    fork, close, parent_pid = os.fork, os.close, os.getpid()
    while True:
        try:
            fd, _ = accept()
        except InterruptedError:
            continue
        except OSError:  # EMFILE and the like: let a client retry
            time.sleep(0.1)
            continue
        if fork() == 0:
            _handle(listener, fd, parent_pid)  # never returns
        close(fd)


def _handle(listener: _socket.socket, fd: int, parent_pid: int) -> None:
    """In the forked child: answer a ping, or become the session leader whose
    child is the shim. SIGCHLD is ignored in the parent, so this child's exit
    needs no wait there.

    Sockets here and in the shim are _socket's, not socket.socket: the latter's
    methods are Python code (enum conversions, reference counting of makefile),
    and every function run after the fork writes to pages shared with the parent.
    """
    code = 1
    try:
        _signal.signal(signal.SIGCHLD, _signal.SIG_DFL)
        listener.close()
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
        conn.settimeout(10)
        try:
            msg = p.decode(_read_line(conn))
            op = msg.get("op")
            if op == "ping":
                conn.sendall(p.encode({"ok": True, "pid": parent_pid}))
                code = 0
            elif op == "spawn":
                req = _spawn_request(msg)
                os.setsid()
                if os.fork() == 0:
                    _become_shim(conn, req)  # never returns
                code = 0
            else:
                raise InvalidArgument(f"unknown op: {op!r}")
        except Exception as e:
            try:
                conn.sendall(p.encode(p.error_reply(e)))
            except OSError:
                pass
    finally:
        os._exit(code)


def _read_line(conn: _socket.socket) -> bytes:
    buf = b""
    while b"\n" not in buf and len(buf) <= p.MAX_LINE:
        data = conn.recv(65536)
        if not data:
            break
        buf += data
    return buf.partition(b"\n")[0]


def _spawn_request(msg: dict[str, object]) -> p.SpawnRequest:
    req = p.SpawnRequest.from_dict(msg)
    req.dir = os.path.abspath(req.dir)
    req.bundle = os.path.abspath(req.bundle)
    if not os.path.isdir(req.dir):
        raise NotFound(f"no such folder: {req.dir}")
    return req


def _become_shim(conn: _socket.socket, req: p.SpawnRequest) -> None:
    try:
        conn.settimeout(None)
        _redirect_stdio(p.Layout(req.dir).path(p.Layout.SHIM_LOG))
        _close_other_fds(conn.fileno())
        server.serve(req, conn)
    except BaseException:
        import traceback

        traceback.print_exc()
    os._exit(1)


def _redirect_stdio(log_path: str) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _close_other_fds(keep: int) -> None:
    """Whatever skiffd left open in the parent must not pin anything in a shim."""
    os.closerange(3, keep)
    os.closerange(keep + 1, MAX_FD)


def listen(path: str) -> _socket.socket:
    """Bind the parent's socket; refuse if a live parent answers there."""
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        pass
    else:
        raise Conflict(f"a shim parent is already serving {path}")
    finally:
        probe.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(128)
    return sock


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m skiff.shim.parent")
    parser.add_argument("--socket", required=True, help="unix socket to serve spawn requests on")
    args = parser.parse_args(argv)
    try:
        listener = listen(args.socket)
    except (Conflict, OSError) as e:
        print(f"skiff shim parent: {e}", file=sys.stderr)
        return 1
    # Children are not waited for: each exits at once, and the kernel reaps them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    server.warm_up()
    # Everything imported so far is shared with every shim; keep the collector's hands off.
    gc.collect()
    gc.freeze()
    try:
        serve_forever(listener)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
