"""Container commands, docker's flags and output: run, create, start, stop, kill, restart,
pause, unpause, rm, wait, rename, ps, logs, attach (and `skiff container CMD`).

Each command parses its flags and calls the API; `run` is docker run's sequence:
create (pull on "No such image" and create again), attach and wait before start,
then stream until the container exits, exiting with its status (125 for a daemon
error, 126/127 when the command cannot be run, as docker)."""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

from skiff.cli.args import ArgumentParser, parser
from skiff.cli.context import CliContext
from skiff.client import ApiError

MEMORY_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _bytes(text: str) -> int:
    t = text.strip().lower().removesuffix("b") or "0"
    if t[-1] in MEMORY_UNITS:
        return int(float(t[:-1]) * MEMORY_UNITS[t[-1]])
    return int(t)


def _add_create_flags(p: ArgumentParser) -> None:
    a = p.add_argument
    a("image", metavar="IMAGE")
    a("command", nargs="...", metavar="COMMAND")
    a("--name", default="")
    a("-i", "--interactive", action="store_true")
    a("-t", "--tty", action="store_true")
    a("-e", "--env", action="append", default=[])
    a("--env-file", action="append", default=[])
    a("-w", "--workdir", default="")
    a("-u", "--user", default="")
    a("--entrypoint", default=None)
    a("-h", "--hostname", default="")
    a("-l", "--label", action="append", default=[])
    a("--init", action="store_true")
    a("--restart", default="no")
    a("--rm", action="store_true")
    a("--read-only", action="store_true")
    a("--tmpfs", action="append", default=[])
    a("-v", "--volume", action="append", default=[])
    a("--mount", action="append", default=[])
    a("-m", "--memory", default="")
    a("--cpus", default="")
    a("--pids-limit", type=int, default=0)
    a("--cap-add", action="append", default=[])
    a("--cap-drop", action="append", default=[])
    a("--privileged", action="store_true")
    a("--security-opt", action="append", default=[])
    a("--network", "--net", default="default")
    a("--network-alias", "--net-alias", action="append", default=[])
    a("--ip", default="")
    a("-p", "--publish", action="append", default=[])
    a("-P", "--publish-all", action="store_true")
    a("--expose", action="append", default=[])
    a("--stop-signal", default="")
    a("--stop-timeout", type=int, default=None)


def _parser(prog: str, description: str) -> ArgumentParser:
    # add_help=False: `run -h HOSTNAME`; only --help helps.
    return ArgumentParser(prog=f"skiff {prog}", description=description, add_help=False)


def _env(ns: Any) -> list[str]:
    env: list[str] = []
    for path in ns.env_file:
        with open(path, encoding="utf-8") as f:
            for raw in f:
                line = raw.strip()
                if line and not line.startswith("#"):
                    env.append(line if "=" in line else f"{line}={os.environ.get(line, '')}")
    for item in ns.env:
        env.append(item if "=" in item else f"{item}={os.environ.get(item, '')}")
    return env


def _mounts(ns: Any) -> tuple[list[str], list[dict[str, Any]]]:
    binds = list(ns.volume)
    mounts = []
    for spec in ns.mount:
        m: dict[str, Any] = {}
        for part in spec.split(","):
            key, _, value = part.partition("=")
            key = {"src": "source", "dst": "target", "destination": "target"}.get(key, key)
            if key == "type":
                m["Type"] = value
            elif key == "source":
                m["Source"] = value
            elif key == "target":
                m["Target"] = value
            elif key in ("readonly", "ro"):
                m["ReadOnly"] = value in ("", "1", "true")
        mounts.append(m)
    return binds, mounts


def _ports(
    publish: list[str], expose: list[str]
) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    """-p and --expose as docker's CLI sends them (ranges one key per port)."""
    from skiff.network.ports import parse_port_spec

    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in publish:
        for b in parse_port_spec(spec):
            exposed[b.key] = {}
            port = ""
            if b.host_port:
                port = str(b.host_port)
                if b.host_port_end:
                    port += f"-{b.host_port_end}"
            bindings.setdefault(b.key, []).append({"HostIp": b.host_ip, "HostPort": port})
    for item in expose:
        num, _, proto = item.partition("/")
        exposed[f"{num}/{proto or 'tcp'}"] = {}
    return exposed, bindings


