"""`docker exec`: exec instances of running containers, started through the shim.

    create(container, ExecConfig) -> exec id        POST /containers/{id}/exec
    start(exec id, io | None)                        POST /exec/{id}/start (io: attached)
    resize(exec id, h, w)                            POST /exec/{id}/resize
    inspect(exec id) -> ExecRecord                   GET  /exec/{id}/json

The process is the container's own OCI process (config.json: capabilities, rlimits,
apparmor...) with the exec's args, env (appended, later wins), cwd, user and terminal.
The shim runs `skiff-runtime exec` and streams frames whose header is Docker's: a
tty's output passes through raw, otherwise frames are re-encoded as Docker's multiplexed
stream (the shim's EXIT frame ends the stream and carries the exit code).

A process that cannot start is reported as dockerd does: the runtime's message is
written to the stream and the exec's ExitCode is 127 (not found) or 126 (anything
else, e.g. permission denied), which is what `docker exec` exits with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from skiff.api.framing import encode_frame
from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError
from skiff.services.core import ContainerCore, is_running
from skiff.shim import protocol as p

KEEP_FINISHED = 256
KEEP_BASES = 256  # containers whose parsed config.json process is kept


@dataclass(frozen=True)
class ExecConfig:
    cmd: list[str]
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    tty: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = True
    attach_stderr: bool = True
    privileged: bool = False
    detach_keys: str = ""

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> ExecConfig:
        cmd = body.get("Cmd")
        if isinstance(cmd, str):
            cmd = [cmd]
        if not cmd or not isinstance(cmd, list):
            raise InvalidArgument("No exec command specified")
        env = body.get("Env") or []
        if not isinstance(env, list):
            raise InvalidArgument("Env: expected a list of strings")
        return cls(
            cmd=[str(a) for a in cmd],
            env=[str(e) for e in env],
            working_dir=str(body.get("WorkingDir") or ""),
            user=str(body.get("User") or ""),
            tty=bool(body.get("Tty")),
            attach_stdin=bool(body.get("AttachStdin")),
            attach_stdout=bool(body.get("AttachStdout")),
            attach_stderr=bool(body.get("AttachStderr")),
            privileged=bool(body.get("Privileged")),
            detach_keys=str(body.get("DetachKeys") or ""),
        )


@dataclass
class ExecRecord:
    id: str
    container_id: str
    config: ExecConfig
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ExecIO:
    """The client's side of an attached exec: `read` stdin (b"" at EOF), `write`
    output bytes (already framed as the client expects)."""

    def __init__(
        self,
        read: Callable[[], Awaitable[bytes]],
        write: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self.read = read
        self.write = write


class ExecService:
    def __init__(self, core: ContainerCore) -> None:
        self._core = core
        self._execs: dict[str, ExecRecord] = {}
        # container id -> (config.json's mtime and size, its process object)
        self._bases: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}

    # --- create / inspect ------------------------------------------------------------

    def create(self, ref: str, config: ExecConfig) -> str:
        c = self._core.get(ref)
        if not is_running(c):
            raise Conflict(f"Container {c.id} is not running")
        if c.state.paused:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        exec_id = secrets.token_hex(32)
        self._execs[exec_id] = ExecRecord(exec_id, c.id, config)
        self._forget_old()
        return exec_id

    def get(self, exec_id: str) -> ExecRecord:
        record = self._execs.get(exec_id)
        if record is None:
            matches = (
                [r for k, r in self._execs.items() if k.startswith(exec_id)] if exec_id else []
            )
            if len(matches) != 1:
                raise NotFound(f"No such exec instance: {exec_id}")
            record = matches[0]
        return record

    def exec_ids(self, container_id: str) -> list[str]:
        return [r.id for r in self._execs.values() if r.container_id == container_id]

    async def inspect(self, exec_id: str) -> ExecRecord:
        record = self.get(exec_id)
        if record.running:
            c = self._core.get(record.container_id)
            with contextlib.suppress(SkiffError, OSError):
                state = await self._core.shim(c).exec_state(record.id)
                record.pid = int(state.pid) or record.pid
        return record

    # --- start -----------------------------------------------------------------------

    async def start(
        self,
        exec_id: str,
        io: ExecIO | None,
        tty: bool | None = None,
        console_size: tuple[int, int] | None = None,
    ) -> None:
        """Start the exec; with `io`, stream until it exits (stdin EOF closes its stdin).
        `console_size` (height, width) sizes its pty before it runs (exec start's
        ConsoleSize), so `stty size` in a short command sees the client's terminal."""
        record = self.get(exec_id)
        if record.started:
            if record.running:
                raise Conflict(f"Error: Exec command {record.id} is already running")
            raise Conflict(f"Error: Exec command {record.id} has already run")
        c = self._core.get(record.container_id)
        if not is_running(c):
            raise Conflict(f"Container {c.id} is not running")
        record.started = True
        record.running = True
        config = record.config
        use_tty = config.tty if tty is None else tty or config.tty
        try:
            base = self._process_base(c)
            if config.user or c.config.get("User"):  # reads the rootfs's passwd and group
                process = await asyncio.to_thread(
                    build_process, c, config, use_tty, console_size, base
                )
            else:
                process = build_process(c, config, use_tty, console_size, base)
            shim = self._core.shim(c)
            with_stdin = bool(io is not None and config.attach_stdin)
            result = await shim.exec(record.id, process, stdin=with_stdin, attach=io is not None)
        except (SkiffError, OSError) as exc:
            record.running = False
            record.exit_code = start_error_code(str(exc))
            record.done.set()
            if io is not None:
                message = start_error_message(str(exc)).encode() + b"\r\n"
                with contextlib.suppress(OSError, ConnectionError):
                    await io.write(message if use_tty else encode_frame(p.STDOUT, message))
                return
            raise
        self._core.event(c, f"exec_start: {' '.join(config.cmd)}", execID=record.id)
        if io is None:
            record.pid = int(result) if isinstance(result, int) else 0
            asyncio.get_running_loop().create_task(self._wait_detached(record))
            return
        record.pid = getattr(result, "pid", 0)
        await self._pump(record, result, io, use_tty)

    async def _pump(self, record: ExecRecord, stream: Any, io: ExecIO, tty: bool) -> None:
        config = record.config

        async def stdin() -> None:
            if not config.attach_stdin:
                return
            try:
                while data := await io.read():
                    await stream.write(data)
            except (OSError, ConnectionError):
                return
            with contextlib.suppress(OSError, ConnectionError):
                await stream.close_stdin()

        feeder = asyncio.get_running_loop().create_task(stdin())
        client_gone = False
        try:
            while (item := await stream.read()) is not None:
                kind, data = item
                if kind == p.STDOUT and not config.attach_stdout:
                    continue
                if kind == p.STDERR and not config.attach_stderr:
                    continue
                if client_gone:
                    continue
                try:
                    await io.write(data if tty else encode_frame(kind, data))
                except (OSError, ConnectionError):
                    client_gone = True  # keep reading: the exit code still comes
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
            await stream.close()
        code = stream.exit_code
        if code is None:
            c = self._core.get(record.container_id)
            with contextlib.suppress(SkiffError, OSError):
                code = (await self._core.shim(c).wait_exec(record.id)).exit_code
        self._finish(record, code)

    async def _wait_detached(self, record: ExecRecord) -> None:
        code: int | None = None
        with contextlib.suppress(SkiffError, OSError):
            c = self._core.get(record.container_id)
            code = (await self._core.shim(c).wait_exec(record.id)).exit_code
        self._finish(record, code)

    def _finish(self, record: ExecRecord, code: int | None) -> None:
        record.running = False
        record.exit_code = code if code is not None else 137
        record.done.set()
        with contextlib.suppress(NotFound):
            c = self._core.get(record.container_id)
            self._core.event(c, "exec_die", execID=record.id, exitCode=str(record.exit_code))

    async def resize(self, exec_id: str, height: int, width: int) -> None:
        record = self.get(exec_id)
        if not record.running:
            raise Conflict(f"Exec {record.id} is not running")  # dockerd: 409
        c = self._core.get(record.container_id)
        await self._core.shim(c).resize(height, width, exec_id=record.id)

    def _process_base(self, c: Any) -> dict[str, Any]:
        """The container's OCI process (config.json's), parsed once while the file
        is unchanged: an exec needs it, and parsing a spec is most of a millisecond."""
        path = os.path.join(c.dir, "config.json")
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._bases.get(c.id)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            with open(path, "rb") as f:
                spec = json.loads(f.read())
            base: dict[str, Any] = dict(spec.get("process") or {})
        except (OSError, ValueError, AttributeError):
            return {}
        self._bases.pop(c.id, None)
        self._bases[c.id] = (stamp, base)
        while len(self._bases) > KEEP_BASES:
            del self._bases[next(iter(self._bases))]
        return base

    def _forget_old(self) -> None:
        finished = [k for k, r in self._execs.items() if r.started and not r.running]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._execs[key]


