"""A client connection of the shim: request/reply lines, then maybe a stream."""

from __future__ import annotations

import _socket

from skiff.shim import protocol as p
from skiff.shim.loop import READ, WRITE, Handler
from skiff.shim.stdio import HIGH_WATER

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.shim.server import Shim
    from skiff.shim.stdio import Proc


class Conn(Handler):
    """A client connection: requests and replies, then maybe a stream."""

    def __init__(self, shim: Shim, sock: _socket.socket) -> None:
        self.shim = shim
        self.sock = sock
        self.fd = sock.fileno()
        sock.setblocking(False)
        self.inbuf = b""
        self.out = bytearray()
        self.mode = "request"  # request | stream | waiting | closing
        self.proc: Proc | None = None
        self.decoder: p.FrameDecoder | None = None
        self.stdin = self.stdout = self.stderr = self.stdin_once = False

    def events(self) -> int:
        events = WRITE if self.out else 0
        if self.mode in ("request", "waiting"):
            events |= READ
        elif self.mode == "stream" and self.proc is not None and not self.proc.stdin_full():
            # An attacher waiting for the next run is not read until it starts, so
            # that its stdin (and the end of it) goes to that run.
            events |= READ
        return events

    def wants(self, kind: int) -> bool:
        return (kind == p.STDOUT and self.stdout) or (kind == p.STDERR and self.stderr)

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.on_eof()
            return
        if self.mode == "stream":
            self.on_stream_data(data)
            return
        self.inbuf += data
        while self.mode == "request":
            line, sep, rest = self.inbuf.partition(b"\n")
            if not sep:
                if len(self.inbuf) > p.MAX_LINE:
                    self.reply({"ok": False, "kind": "InvalidArgument", "error": "line too long"})
                    self.close_after_flush()
                return
            self.inbuf = rest
            self.shim.handle(self, line)
        if self.mode == "stream" and self.inbuf:
            leftover, self.inbuf = self.inbuf, b""
            self.on_stream_data(leftover)

    def on_stream_data(self, data: bytes) -> None:
        assert self.decoder is not None
        for kind, payload in self.decoder.feed(data):
            proc = self.proc
            if proc is None:
                continue
            if kind == p.STDIN and self.stdin:
                proc.write_stdin(payload)
            elif kind == p.CLOSE_STDIN:
                self.stdin_ended()
            elif kind == p.RESIZE and proc.pty is not None:
                try:
                    size = p.decode(payload)
                    proc.pty.resize(int(str(size["height"])), int(str(size["width"])))
                except (p.ProtocolError, KeyError, ValueError, OSError):
                    pass
            elif kind == p.DETACH:
                self.close()
                return
        self.shim.loop.refresh(self)

    def stdin_ended(self) -> None:
        # As moby: with StdinOnce and no tty, the end of the client's stdin closes the
        # container's; otherwise the container's stdin stays open for later attachers.
        if self.stdin and self.stdin_once and self.proc is not None and not self.proc.tty:
            self.proc.close_stdin()
        self.stdin = False

    def on_eof(self) -> None:
        if self.mode == "stream":
            self.stdin_ended()
        self.close()

    def on_writable(self) -> None:
        self.flush()

    def send(self, data: bytes) -> None:
        if self.sock.fileno() < 0:
            return
        self.out += data
        self.flush()

    def reply(self, doc: dict[str, object]) -> None:
        self.send(p.encode(doc))

    def flush(self) -> None:
        try:
            while self.out:
                n = self.sock.send(self.out)
                del self.out[:n]
        except BlockingIOError:
            pass
        except OSError:  # the client went away
            self.close()
            return
        if not self.out and self.mode == "closing":
            self.close()
            return
        self.shim.loop.refresh(self)
        if self.proc is not None and len(self.out) <= HIGH_WATER:
            self.proc.output_unpaused()

    def become_stream(self, proc: Proc | None) -> None:
        self.mode = "stream"
        self.proc = proc
        self.decoder = p.FrameDecoder()
        self.shim.loop.refresh(self)

    def close_after_flush(self) -> None:
        self.mode = "closing"
        self.flush()

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return
        self.shim.loop.forget(self)
        self.sock.close()
        self.mode = "closed"
        self.shim.conn_closed(self)
        if self.proc is not None:
            if self in self.proc.attachers:
                self.proc.attachers.remove(self)
            if self in self.proc.waiters:
                self.proc.waiters.remove(self)
            self.proc.output_unpaused()


class Listener(Handler):
    """The shim's socket. Connections are _socket's sockets: socket.socket's
    methods are Python code, which a shim runs only at the cost of private
    copies of the pages it shares with the shim parent."""

    def __init__(self, shim: Shim, sock: _socket.socket) -> None:
        self.shim = shim
        self.sock = sock
        self.fd = sock.fileno()
        sock.setblocking(False)

    def events(self) -> int:
        return READ

    def on_readable(self) -> None:
        try:
            fd, _ = self.sock._accept()  # type: ignore[attr-defined]
        except BlockingIOError:
            return
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
        self.shim.loop.refresh(Conn(self.shim, sock))