def create_body(ns: Any) -> dict[str, Any]:
    restart_name, _, count = ns.restart.partition(":")
    labels = dict(item.partition("=")[::2] for item in ns.label)
    tmpfs = {}
    for item in ns.tmpfs:
        path, _, opts = item.partition(":")
        tmpfs[path] = opts
    binds, mounts = _mounts(ns)
    host: dict[str, Any] = {
        "AutoRemove": ns.rm,
        "RestartPolicy": {"Name": restart_name or "no", "MaximumRetryCount": int(count or 0)},
        "ReadonlyRootfs": ns.read_only,
        "Init": ns.init or None,
        "Tmpfs": tmpfs or None,
        "Binds": binds or None,
        "Mounts": mounts or None,
        "Memory": _bytes(ns.memory) if ns.memory else 0,
        "NanoCpus": int(float(ns.cpus) * 1e9) if ns.cpus else 0,
        "PidsLimit": ns.pids_limit or None,
        "CapAdd": ns.cap_add or None,
        "CapDrop": ns.cap_drop or None,
        "Privileged": ns.privileged,
        "SecurityOpt": ns.security_opt or None,
        "NetworkMode": ns.network,
    }
    exposed, bindings = _ports(ns.publish, ns.expose)
    if bindings:
        host["PortBindings"] = bindings
    host["PublishAllPorts"] = ns.publish_all
    if ns.tty and sys.stdout.isatty():
        size = os.get_terminal_size(sys.stdout.fileno())
        host["ConsoleSize"] = [size.lines, size.columns]
    body: dict[str, Any] = {
        "Image": ns.image,
        "Cmd": ns.command or None,
        "Env": _env(ns),
        "WorkingDir": ns.workdir,
        "User": ns.user,
        "Hostname": ns.hostname,
        "Labels": labels,
        "Tty": ns.tty,
        "OpenStdin": ns.interactive,
        "StdinOnce": ns.interactive,
        "AttachStdin": ns.interactive,
        "AttachStdout": True,
        "AttachStderr": True,
        "HostConfig": host,
    }
    if ns.entrypoint is not None:
        body["Entrypoint"] = [ns.entrypoint] if ns.entrypoint else [""]
    if ns.stop_signal:
        body["StopSignal"] = ns.stop_signal
    if ns.stop_timeout is not None:
        body["StopTimeout"] = ns.stop_timeout
    if exposed:
        body["ExposedPorts"] = exposed
    if ns.network_alias or ns.ip:
        endpoint: dict[str, Any] = {"Aliases": ns.network_alias or None}
        if ns.ip:
            endpoint["IPAMConfig"] = {"IPv4Address": ns.ip}
        body["NetworkingConfig"] = {"EndpointsConfig": {ns.network: endpoint}}
    return body


def _pull(ctx: CliContext, image: str) -> None:
    name, _, tag = (
        image.rpartition(":") if ":" in image.rsplit("/", maxsplit=1)[-1] else (image, "", "latest")
    )
    for msg in ctx.client().stream_json(
        "POST", "/images/create", {"fromImage": name, "tag": tag or "latest"}
    ):
        if msg.get("error"):
            raise ApiError(500, str(msg["error"]))
        if msg.get("status") and not msg.get("progressDetail"):
            print(
                f"{msg.get('id', '') + ': ' if msg.get('id') else ''}{msg['status']}",
                file=sys.stderr,
            )


def _create(ctx: CliContext, ns: Any) -> str:
    body = json.dumps(create_body(ns)).encode()
    query = {"name": ns.name or None}
    headers = {"Content-Type": "application/json"}
    client = ctx.client()
    try:
        resp = client.request("POST", "/containers/create", query, body, headers)
    except ApiError as exc:
        if exc.status != 404 or "No such image" not in exc.message:
            raise
        ref = (
            ns.image if ":" in ns.image.split("/")[-1] or "@" in ns.image else ns.image + ":latest"
        )
        print(f"Unable to find image '{ref}' locally", file=sys.stderr)
        _pull(ctx, ns.image)
        resp = client.request("POST", "/containers/create", query, body, headers)
    cid: str = resp.json()["Id"]
    return cid


def _start_exit(message: str) -> int:
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def _fail(exc: Exception, prog: str) -> int:
    print(f"skiff: {exc}\n\nRun 'skiff {prog} --help' for more information", file=sys.stderr)
    return 125


