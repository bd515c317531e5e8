"""Typed clients of the shim parent and of shims, blocking and asyncio.

    from skiff.shim.client import AsyncShim, spawn_async, start_parent

    start_parent("/run/skiff/shim.sock")                  # once; reused if running
    state = await spawn_async("/run/skiff/shim.sock", SpawnRequest(id, dir, bundle, ...))
    shim = await AsyncShim.connect(dir)                     # or later, after a restart
    stream = await shim.attach(stdin=True, stdin_once=True) # before start, as docker run
    await shim.start()
    async for kind, data in stream: ...                     # STDOUT / STDERR frames
    status = await shim.wait()                              # ExitStatus

A call on a shim that is gone (killed, or never there) raises ShimGone, whose
`exit` is the exit file's ExitStatus when the container's last run ended
before the shim did (else None: the shim died with the container running).
Errors the shim reports are raised as the skiff.errors category it names.
The protocol itself is documented in skiff.shim.protocol.
"""

from __future__ import annotations

import json
import os
import socket

from skiff.errors import InvalidArgument, Unavailable
from skiff.shim import protocol as p
from skiff.shim.protocol import ExecState, ExitStatus, Layout, ShimState, SpawnRequest

TYPE_CHECKING = False

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Iterator

CALL_TIMEOUT = 120.0  # a create or exec runs the runtime; it can take a while under load


class ShimGone(Unavailable):
    """Nothing answers at the container's shim socket."""

    def __init__(self, directory: str, exit: ExitStatus | None) -> None:
        status = f"; its last run exited with {exit.exit_code}" if exit else ""
        super().__init__(f"the shim of {directory} is gone{status}")
        self.directory = directory
        self.exit = exit


def read_exit_file(directory: str) -> ExitStatus | None:
    """The exit file of the container's last run, or None."""
    try:
        with open(os.path.join(directory, Layout.EXIT), "rb") as f:
            return ExitStatus.from_dict(json.loads(f.read()))
    except (OSError, ValueError, InvalidArgument):
        return None


