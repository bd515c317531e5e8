"""`skiff exec [-d] [-i] [-t] [-e] [--env-file] [-u] [-w] [--privileged] CONTAINER CMD...`

docker exec's sequence: create the exec, then start it over a hijacked connection
(or detached), stream its output, and exit with its ExitCode from exec inspect. When
the command cannot be run the daemon writes docker's message ("OCI runtime exec
failed: ... executable file not found in $PATH") to the stream and the exit code is
127 (not found) or 126 (not executable), as docker's."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def run(ctx: CliContext, argv: list[str], prog: str = "exec") -> int:
    p = parser(prog, "Execute a command in a running container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs="...", metavar="COMMAND")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--detach-keys", default="")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-u", "--user", default="")
    p.add_argument("-w", "--workdir", default="")
    ns = p.parse_args(argv)
    if not ns.command:
        print(
            f"\"skiff {prog}\" requires at least 2 arguments.\nSee 'skiff {prog} --help'.",
            file=sys.stderr,
        )
        return 125
    from skiff.cli.commands.container import _env
    from skiff.client.extras import Extras

    if ns.interactive and ns.tty and not ns.detach and not sys.stdin.isatty():
        print("the input device is not a TTY", file=sys.stderr)
        return 1
    client = ctx.client()
    extras = Extras(client)
    config: dict[str, Any] = {
        "User": ns.user,
        "Privileged": ns.privileged,
        "Tty": ns.tty,
        "AttachStdin": ns.interactive and not ns.detach,
        "AttachStdout": not ns.detach,
        "AttachStderr": not ns.detach,
        "Detach": ns.detach,
        "DetachKeys": ns.detach_keys,
        "Env": _env(ns),
        "WorkingDir": ns.workdir,
        "Cmd": list(ns.command),
    }
    exec_id = extras.exec_create(ns.container, config)
    if ns.detach:
        body = json.dumps({"Detach": True, "Tty": ns.tty}).encode()
        headers = {"Content-Type": "application/json"}
        client.request("POST", f"/exec/{exec_id}/start", None, body, headers)
        return 0
    _attached(ctx, exec_id, ns.interactive, ns.tty)
    return _exit_code(extras, exec_id)


def _terminal_size() -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return size.lines, size.columns


def _resize(ctx: CliContext, exec_id: str) -> None:
    from skiff.client import ApiError
    from skiff.client.extras import Extras

    size = _terminal_size()
    if size is None:
        return
    try:
        Extras(ctx.client()).exec_resize(exec_id, size[0], size[1])
    except (OSError, ApiError):
        pass


def _attached(ctx: CliContext, exec_id: str, stdin: bool, tty: bool) -> None:
    from skiff.cli.commands.container import _copy_output, _send_stdin
    from skiff.client.hijack import hijack

    start: dict[str, Any] = {"Detach": False, "Tty": tty}
    size = _terminal_size() if tty and sys.stdout.isatty() else None
    if size is not None:
        start["ConsoleSize"] = list(size)
    sock, rest = hijack(ctx.client(), f"/exec/{exec_id}/start", None, json.dumps(start).encode())
    saved = None
    if stdin and tty and sys.stdin.isatty():
        import signal
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(sys.stdin.fileno())
        ttymod.setraw(sys.stdin.fileno())
        signal.signal(signal.SIGWINCH, lambda *_: _resize(ctx, exec_id))
    if size is not None:
        _resize(ctx, exec_id)
    try:
        if stdin:
            threading.Thread(target=_send_stdin, args=(sock,), daemon=True).start()
        _copy_output(sock, rest, tty)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        sock.close()


def _exit_code(extras: Any, exec_id: str) -> int:
    """The exec's ExitCode; the stream can end a moment before it is recorded."""
    deadline = time.monotonic() + 10
    while True:
        info = extras.exec_inspect(exec_id)
        if info.get("ExitCode") is not None and not info.get("Running"):
            return int(info["ExitCode"])
        if time.monotonic() > deadline:
            return 0 if info.get("ExitCode") is None else int(info["ExitCode"])
        time.sleep(0.02)
