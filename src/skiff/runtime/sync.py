"""The messages between `create` and the processes it forks.

A SOCK_SEQPACKET socket pair keeps message boundaries, so each message is one
JSON object `{"type": ..., ...}` in one datagram. Every stage may answer any
message with `{"type": "error", "message": ...}` and exit; the receiver turns
that into ChildError.

    create (host)                 stage-1 (child)              init (grandchild)
    ─────────────                 ───────────────              ─────────────────
                          ─go───▶ [join the cgroup], join
                                  namespaces by path
                        ◀─userns─ unshare(user)                (only with a new
    write uid/gid maps ─mapped──▶ become root in it             user namespace)
                                  unshare(the rest) ─fork────▶ (waits on a pipe
                        ◀──pid─── report init's host pid, ───▶  until stage-1
                                  release init, exit            has said "pid")
                                                                [join the cgroup]
                                                                hostname, mounts,
                                                                devices, sysctls
                        ◀─────────────────────────────hooks─── ask for hooks
    run prestart and createRuntime hooks
                        ──hooks-done (state)─────────────────▶ createContainer hooks,
                                                                pivot_root, console,
                                                                look up the binary
                        ◀─────────────────────────────ready─── wait on exec.fifo
    record state, exit                                          (until `start`)

Init joins the container's cgroup first thing, then unshares a new cgroup
namespace; with a new user namespace stage-1 joins it instead, before it
unshares anything, and init is born in it (create._fork_stages).
"""

from __future__ import annotations

import json
import socket

from skiff.errors import SkiffError


class ChildError(SkiffError):
    """A forked stage reported an error."""


class ProtocolError(SkiffError):
    """A stage said something out of turn, or went away."""


def gone(e: BaseException) -> bool:
    """Whether `e` (or what caused it) says the process it was about has exited:
    then the reason it exited is waiting on the channel."""
    cause = e.__cause__ if e.__cause__ is not None else e
    return isinstance(cause, ProcessLookupError)


class Channel:
    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def send(self, kind: str, **fields: object) -> None:
        fields["type"] = kind
        self.sock.send(json.dumps(fields).encode())

    def recv(self, *expected: str) -> dict[str, object]:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ProtocolError(f"the container process exited while waiting for {expected}")
        msg: dict[str, object] = json.loads(data)
        kind = msg.get("type")
        if kind == "error":
            raise ChildError(str(msg.get("message")))
        if kind not in expected:
            raise ProtocolError(f"expected {expected}, got {kind!r}")
        return msg

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
