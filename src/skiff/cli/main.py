"""`skiff`: global flags, then the command, imported only when invoked."""

from __future__ import annotations

import importlib
import sys

from skiff.cli.context import CliContext, GlobalOptions
from skiff.client.errors import ApiError, ClientError
from skiff.errors import SkiffError

# command -> module with `run(ctx, argv) -> int`
COMMANDS: dict[str, str] = {
    "version": "skiff.cli.commands.version",
    "info": "skiff.cli.commands.info",
    "events": "skiff.cli.commands.events",
    "system": "skiff.cli.commands.system",
    "tls": "skiff.cli.commands.tls",
    "image": "skiff.cli.commands.image",
    "images": "skiff.cli.commands.images",
    "inspect": "skiff.cli.commands.inspect",
    "history": "skiff.cli.commands.history",
    "tag": "skiff.cli.commands.tag",
    "rmi": "skiff.cli.commands.rmi",
    "import": "skiff.cli.commands.import_",
    "save": "skiff.cli.commands.save",
    "load": "skiff.cli.commands.load",
    "pull": "skiff.cli.commands.pull",
    "build": "skiff.cli.commands.build",
    "builder": "skiff.cli.commands.builder",
    "push": "skiff.cli.commands.push",
    "login": "skiff.cli.commands.login",
    "logout": "skiff.cli.commands.logout",
    # volumes, exec, top, stats, cp, export, diff, commit, update (skiff.cli.commands.*)
    "volume": "skiff.cli.commands.volume",
    "network": "skiff.cli.commands.network",
    "port": "skiff.cli.commands.port",
    "diff": "skiff.cli.commands.diff",
    "top": "skiff.cli.commands.top",
    "commit": "skiff.cli.commands.commit",
    "export": "skiff.cli.commands.export",
    "update": "skiff.cli.commands.update",
    "stats": "skiff.cli.commands.stats",
    "exec": "skiff.cli.commands.exec",
    "cp": "skiff.cli.commands.cp",
    "run": "skiff.cli.commands.container:run_run",
    "create": "skiff.cli.commands.container:run_create",
    "start": "skiff.cli.commands.container:run_start",
    "stop": "skiff.cli.commands.container:run_stop",
    "kill": "skiff.cli.commands.container:run_kill",
    "restart": "skiff.cli.commands.container:run_restart",
    "pause": "skiff.cli.commands.container:run_pause",
    "unpause": "skiff.cli.commands.container:run_unpause",
    "rm": "skiff.cli.commands.container:run_rm",
    "wait": "skiff.cli.commands.container:run_wait",
    "rename": "skiff.cli.commands.container:run_rename",
    "ps": "skiff.cli.commands.container:run_ps",
    "logs": "skiff.cli.commands.container:run_logs",
    "attach": "skiff.cli.commands.container:run_attach",
    "container": "skiff.cli.commands.container:run_container",
}

USAGE = """Usage:  skiff [OPTIONS] COMMAND

A container engine that does what Docker does

Commands:
  attach      Attach local standard input, output, and error to a running container
  build       Build an image from a Dockerfile
  commit      Create a new image from a container's changes
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  events      Get real time events from the server
  exec        Execute a command in a running container
  export      Export a container's filesystem as a tar archive
  history     Show the history of an image
  images      List images
  import      Import the contents from a tarball to create a filesystem image
  info        Display system-wide information
  inspect     Return low-level information on skiff objects
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  ps          List containers
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  run         Create and run a new container from an image
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  version     Show the skiff version information
  wait        Block until one or more containers stop, then print their exit codes

Management Commands:
  builder     Manage builds (prune)
  container   Manage containers (run, create, start, stop, ls, logs, rm, ...)
  image       Manage images (ls, inspect, history, tag, rm, import, save, load, prune,
              bootstrap)
  network     Manage networks (create, ls, inspect, rm, connect, disconnect, prune)
  system      Manage skiff (df, info, events)
  volume      Manage volumes (create, ls, inspect, rm, prune)
  tls         Make TLS certificates for remote access (tls init DIR)

Global Options:
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to (env SKIFF_HOST)
      --tls                Use TLS; implied by --tlsverify
      --tlscacert string   Trust certs signed only by this CA (default ~/.skiff/ca.pem)
      --tlscert string     Path to TLS certificate file (default ~/.skiff/cert.pem)
      --tlskey string      Path to TLS key file (default ~/.skiff/key.pem)
      --tlsverify          Use TLS and verify the remote (env SKIFF_TLS_VERIFY)
  -v, --version            Print version information and quit
"""

_VALUE_FLAGS = {"-H": "host", "--host": "host", "--tlscacert": "tlscacert"}
_VALUE_FLAGS |= {"--tlscert": "tlscert", "--tlskey": "tlskey"}
_BOOL_FLAGS = {"--tls": "tls", "--tlsverify": "tlsverify", "-D": "debug", "--debug": "debug"}


def parse_global(argv: list[str]) -> tuple[GlobalOptions, list[str]]:
    """Consume global flags up to the command name; return the options and the rest."""
    opts = GlobalOptions()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, inline = arg.partition("=")
        if name in _VALUE_FLAGS:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                raise SystemExit(_usage_error(f"flag needs an argument: {name}"))
            setattr(opts, _VALUE_FLAGS[name], value)
        elif arg.startswith("-H") and len(arg) > 2:
            opts.host = arg[2:]
        elif name in _BOOL_FLAGS:
            setattr(opts, _BOOL_FLAGS[name], inline.lower() not in ("false", "0") if eq else True)
        elif arg in ("-v", "--version"):
            return opts, ["version", "--short-banner"]
        elif arg in ("-h", "--help"):
            return opts, ["--help"]
        else:
            raise SystemExit(_usage_error(f"unknown flag: {arg}"))
        i += 1
    return opts, argv[i:]


def _usage_error(message: str) -> int:
    print(f"{message}\nSee 'skiff --help'.", file=sys.stderr)
    return 125


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        opts, rest = parse_global(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not rest or rest[0] in ("--help", "help"):
        print(USAGE, end="")
        return 0
    command, command_args = rest[0], rest[1:]
    module_name = COMMANDS.get(command)
    if module_name is None:
        print(f"skiff: '{command}' is not a skiff command.\nSee 'skiff --help'", file=sys.stderr)
        return 1
    ctx = CliContext(opts)
    module_path, _, function = module_name.partition(":")
    module = importlib.import_module(module_path)
    try:
        code: int = getattr(module, function or "run")(ctx, command_args)
    except ApiError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (ClientError, SkiffError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