def connect_unix(path: str, timeout: float | None = CALL_TIMEOUT) -> socket.socket:
    """Connect to a unix socket, even at a path longer than sun_path's 108 bytes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if len(path.encode()) < 100:
            sock.connect(path)
        else:
            # Through /proc/self/fd of the folder: a short path to the same socket.
            folder = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{folder}/{os.path.basename(path)}")
            finally:
                os.close(folder)
    except BaseException:
        sock.close()
        raise
    return sock


# --- blocking ------------------------------------------------------------------------


class _Frames:
    """The frames of a stream's bytes, taken one at a time: the EXIT frame ends the
    stream and leaves its code in `exit_code`. Stream and AsyncStream read with it."""

    def __init__(self, rest: bytes) -> None:
        self.exit_code: int | None = None
        self._decoder = p.FrameDecoder()
        self._frames = self._decoder.feed(rest)

    def feed(self, data: bytes) -> None:
        self._frames.extend(self._decoder.feed(data))

    def __bool__(self) -> bool:
        return bool(self._frames)

    def take(self) -> tuple[int, bytes] | None:
        """The next (STDOUT|STDERR, data) frame; None for the EXIT frame."""
        kind, payload = self._frames.pop(0)
        if kind == p.EXIT:
            self.exit_code = _exit_code(payload)
            return None
        return kind, payload


class Stream:
    """An attach or exec stream: frames out of the process, stdin into it."""

    def __init__(self, sock: socket.socket, rest: bytes, tty: bool = False, pid: int = 0) -> None:
        self.sock = sock
        self.tty = tty
        self.pid = pid
        self._frames = _Frames(rest)

    @property
    def exit_code(self) -> int | None:
        return self._frames.exit_code

    def read(self) -> tuple[int, bytes] | None:
        """The next (STDOUT|STDERR, data) frame, or None at the end of the stream."""
        while not self._frames:
            if self.sock.fileno() < 0:
                return None
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                return None
            self._frames.feed(data)
        return self._frames.take()

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        while (item := self.read()) is not None:
            yield item

    def output(self) -> tuple[bytes, bytes]:
        """Everything until the end: (stdout, stderr)."""
        out, err = bytearray(), bytearray()
        for kind, data in self:
            (out if kind == p.STDOUT else err).extend(data)
        return bytes(out), bytes(err)

    def write(self, data: bytes) -> None:
        self.sock.sendall(p.frame(p.STDIN, data))

    def close_stdin(self) -> None:
        self.sock.sendall(p.frame(p.CLOSE_STDIN))

    def resize(self, height: int, width: int) -> None:
        self.sock.sendall(p.frame_json(p.RESIZE, {"height": height, "width": width}))

    def detach(self) -> None:
        try:
            self.sock.sendall(p.frame(p.DETACH))
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _exit_code(payload: bytes) -> int:
    doc = p.decode(payload)
    code = doc.get("exit_code")
    return code if isinstance(code, int) else 255


class Shim:
    """A blocking client of one container's shim (see the module doc)."""

    def __init__(self, directory: str, timeout: float | None = CALL_TIMEOUT) -> None:
        self.directory = os.path.abspath(directory)
        self.socket = os.path.join(self.directory, Layout.SOCKET)
        self.timeout = timeout

    @classmethod
    def connect(cls, directory: str) -> Shim:
        """A client of the shim serving `directory`; ShimGone if none does."""
        shim = cls(directory)
        shim.state()
        return shim

    def _open(
        self, doc: dict[str, object], timeout: float | None
    ) -> tuple[socket.socket, dict[str, object], bytes]:
        """Send a request; return the connection, the reply and what came after it."""
        try:
            sock = connect_unix(self.socket, timeout)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ShimGone(self.directory, read_exit_file(self.directory)) from None
        try:
            sock.sendall(p.encode(doc))
            buf = b""
            while b"\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    raise ShimGone(self.directory, read_exit_file(self.directory))
                buf += data
        except ConnectionResetError:
            sock.close()
            raise ShimGone(self.directory, read_exit_file(self.directory)) from None
        except BaseException:
            sock.close()
            raise
        line, _, rest = buf.partition(b"\n")
        try:
            reply = p.check_reply(p.decode(line))
        except BaseException:
            sock.close()
            raise
        return sock, reply, rest

    def call(self, doc: dict[str, object], timeout: float | None = None) -> dict[str, object]:
        sock, reply, _ = self._open(doc, timeout if timeout is not None else self.timeout)
        sock.close()
        return reply

    def state(self) -> ShimState:
        return ShimState.from_dict(self.call({"op": "state"}))

    def start(self) -> ShimState:
        return ShimState.from_dict(self.call({"op": "start"}))

    def kill(self, signal: int | str = "SIGTERM", all: bool = False) -> None:
        self.call({"op": "kill", "signal": signal, "all": all})

    def wait(self, next_exit: bool = False, timeout: float | None = None) -> ExitStatus:
        """Block until the current run exits (at once if stopped, unless next_exit)."""
        sock, reply, _ = self._open({"op": "wait", "next": next_exit}, timeout)
        sock.close()
        return ExitStatus.from_dict(reply)

    def attach(
        self,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        stdin_once: bool = False,
    ) -> Stream:
        doc: dict[str, object] = {"op": "attach", "stdin": stdin, "stdout": stdout}
        doc.update(stderr=stderr, stdin_once=stdin_once)
        sock, reply, rest = self._open(doc, self.timeout)
        sock.settimeout(None)
        return Stream(sock, rest, tty=bool(reply.get("tty")))

    def resize(self, height: int, width: int, exec_id: str = "") -> None:
        self.call({"op": "resize", "height": height, "width": width, "exec_id": exec_id})

    def close_stdin(self, exec_id: str = "") -> None:
        self.call({"op": "close-stdin", "exec_id": exec_id})

    def exec(
        self, exec_id: str, process: dict[str, object], stdin: bool = False, attach: bool = True
    ) -> Stream | int:
        """Run `process` (an OCI process) in the container: its stream, or its pid if detached."""
        doc: dict[str, object] = {"op": "exec", "exec_id": exec_id, "process": process}
        doc.update(stdin=stdin, attach=attach)
        sock, reply, rest = self._open(doc, self.timeout)
        pid = reply.get("pid")
        pid = pid if isinstance(pid, int) else 0
        if not attach:
            sock.close()
            return pid
        sock.settimeout(None)
        return Stream(sock, rest, tty=bool(process.get("terminal")), pid=pid)

    def exec_state(self, exec_id: str) -> ExecState:
        return ExecState.from_dict(self.call({"op": "exec-state", "exec_id": exec_id}))

    def wait_exec(self, exec_id: str, timeout: float | None = None) -> ExecState:
        sock, reply, _ = self._open({"op": "wait-exec", "exec_id": exec_id}, timeout)
        sock.close()
        return ExecState.from_dict(reply)

    def pause(self) -> ShimState:
        return ShimState.from_dict(self.call({"op": "pause"}))

    def resume(self) -> ShimState:
        return ShimState.from_dict(self.call({"op": "resume"}))

    def shutdown(self) -> None:
        self.call({"op": "shutdown"})


