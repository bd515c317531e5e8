"""The shim parent: a small, long-lived process that forks one shim per container.

    python -m skiff.shim.parent --socket PATH

Why: a fresh Python interpreter per container costs about 6.7 MiB; a child
forked from a process that has already imported everything a shim runs shares
those pages and costs a fraction of that. So this process imports the shim
once, freezes its objects out of the garbage collector's reach (a collection
would touch, and so copy, every page they are on), and forks:

    skiffd ──{"op":"spawn"}──▶ parent ── fork ──▶ child ── setsid, fork ──▶ shim
                                 │                  └─ exits: the shim is re-parented
                                 └─ waits the child,    to init (or a subreaper above
                                    closes its copy      skiffd), out of the reach of
                                    of the connection    both parent and skiffd
    skiffd ◀──────────────── reply (the container's state, or create's error) ── shim

The shim answers the spawn request itself, on the connection it inherits, once
the container is created. The parent never waits for a shim, so it stays
single-threaded and small, and killing it (or skiffd) leaves shims running.
It is single-threaded on purpose: fork is only safe without threads.
"""

from __future__ import annotations

import gc
import os
import socket
import sys

from skiff.errors import Conflict, InvalidArgument, NotFound
from skiff.shim import protocol as p
from skiff.shim import server  # imported here so that every shim shares its pages
from skiff.shim.loop import READ, Handler, Loop


class Client(Handler):
    def __init__(self, parent: Parent, sock: socket.socket) -> None:
        self.parent = parent
        self.sock = sock
        self.fd = sock.fileno()
        sock.setblocking(False)
        self.buf = b""

    def events(self) -> int:
        return READ

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        self.buf += data
        while b"\n" in self.buf and self.fd >= 0:
            line, _, self.buf = self.buf.partition(b"\n")
            self.parent.handle(self, line)
        if len(self.buf) > p.MAX_LINE:
            self.close()

    def reply(self, doc: dict[str, object]) -> None:
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(5)
            self.sock.sendall(p.encode(doc))
            self.sock.setblocking(False)
        except OSError:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            self.parent.loop.forget(self)
            self.parent.clients.discard(self)
            self.sock.close()
            self.fd = -1


class Listener(Handler):
    def __init__(self, parent: Parent, sock: socket.socket) -> None:
        self.parent = parent
        self.sock = sock
        self.fd = sock.fileno()
        sock.setblocking(False)

    def events(self) -> int:
        return READ

    def on_readable(self) -> None:
        try:
            sock, _ = self.sock.accept()
        except BlockingIOError:
            return
        client = Client(self.parent, sock)
        self.parent.clients.add(client)
        self.parent.loop.refresh(client)


class Parent:
    def __init__(self, listener: socket.socket) -> None:
        self.loop = Loop()
        self.listener = listener
        self.clients: set[Client] = set()
        self.loop.refresh(Listener(self, listener))

    def handle(self, client: Client, line: bytes) -> None:
        try:
            msg = p.decode(line)
            op = msg.get("op")
            if op == "ping":
                client.reply({"ok": True, "pid": os.getpid()})
            elif op == "spawn":
                req = p.SpawnRequest.from_dict(msg)
                req.dir = os.path.abspath(req.dir)
                req.bundle = os.path.abspath(req.bundle)
                if not os.path.isdir(req.dir):
                    raise NotFound(f"no such folder: {req.dir}")
                self.spawn(client, req)
            else:
                raise InvalidArgument(f"unknown op: {op!r}")
        except Exception as e:
            client.reply(p.error_reply(e))

    def spawn(self, client: Client, req: p.SpawnRequest) -> None:
        child = os.fork()
        if child == 0:
            try:
                os.setsid()
                if os.fork() == 0:
                    self.become_shim(client, req)
            finally:
                os._exit(0)
        # The shim answers on its own copy of the connection; ours is done.
        client.close()
        os.waitpid(child, 0)

    def become_shim(self, client: Client, req: p.SpawnRequest) -> None:
        """In the forked shim: drop all the parent holds, then serve one container."""
        try:
            reply = client.sock
            reply.setblocking(True)
            self.loop.close()
            self.listener.close()
            for other in self.clients:
                if other is not client:
                    other.sock.close()
            _redirect_stdio(os.path.join(req.dir, p.Layout.SHIM_LOG))
            _close_other_fds(keep={reply.fileno()})
            server.serve(req, reply)
        except BaseException:
            import traceback

            traceback.print_exc()
        os._exit(1)

    def run(self) -> None:
        self.loop.run()


def _redirect_stdio(log_path: str) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _close_other_fds(keep: set[int]) -> None:
    """Whatever skiffd left open in the parent must not pin anything in a shim."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the fd of the listdir itself, already closed


def listen(path: str) -> socket.socket:
    """Bind the parent's socket; refuse if a live parent answers there."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
    parent = Parent(listener)
    # Everything imported so far is shared with every shim; keep the collector's hands off.
    gc.collect()
    gc.freeze()
    try:
        parent.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
