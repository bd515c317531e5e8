"""skiff-runtime's entry point: global flags, then one module per command.

    skiff-runtime [--root DIR] [--log FILE] [--log-format text|json]
                  [--systemd-cgroup] [--debug] COMMAND [ARGS...]

Errors go to stderr and, with --log, to the log file as runc writes them
(containerd reads the last `error` line of a json log to report a failure).
"""

from __future__ import annotations

import sys

from skiff.runtime.cli.args import Flag, parse

COMMANDS = {
    "create": "create",
    "start": "start",
    "state": "state",
    "kill": "kill",
    "delete": "delete",
    "run": "run",
    "exec": "exec_",
    "list": "list_",
    "ps": "ps",
    "pause": "pause",
    "resume": "pause",
    "spec": "spec",
    "features": "features",
    "update": "update",
}

GLOBAL_FLAGS = [
    Flag("root", default="/run/skiff-runtime"),
    Flag("log"),
    Flag("log-format"),
    Flag("systemd-cgroup", boolean=True),
    Flag("debug", boolean=True),
    Flag("criu"),
    Flag("rootless"),
    Flag("help", "h", boolean=True),
    Flag("version", "v", boolean=True),
]

VERSION = "0.1.0"
SPEC_VERSION = "1.0.2"


class Globals:
    __slots__ = ("command", "log", "log_format", "root", "systemd_cgroup")

    def __init__(self, root: str, log: str | None, log_format: str, command: str) -> None:
        self.root = root
        self.log = log
        self.log_format = log_format
        self.command = command
        # cgroupsPath is "slice:prefix:name" (containerd's SystemdCgroup option,
        # dockerd's native.cgroupdriver=systemd); only create reads it.
        self.systemd_cgroup = False


def usage() -> str:
    return (
        "usage: skiff-runtime [global flags] COMMAND [flags] [ID]\n"
        "commands: " + ", ".join(sorted(COMMANDS)) + "\n"
        "global flags: --root DIR, --log FILE, --log-format text|json, --systemd-cgroup, --debug\n"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    g = Globals("/run/skiff-runtime", None, "text", "")
    try:
        p = parse(argv, GLOBAL_FLAGS, stop_at_first_arg=True)
        g.root = p.text("root", "/run/skiff-runtime")
        g.log = p.opt("log")
        g.log_format = p.text("log-format", "text")
        g.systemd_cgroup = p.flag("systemd-cgroup")
        if p.flag("version"):
            print(f"skiff-runtime version {VERSION}\nspec: {SPEC_VERSION}")
            return 0
        if p.flag("help") or not p.args:
            sys.stdout.write(usage())
            return 0 if p.flag("help") else 1
        g.command, rest = p.args[0], p.args[1:]
        module_name = COMMANDS.get(g.command)
        if module_name is None:
            raise UsageError(f"no such command: {g.command}")
        import importlib

        module = importlib.import_module(f"skiff.runtime.cli.{module_name}")
        code: int = module.command(g, rest)
        return code
    except Exception as e:
        from skiff.errors import SkiffError

        if not isinstance(e, SkiffError | UsageError | OSError | ValueError):
            raise
        report(g, _message(e))
        return 1
    except KeyboardInterrupt:
        return 130


class UsageError(Exception):
    pass


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename:
        return f"{e.strerror}: {e.filename}"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror  # not "[Errno 11] ..."
    return str(e)


def report(g: Globals, message: str) -> None:
    print(f"skiff-runtime: {message}", file=sys.stderr)
    if not g.log:
        return
    import time

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if g.log_format == "json":
        import json

        line = json.dumps({"level": "error", "msg": message, "time": stamp})
    else:
        line = f'time="{stamp}" level=error msg="{message}"'
    try:
        with open(g.log, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def need_id(g: Globals, args: list[str], count: int = 1) -> str:
    if len(args) < count:
        raise UsageError(f'"{g.command}" requires a container id')
    return args[0]


if __name__ == "__main__":
    sys.exit(main())