def spawn(parent_socket: str, req: SpawnRequest, timeout: float = CALL_TIMEOUT) -> ShimState:
    """Ask the shim parent for a shim; returns once the container is created."""
    with connect_unix(parent_socket, timeout) as sock:
        sock.sendall(p.encode({"op": "spawn", **req.to_dict()}))
        buf = b""
        while b"\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise Unavailable("the shim exited before it answered: see shim.log")
            buf += data
    return ShimState.from_dict(p.check_reply(p.decode(buf.partition(b"\n")[0])))


def ping_parent(parent_socket: str) -> int | None:
    """The shim parent's pid, or None when none serves the socket."""
    try:
        with connect_unix(parent_socket, 5) as sock:
            sock.sendall(p.encode({"op": "ping"}))
            line = sock.makefile("rb").readline()
    except OSError:
        return None
    pid = p.check_reply(p.decode(line)).get("pid")
    return pid if isinstance(pid, int) else None


def start_parent(
    parent_socket: str,
    python: str | None = None,
    log: str | None = None,
    timeout: float = 10.0,
) -> int:
    """Start a shim parent on `parent_socket` unless one answers there; return its pid.

    It runs in its own session, so it outlives its starter; `log` gets its stderr.
    """
    import subprocess
    import sys
    import time

    pid = ping_parent(parent_socket)
    if pid is not None:
        return pid
    err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            [python or sys.executable, "-m", "skiff.shim.parent", "--socket", parent_socket],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    finally:
        if log and not isinstance(err, int):
            err.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = ping_parent(parent_socket)
        if pid is not None:
            return pid
        if proc.poll() is not None:
            raise Unavailable(f"the shim parent exited with {proc.returncode}")
        time.sleep(0.02)
    raise Unavailable(f"the shim parent did not answer on {parent_socket}")


# --- asyncio ---------------------------------------------------------------------------