def run_run(ctx: CliContext, argv: list[str]) -> int:
    p = _parser("run", "Create and run a new container from an image")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--detach-keys", default="")
    _add_create_flags(p)
    ns = p.parse_args(argv)
    try:
        cid = _create(ctx, ns)
    except ApiError as exc:
        return _fail(exc, "run")
    client = ctx.client()
    if ns.detach:
        try:
            client.request("POST", f"/containers/{cid}/start")
        except ApiError as exc:
            _fail(exc, "run")
            return _start_exit(exc.message)
        print(cid)
        return 0
    return _attached(ctx, cid, ns.interactive, ns.tty, ns.rm, ns.detach_keys, start=True)


def _attached(
    ctx: CliContext, cid: str, stdin: bool, tty: bool, remove: bool, keys: str, start: bool
) -> int:
    from skiff.client.hijack import hijack

    client = ctx.client()
    query: dict[str, Any] = {"stream": 1, "stdout": 1, "stderr": 1, "stdin": 1 if stdin else None}
    if keys:
        query["detachKeys"] = keys
    sock, rest = hijack(client, f"/containers/{cid}/attach", query)
    status: dict[str, int] = {}

    def wait() -> None:
        cond = "removed" if remove else "next-exit"
        try:
            for msg in client.stream_json("POST", f"/containers/{cid}/wait", {"condition": cond}):
                status["code"] = int(msg.get("StatusCode", 0))
        except ApiError:
            pass

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    if start:
        try:
            client.request("POST", f"/containers/{cid}/start")
        except ApiError as exc:
            sock.close()
            _fail(exc, "run")
            return _start_exit(exc.message)
    raw_mode = stdin and tty and sys.stdin.isatty()
    saved = None
    if raw_mode:
        import termios
        import tty as ttymod

        saved = termios.tcgetattr(sys.stdin.fileno())
        ttymod.setraw(sys.stdin.fileno())
        _resize(ctx, cid)
        import signal

        signal.signal(signal.SIGWINCH, lambda *_: _resize(ctx, cid))
    elif tty and sys.stdout.isatty():
        _resize(ctx, cid)
    try:
        if stdin:
            threading.Thread(target=_send_stdin, args=(sock,), daemon=True).start()
        _copy_output(sock, rest, tty)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        sock.close()
    waiter.join(timeout=None if not stdin else 30)
    return status.get("code", 0)


def _resize(ctx: CliContext, cid: str) -> None:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
        ctx.client().request(
            "POST", f"/containers/{cid}/resize", {"h": size.lines, "w": size.columns}
        )
    except (OSError, ApiError):
        pass


def _send_stdin(sock: Any) -> None:
    import socket as socketmod

    fd = sys.stdin.fileno()
    try:
        while data := os.read(fd, 65536):
            sock.sendall(data)
        sock.shutdown(socketmod.SHUT_WR)
    except OSError:
        pass


def _copy_output(sock: Any, rest: bytes, tty: bool) -> None:
    from skiff.api.framing import FrameDecoder

    out = sys.stdout.buffer
    err = sys.stderr.buffer
    decoder = FrameDecoder()
    data = rest
    while True:
        if data:
            if tty:
                out.write(data)
                out.flush()
            else:
                for kind, payload in decoder.feed(data):
                    stream = err if kind == 2 else out
                    stream.write(payload)
                    stream.flush()
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return


def run_create(ctx: CliContext, argv: list[str]) -> int:
    p = _parser("create", "Create a new container")
    _add_create_flags(p)
    ns = p.parse_args(argv)
    try:
        print(_create(ctx, ns))
    except ApiError as exc:
        return _fail(exc, "create")
    return 0


