"""The shim's wire protocol, spoken on unix sockets by the shim parent and each shim.

Who talks to whom
-----------------

    skiffd ──spawn──▶ shim parent (--socket P) ──fork, setsid, fork──▶ shim
      │                  (pre-imported, gc.freeze,                  (one per container,
      │                   forks and forgets)                          subreaper, owns stdio)
      │                                                                 │  runs skiff-runtime
      └──────────── <container dir>/shim.sock ◀──────────────────────────┘  create/start/exec/
                    state, start, kill, wait, attach, exec, ...             kill/delete

Framing
-------
A request is one JSON object on one line ("\\n"-terminated, UTF-8); so is its
reply. A connection may carry any number of request/reply pairs, except that
`attach` and `exec` (with "attach": true) turn the connection into a *stream*
after their reply, and `wait` holds the connection until its reply.

    reply   {"ok": true, ...fields}
            {"ok": false, "kind": "Conflict", "error": "container is not running"}

`kind` names an error category of skiff.errors (NotFound, InvalidArgument,
Conflict, NotModified, Unavailable); anything else is "Internal".

Stream frames, both ways, after the reply (the header of Docker's multiplexed
stream, so skiffd can pass output frames through):

    [kind u8, 0, 0, 0, size u32 big-endian] + size bytes of payload

    shim → client   1 STDOUT  output (all output of a tty is STDOUT)
                    2 STDERR  output
                    3 EXIT    {"exit_code": N}: the process exited and all of its
                              output was sent; the shim closes the stream after it
    client → shim   0 STDIN        bytes for the process's stdin
                    4 CLOSE_STDIN  this client's stdin ended: the process's stdin is
                                   closed if the attach said "stdin_once" (no tty)
                    5 RESIZE       {"height": H, "width": W} of the process's tty
                    6 DETACH        stop streaming; the process goes on

Closing the connection is a detach too (with the CLOSE_STDIN rule applied).

Messages
--------
To the shim parent (reply comes from the new shim once the container is created):

    {"op": "ping"}                  → {"ok", "pid"}
    {"op": "spawn", ...SpawnRequest} → {"ok", ...ShimState}   (or the create error)

To a shim, at <container dir>/shim.sock:

    {"op": "state"}                       → ShimState
    {"op": "start"}                       → ShimState; created → running; after an exit
                                            it creates the container again first (restart)
    {"op": "kill", "signal": N, "all": b} → {}   (all: every process of the container)
    {"op": "wait", "next": b}             → ExitStatus, once the current run has exited
                                            (at once if stopped, unless "next")
    {"op": "attach", "stdin": b, "stdout": b, "stderr": b, "stdin_once": b}
                                          → {"tty"} then a stream; attaching while
                                            stopped waits for the next start
    {"op": "resize", "height": H, "width": W, "exec_id": E?} → {}
    {"op": "close-stdin", "exec_id": E?}  → {}
    {"op": "exec", "exec_id": E, "process": {OCI process}, "stdin": b, "attach": b}
                                          → {"pid"}; with attach, then a stream
    {"op": "exec-state", "exec_id": E}    → ExecState
    {"op": "wait-exec", "exec_id": E}     → ExecState once it has exited
    {"op": "pause"} / {"op": "resume"}    → ShimState
    {"op": "shutdown"}                    → {}; only when not running: deletes a created
                                            container, removes the socket, exits

Files in the container folder (the shim's working directory): see `Layout`.
"""

from __future__ import annotations

import _json
import json
import os
import struct

from skiff.errors import Conflict, InvalidArgument, NotFound, NotModified, SkiffError, Unavailable

STDIN = 0
STDOUT = 1
STDERR = 2
EXIT = 3
CLOSE_STDIN = 4
RESIZE = 5
DETACH = 6

HEADER = struct.Struct(">BxxxI")
MAX_LINE = 1024 * 1024  # a request or reply line; an OCI process spec fits easily

# Statuses of the container as the shim sees it:
#
#   creating ──▶ created ──start──▶ running ──init exits──▶ exiting ──deleted──▶ stopped
#                   │                 ▲  │ pause/resume ⇄ paused                   │
#                   └─shutdown        │  └───────────────── start (create again) ◀──┘
CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
EXITING = "exiting"
STOPPED = "stopped"

ERROR_KINDS: dict[str, type[SkiffError]] = {
    "NotFound": NotFound,
    "InvalidArgument": InvalidArgument,
    "Conflict": Conflict,
    "NotModified": NotModified,
    "Unavailable": Unavailable,
}


class ProtocolError(SkiffError):
    """The other side sent something that is not this protocol."""


class ShimError(SkiffError):
    """A failure the shim reported without a category (its kind is "Internal")."""