class AsyncStream:
    """Stream for asyncio: `async for kind, data in stream`, write(), close_stdin()..."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rest: bytes,
        tty: bool = False,
        pid: int = 0,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.tty = tty
        self.pid = pid
        self._frames = _Frames(rest)

    @property
    def exit_code(self) -> int | None:
        return self._frames.exit_code

    async def read(self) -> tuple[int, bytes] | None:
        while not self._frames:
            try:
                data = await self.reader.read(65536)
            except OSError:
                data = b""
            if not data:
                return None
            self._frames.feed(data)
        return self._frames.take()

    async def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        while (item := await self.read()) is not None:
            yield item

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def write(self, data: bytes) -> None:
        await self._send(p.frame(p.STDIN, data))

    async def close_stdin(self) -> None:
        await self._send(p.frame(p.CLOSE_STDIN))

    async def resize(self, height: int, width: int) -> None:
        await self._send(p.frame_json(p.RESIZE, {"height": height, "width": width}))

    async def detach(self) -> None:
        try:
            await self._send(p.frame(p.DETACH))
        except OSError:
            pass
        await self.close()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


class AsyncShim:
    """The asyncio client of one container's shim; the same calls as Shim."""

    def __init__(self, directory: str, timeout: float | None = CALL_TIMEOUT) -> None:
        self.directory = os.path.abspath(directory)
        self.socket = os.path.join(self.directory, Layout.SOCKET)
        self.timeout = timeout

    @classmethod
    async def connect(cls, directory: str) -> AsyncShim:
        shim = cls(directory)
        await shim.state()
        return shim

    async def _open(
        self, doc: dict[str, object], timeout: float | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, object], bytes]:
        import asyncio

        try:
            sock = connect_unix(self.socket, 5)
        except (FileNotFoundError, ConnectionRefusedError):
            raise ShimGone(self.directory, read_exit_file(self.directory)) from None
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=p.MAX_LINE + 1)
        try:
            writer.write(p.encode(doc))
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout)
            if not line.endswith(b"\n"):
                raise ShimGone(self.directory, read_exit_file(self.directory))
            reply = p.check_reply(p.decode(line))
        except ConnectionResetError:
            writer.close()
            raise ShimGone(self.directory, read_exit_file(self.directory)) from None
        except BaseException:
            writer.close()
            raise
        return reader, writer, reply, b""

    async def call(self, doc: dict[str, object], timeout: float | None = None) -> dict[str, object]:
        _, writer, reply, _ = await self._open(
            doc, timeout if timeout is not None else self.timeout
        )
        writer.close()
        return reply

    async def state(self) -> ShimState:
        return ShimState.from_dict(await self.call({"op": "state"}))

    async def start(self) -> ShimState:
        return ShimState.from_dict(await self.call({"op": "start"}))

    async def kill(self, signal: int | str = "SIGTERM", all: bool = False) -> None:
        await self.call({"op": "kill", "signal": signal, "all": all})

    async def wait(self, next_exit: bool = False) -> ExitStatus:
        _, writer, reply, _ = await self._open({"op": "wait", "next": next_exit}, None)
        writer.close()
        return ExitStatus.from_dict(reply)

    async def oom_wait(self, seen: int) -> tuple[int, bool]:
        """Wait until the run has had more than `seen` OOM notifications, or has
        ended: (notifications this run, whether it has ended)."""
        _, writer, reply, _ = await self._open({"op": "oom-wait", "seen": seen}, None)
        writer.close()
        events = reply.get("events")
        return (events if isinstance(events, int) else 0), bool(reply.get("stopped"))

    async def attach(
        self,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        stdin_once: bool = False,
    ) -> AsyncStream:
        doc: dict[str, object] = {"op": "attach", "stdin": stdin, "stdout": stdout}
        doc.update(stderr=stderr, stdin_once=stdin_once)
        reader, writer, reply, rest = await self._open(doc, self.timeout)
        return AsyncStream(reader, writer, rest, tty=bool(reply.get("tty")))

    async def resize(self, height: int, width: int, exec_id: str = "") -> None:
        await self.call({"op": "resize", "height": height, "width": width, "exec_id": exec_id})

    async def close_stdin(self, exec_id: str = "") -> None:
        await self.call({"op": "close-stdin", "exec_id": exec_id})

    async def exec(
        self, exec_id: str, process: dict[str, object], stdin: bool = False, attach: bool = True
    ) -> AsyncStream | int:
        doc: dict[str, object] = {"op": "exec", "exec_id": exec_id, "process": process}
        doc.update(stdin=stdin, attach=attach)
        reader, writer, reply, rest = await self._open(doc, self.timeout)
        pid = reply.get("pid")
        pid = pid if isinstance(pid, int) else 0
        if not attach:
            writer.close()
            return pid
        return AsyncStream(reader, writer, rest, tty=bool(process.get("terminal")), pid=pid)

    async def exec_state(self, exec_id: str) -> ExecState:
        return ExecState.from_dict(await self.call({"op": "exec-state", "exec_id": exec_id}))

    async def wait_exec(self, exec_id: str) -> ExecState:
        _, writer, reply, _ = await self._open({"op": "wait-exec", "exec_id": exec_id}, None)
        writer.close()
        return ExecState.from_dict(reply)

    async def pause(self) -> ShimState:
        return ShimState.from_dict(await self.call({"op": "pause"}))

    async def resume(self) -> ShimState:
        return ShimState.from_dict(await self.call({"op": "resume"}))

    async def shutdown(self) -> None:
        await self.call({"op": "shutdown"})


async def spawn_async(
    parent_socket: str, req: SpawnRequest, timeout: float = CALL_TIMEOUT
) -> ShimState:
    """spawn() for asyncio."""
    import asyncio

    sock = connect_unix(parent_socket, 5)
    sock.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=p.MAX_LINE + 1)
    try:
        writer.write(p.encode({"op": "spawn", **req.to_dict()}))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    if not line.endswith(b"\n"):
        raise Unavailable("the shim exited before it answered: see shim.log")
    return ShimState.from_dict(p.check_reply(p.decode(line)))