def _each(ctx: CliContext, names: list[str], call: Any, echo: bool = True) -> int:
    errors = []
    for name in names:
        try:
            call(ctx.client(), name)
            if echo:
                print(name)
        except ApiError as exc:
            errors.append(str(exc))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def run_start(ctx: CliContext, argv: list[str]) -> int:
    p = parser("start", "Start one or more stopped containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    ns = p.parse_args(argv)
    if ns.attach or ns.interactive:
        info = ctx.client().get_json(f"/containers/{ns.containers[0]}/json")
        cid, tty = info["Id"], bool(info["Config"]["Tty"])
        return _attached(ctx, cid, ns.interactive, tty, False, "", start=True)
    return _each(ctx, ns.containers, lambda c, n: c.request("POST", f"/containers/{n}/start"))


def _stop_like(action: str, description: str) -> Any:
    def run(ctx: CliContext, argv: list[str]) -> int:
        p = parser(action, description)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.add_argument("-t", "--time", "--timeout", type=int, default=None)
        p.add_argument("-s", "--signal", default="")
        ns = p.parse_args(argv)
        q = {"t": ns.time, "signal": ns.signal or None}
        return _each(
            ctx, ns.containers, lambda c, n: c.request("POST", f"/containers/{n}/{action}", q)
        )

    return run


run_stop = _stop_like("stop", "Stop one or more running containers")
run_restart = _stop_like("restart", "Restart one or more containers")


def run_kill(ctx: CliContext, argv: list[str]) -> int:
    p = parser("kill", "Kill one or more running containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-s", "--signal", default="")
    ns = p.parse_args(argv)
    q = {"signal": ns.signal or None}
    return _each(ctx, ns.containers, lambda c, n: c.request("POST", f"/containers/{n}/kill", q))


def _simple(action: str, description: str) -> Any:
    def run(ctx: CliContext, argv: list[str]) -> int:
        p = parser(action, description)
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        ns = p.parse_args(argv)
        return _each(
            ctx, ns.containers, lambda c, n: c.request("POST", f"/containers/{n}/{action}")
        )

    return run


run_pause = _simple("pause", "Pause all processes within one or more containers")
run_unpause = _simple("unpause", "Unpause all processes within one or more containers")


def run_rm(ctx: CliContext, argv: list[str]) -> int:
    p = parser("rm", "Remove one or more containers")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    ns = p.parse_args(argv)
    q = {"force": ns.force or None, "v": ns.volumes or None}
    return _each(ctx, ns.containers, lambda c, n: c.request("DELETE", f"/containers/{n}", q))


def run_wait(ctx: CliContext, argv: list[str]) -> int:
    p = parser("wait", "Block until one or more containers stop, then print their exit codes")
    p.add_argument("containers", nargs="+", metavar="CONTAINER")
    ns = p.parse_args(argv)

    def wait(c: Any, n: str) -> None:
        for msg in c.stream_json("POST", f"/containers/{n}/wait"):
            print(msg.get("StatusCode"))

    return _each(ctx, ns.containers, wait, echo=False)


def run_rename(ctx: CliContext, argv: list[str]) -> int:
    p = parser("rename", "Rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    ns = p.parse_args(argv)
    q = {"name": ns.new_name}
    return _each(
        ctx, [ns.container], lambda c, n: c.request("POST", f"/containers/{n}/rename", q), False
    )


def run_attach(ctx: CliContext, argv: list[str]) -> int:
    p = parser("attach", "Attach local standard input, output, and error to a running container")
    p.add_argument("container")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--detach-keys", default="")
    ns = p.parse_args(argv)
    info = ctx.client().get_json(f"/containers/{ns.container}/json")
    stdin = not ns.no_stdin and bool(info["Config"]["OpenStdin"])
    return _attached(
        ctx, info["Id"], stdin, bool(info["Config"]["Tty"]), False, ns.detach_keys, False
    )


def run_logs(ctx: CliContext, argv: list[str]) -> int:
    from skiff.cli.timestamps import to_api_timestamp

    p = parser("logs", "Fetch the logs of a container")
    p.add_argument("container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--since", default="")
    p.add_argument("--until", default="")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("-t", "--timestamps", action="store_true")
    ns = p.parse_args(argv)
    client = ctx.client()
    info = client.get_json(f"/containers/{ns.container}/json")
    q: dict[str, Any] = {"stdout": 1, "stderr": 1, "tail": ns.tail}
    q.update(follow=ns.follow or None, timestamps=ns.timestamps or None)
    if ns.since:
        q["since"] = to_api_timestamp(ns.since)
    if ns.until:
        q["until"] = to_api_timestamp(ns.until)
    chunks = client.stream_raw("GET", f"/containers/{info['Id']}/logs", q)
    if info["Config"]["Tty"]:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return 0
    from skiff.api.framing import FrameDecoder

    decoder = FrameDecoder()
    for chunk in chunks:
        for kind, payload in decoder.feed(chunk):
            stream = sys.stderr.buffer if kind == 2 else sys.stdout.buffer
            stream.write(payload)
            stream.flush()
    return 0


def run_ps(ctx: CliContext, argv: list[str]) -> int:
    p = parser("ps", "List containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("--format", default="")
    p.add_argument("--no-trunc", action="store_true")
    ns = p.parse_args(argv)
    filters: dict[str, list[str]] = {}
    for item in ns.filter:
        key, _, value = item.partition("=")
        filters.setdefault(key, []).append(value)
    limit = 1 if ns.latest else ns.last
    q: dict[str, Any] = {"all": (ns.all or limit > 0) or None, "size": ns.size or None}
    if limit > 0:
        q["limit"] = limit
    if filters:
        q["filters"] = json.dumps(filters)
    items = ctx.client().get_json("/containers/json", q)
    rows = [_ps_row(c, ns.no_trunc) for c in items]
    if ns.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    from skiff.cli.format import format_items

    fmt = ns.format or (
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
        + ("\t{{.Size}}" if ns.size else "")
    )
    headers = {
        "ID": "CONTAINER ID",
        "RunningFor": "CREATED",
        "Names": "NAMES",
        "Image": "IMAGE",
        "Command": "COMMAND",
        "Status": "STATUS",
        "Ports": "PORTS",
        "Size": "SIZE",
    }
    sys.stdout.write(format_items(fmt, rows, headers))
    return 0


def _ps_row(c: dict[str, Any], no_trunc: bool) -> dict[str, Any]:
    import time

    from skiff.units import human_duration

    command = c["Command"]
    if not no_trunc and len(command) > 20:
        command = command[:19] + "…"
    size = ""
    if "SizeRw" in c:
        size = f"{_human_size(c['SizeRw'])} (virtual {_human_size(c.get('SizeRootFs', 0))})"
    return {
        "ID": c["Id"] if no_trunc else c["Id"][:12],
        "Image": c["Image"],
        "Command": f'"{command}"',
        "RunningFor": human_duration(time.time() - c["Created"]) + " ago",
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(c["Created"])),
        "Status": c["Status"],
        "State": c["State"],
        "Ports": "",
        "Names": ",".join(n.lstrip("/") for n in c["Names"]),
        "Labels": ",".join(f"{k}={v}" for k, v in (c.get("Labels") or {}).items()),
        "Size": size,
        "Mounts": "",
        "Networks": ",".join((c.get("NetworkSettings") or {}).get("Networks") or {}),
    }


def _human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}PB"


def _inspect_container(ctx: CliContext, argv: list[str]) -> int:
    from skiff.cli.commands import inspect

    return inspect.run(ctx, ["--type", "container", *argv], prog="container inspect")


# `skiff container CMD` for commands that live in their own module: CMD -> module
_MODULE_COMMANDS = {
    "exec": "exec",
    "cp": "cp",
    "prune": "container_prune",
    "top": "top",
    "stats": "stats",
    "diff": "diff",
    "export": "export",
    "commit": "commit",
    "update": "update",
}


def _module_command(name: str) -> Any:
    def run(ctx: CliContext, argv: list[str]) -> int:
        import importlib

        module = importlib.import_module(f"skiff.cli.commands.{_MODULE_COMMANDS[name]}")
        code: int = module.run(ctx, argv, prog=f"container {name}")
        return code

    return run


def run_container(ctx: CliContext, argv: list[str]) -> int:
    """`skiff container CMD`: the same commands under the management command."""
    table: dict[str, Any] = {name: _module_command(name) for name in _MODULE_COMMANDS}
    table |= {
        "run": run_run,
        "create": run_create,
        "start": run_start,
        "stop": run_stop,
        "kill": run_kill,
        "restart": run_restart,
        "pause": run_pause,
        "unpause": run_unpause,
        "rm": run_rm,
        "wait": run_wait,
        "rename": run_rename,
        "ls": run_ps,
        "ps": run_ps,
        "list": run_ps,
        "logs": run_logs,
        "attach": run_attach,
        "inspect": _inspect_container,
    }
    if not argv or argv[0] not in table:
        print("Usage:  skiff container COMMAND\n\nCommands: " + ", ".join(table), file=sys.stderr)
        return 0 if not argv else 1
    code: int = table[argv[0]](ctx, argv[1:])
    return code