# json.dumps and json.loads without options, straight to their C parts: a shim
# runs this after its fork, and every Python function it runs (dumps, encode,
# iterencode, loads, detect_encoding, decode, raw_decode) costs it private copies
# of pages it otherwise shares with the shim parent.
_SCAN = _json.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed: a decoder is the context
_SPACE = " \t\n\r"  # JSON's whitespace


def _not_serializable(o: object) -> object:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(doc: object) -> str:
    """json.dumps(doc)."""
    encoder = _json.make_encoder(
        {}, _not_serializable, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return "".join(encoder(doc, 0))


def loads(line: bytes) -> object:
    """json.loads(line), which also tells what is wrong with a line that is not JSON."""
    try:
        text = line.decode("utf-8", "surrogatepass")
        body = text.rstrip(_SPACE)
        start = len(text) - len(text.lstrip(_SPACE))
        doc, end = _SCAN(body, start)
        if end == len(body):
            return doc
    except (ValueError, StopIteration):
        pass
    return json.loads(line)  # another encoding, extra data or an error: json's own words


def encode(doc: dict[str, object]) -> bytes:
    return dumps(doc).encode() + b"\n"


def decode(line: bytes) -> dict[str, object]:
    try:
        doc = loads(line)
    except ValueError as e:
        raise ProtocolError(f"not a JSON line: {e}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("a message is a JSON object")
    return doc


def error_reply(e: BaseException) -> dict[str, object]:
    kind = type(e).__name__ if type(e).__name__ in ERROR_KINDS else "Internal"
    message = str(e) if isinstance(e, SkiffError | OSError) else f"{type(e).__name__}: {e}"
    return {"ok": False, "kind": kind, "error": message}


def check_reply(doc: dict[str, object]) -> dict[str, object]:
    """The reply itself, or its error raised as the category it names."""
    if doc.get("ok") is True:
        return doc
    message = str(doc.get("error", "the shim failed without a message"))
    raise ERROR_KINDS.get(str(doc.get("kind")), ShimError)(message)


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def frame_json(kind: int, doc: dict[str, object]) -> bytes:
    return frame(kind, dumps(doc).encode())


class FrameDecoder:
    """Splits a byte stream into (kind, payload) frames."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER.size:
            kind, size = HEADER.unpack_from(self._buf)
            if len(self._buf) < HEADER.size + size:
                break
            frames.append((kind, bytes(self._buf[HEADER.size : HEADER.size + size])))
            del self._buf[: HEADER.size + size]
        return frames

    @property
    def pending(self) -> int:
        return len(self._buf)


# --- typed messages ---------------------------------------------------------


def _str(doc: dict[str, object], key: str, default: str | None = None) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise InvalidArgument(f"{key}: expected a string")
    return value


def _bool(doc: dict[str, object], key: str, default: bool = False) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise InvalidArgument(f"{key}: expected true or false")
    return value


def _int(doc: dict[str, object], key: str, default: int | None = None) -> int:
    value = doc.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{key}: expected an integer")
    return value


class Message:
    """A message with typed fields; `FIELDS` lists them in wire order.

    Plain classes rather than dataclasses: the shim parent imports this before
    it forks, and dataclasses would bring inspect, ast and more into every shim.
    """

    __slots__: tuple[str, ...] = ()
    FIELDS: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Message)
            and type(other) is type(self)
            and (self.to_dict() == other.to_dict())
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({fields})"


class SpawnRequest(Message):
    """What a shim needs to own one container.

    `dir` is the container's folder (the shim's socket, pid, exit and log files go
    there); `runtime` is the runtime's command line before its global flags
    (e.g. ["skiff-runtime"] or ["runc"]); `runtime_root` its --root; `log` is
    LogOptions.to_dict() (empty: json-file at <dir>/log.json, 10m x 3).
    """

    FIELDS = ("id", "dir", "bundle", "runtime", "runtime_root", "tty", "stdin", "log")
    __slots__ = FIELDS

    def __init__(
        self,
        id: str,
        dir: str,
        bundle: str,
        runtime: list[str] | None = None,
        runtime_root: str = "/run/skiff-runtime",
        tty: bool = False,
        stdin: bool = False,
        log: dict[str, object] | None = None,
    ) -> None:
        self.id = id
        self.dir = dir
        self.bundle = bundle
        self.runtime = runtime if runtime is not None else ["skiff-runtime"]
        self.runtime_root = runtime_root
        self.tty = tty
        self.stdin = stdin
        self.log = log if log is not None else {}

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> SpawnRequest:
        runtime = doc.get("runtime", ["skiff-runtime"])
        if not (isinstance(runtime, list) and runtime and all(isinstance(a, str) for a in runtime)):
            raise InvalidArgument("runtime: expected a non-empty list of strings")
        log = doc.get("log", {})
        if not isinstance(log, dict):
            raise InvalidArgument("log: expected an object")
        return cls(
            id=_str(doc, "id"),
            dir=_str(doc, "dir"),
            bundle=_str(doc, "bundle"),
            runtime=list(runtime),
            runtime_root=_str(doc, "runtime_root", "/run/skiff-runtime"),
            tty=_bool(doc, "tty"),
            stdin=_bool(doc, "stdin"),
            log=log,
        )


class ShimState(Message):
    """The container as its shim sees it. Times are RFC 3339 (empty until they happen).

    pid is the init's host pid while created/running/paused; exit_code and
    finished_at are of the last run; runs counts the init's exits.
    """

    FIELDS: tuple[str, ...] = ("id", "status", "pid", "shim_pid", "exit_code", "started_at")
    FIELDS += ("finished_at", "runs", "tty", "stdin")
    __slots__ = FIELDS

    def __init__(
        self,
        id: str,
        status: str,
        pid: int = 0,
        shim_pid: int = 0,
        exit_code: int | None = None,
        started_at: str = "",
        finished_at: str = "",
        runs: int = 0,
        tty: bool = False,
        stdin: bool = False,
    ) -> None:
        self.id = id
        self.status = status
        self.pid = pid
        self.shim_pid = shim_pid
        self.exit_code = exit_code
        self.started_at = started_at
        self.finished_at = finished_at
        self.runs = runs
        self.tty = tty
        self.stdin = stdin

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> ShimState:
        code = doc.get("exit_code")
        return cls(
            id=_str(doc, "id"),
            status=_str(doc, "status"),
            pid=_int(doc, "pid", 0),
            shim_pid=_int(doc, "shim_pid", 0),
            exit_code=code if isinstance(code, int) else None,
            started_at=_str(doc, "started_at", ""),
            finished_at=_str(doc, "finished_at", ""),
            runs=_int(doc, "runs", 0),
            tty=_bool(doc, "tty"),
            stdin=_bool(doc, "stdin"),
        )


class ExitStatus(Message):
    """How a run ended: also the content of the exit file (exit.json).

    oom_killed: the kernel's OOM killer ended a process of the container during the
    run (its memory cgroup's oom_kill count grew), as Docker's State.OOMKilled.
    oom_events: the OOM notifications the shim had during the run (cgroup v1; 0
    where it cannot listen), each one an `oom` event in Docker.
    """

    FIELDS = ("exit_code", "started_at", "finished_at", "pid", "oom_killed", "oom_events")
    __slots__ = FIELDS

    def __init__(
        self,
        exit_code: int,
        started_at: str = "",
        finished_at: str = "",
        pid: int = 0,
        oom_killed: bool = False,
        oom_events: int = 0,
    ) -> None:
        self.exit_code = exit_code
        self.started_at = started_at
        self.finished_at = finished_at
        self.pid = pid
        self.oom_killed = oom_killed
        self.oom_events = oom_events

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> ExitStatus:
        return cls(
            exit_code=_int(doc, "exit_code"),
            started_at=_str(doc, "started_at", ""),
            finished_at=_str(doc, "finished_at", ""),
            pid=_int(doc, "pid", 0),
            oom_killed=_bool(doc, "oom_killed"),
            oom_events=_int(doc, "oom_events", 0),
        )


class ExecState(Message):
    FIELDS = ("exec_id", "pid", "running", "exit_code")
    __slots__ = FIELDS

    def __init__(self, exec_id: str, pid: int, running: bool, exit_code: int | None = None) -> None:
        self.exec_id = exec_id
        self.pid = pid
        self.running = running
        self.exit_code = exit_code

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> ExecState:
        code = doc.get("exit_code")
        return cls(
            exec_id=_str(doc, "exec_id"),
            pid=_int(doc, "pid", 0),
            running=_bool(doc, "running"),
            exit_code=code if isinstance(code, int) else None,
        )


class Layout:
    """The files of a container folder that the shim reads and writes."""

    SOCKET = "shim.sock"  # the shim's socket
    PID = "shim.pid"  # the shim's pid
    CONFIG = "shim.json"  # the SpawnRequest it serves
    SHIM_LOG = "shim.log"  # the shim's own stderr (tracebacks)
    RUNTIME_LOG = "runtime.log"  # the runtime's --log (json); errors are read from it
    INIT_PID = "init.pid"  # the runtime's --pid-file for create
    EXIT = "exit.json"  # ExitStatus of the last run, written atomically at its end
    LOG = "log.json"  # the container's json-file log, unless the request names another

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self._prefix = os.path.join(directory, "")  # the folder with a "/" at the end

    def path(self, name: str) -> str:
        """os.path.join(dir, name) for a file name of the folder, without posixpath's
        Python code, which a shim would otherwise run after its fork for every path."""
        return self._prefix + name