def start_error_code(message: str) -> int:
    """moby's translateContainerdStartErr: 127 for a missing command, else 126."""
    low = message.lower()
    if "executable file not found" in low or "no such file or directory" in low:
        return 127
    return 126


def start_error_message(message: str) -> str:
    if message.startswith("OCI runtime exec failed"):
        return message
    return f"OCI runtime exec failed: exec failed: unable to start container process: {message}: unknown"


def build_process(
    c: Any,
    config: ExecConfig,
    tty: bool,
    console_size: tuple[int, int] | None,
    base: dict[str, Any],
) -> dict[str, object]:
    """The container's OCI process (`base`, not changed) with the exec's settings."""
    env = list(base.get("env") or [])
    for item in config.env:
        key = item.split("=", 1)[0]
        env = [e for e in env if e.split("=", 1)[0] != key]
        env.append(item)
    process: dict[str, Any] = {
        **base,
        "terminal": tty,
        "args": list(config.cmd),
        "env": env,
        "cwd": config.working_dir or base.get("cwd") or "/",
    }
    process.pop("consoleSize", None)
    if tty and console_size and console_size[0] > 0 and console_size[1] > 0:
        process["consoleSize"] = {"height": console_size[0], "width": console_size[1]}
    user_spec = config.user or str(c.config.get("User") or "")
    if user_spec:
        process["user"] = resolve_user(c.rootfs, user_spec)
    if config.privileged:
        from skiff.containers.spec import host_capabilities

        # Docker's exec --privileged: every capability, beyond the container's own
        # bounding set (the runtime starts an exec from the host, not from the
        # container's init). Only those the daemon holds itself, as for run --privileged:
        # capset cannot grant one missing from the host's bounding set.
        caps = host_capabilities()
        process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    return process


def resolve_user(rootfs: str, spec: str) -> dict[str, object]:
    """`exec -u user[:group]` as the OCI process's user, looked up in the container's
    /etc/passwd and /etc/group as for `run -u` (containers.users, runc's rules: the
    additional gids are the member groups, or else the user's own gid)."""
    from skiff.containers.users import resolve_user as lookup

    user = lookup(rootfs, spec)
    return {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)}
