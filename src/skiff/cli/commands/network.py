"""`skiff network create|ls|inspect|rm|connect|disconnect|prune`, as docker's."""

from __future__ import annotations

import sys

from skiff.cli.args import add_format, parser
from skiff.cli.commands.volume import _filters, _pairs
from skiff.cli.context import CliContext
from skiff.client import ApiError

USAGE = """Usage:  skiff network COMMAND

Manage networks

Commands:
  connect     Connect a container to a network
  create      Create a network
  disconnect  Disconnect a container from a network
  inspect     Display detailed information on one or more networks
  ls          List networks
  prune       Remove all unused networks
  rm          Remove one or more networks
"""

WARN_PRUNE = "WARNING! This will remove all custom networks not used by at least one container."


def create(ctx: CliContext, argv: list[str]) -> int:
    p = parser("network create", "Create a network")
    p.add_argument("name", metavar="NETWORK")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--ip-range", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    ns = p.parse_args(argv)
    if (ns.gateway or ns.ip_range) and not ns.subnet:
        print("Error: every ip-range or gateway must have a corresponding subnet", file=sys.stderr)
        return 1
    from skiff.client.networks import Networks

    net = Networks(ctx.client()).create(
        ns.name,
        ns.driver,
        subnet=ns.subnet[0] if ns.subnet else "",
        gateway=ns.gateway[0] if ns.gateway else "",
        ip_range=ns.ip_range[0] if ns.ip_range else "",
        internal=ns.internal,
        labels=_pairs(ns.label),
        options=_pairs(ns.opt),
    )
    print(net["Id"])
    return 0


def ls(ctx: CliContext, argv: list[str]) -> int:
    p = parser("network ls", "List networks")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--no-trunc", action="store_true")
    add_format(p, short=False)
    ns = p.parse_args(argv)
    from skiff.cli.output import print_formatted
    from skiff.client.networks import Networks

    nets = sorted(Networks(ctx.client()).networks(_filters(ns.filter)), key=lambda n: n["Name"])
    rows = [
        {
            **n,
            "ID": n["Id"] if ns.no_trunc else n["Id"][:12],
            "IPv6": str(bool(n.get("EnableIPv6"))).lower(),
            "Internal": str(bool(n.get("Internal"))).lower(),
            "CreatedAt": n.get("Created", ""),
            "Labels": ",".join(f"{k}={v}" for k, v in sorted((n.get("Labels") or {}).items())),
        }
        for n in nets
    ]
    if ns.quiet:
        for row in rows:
            print(row["ID"])
        return 0
    fmt = ns.format or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    headers = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"}
    print_formatted(fmt, rows, headers)
    return 0


def inspect(ctx: CliContext, argv: list[str]) -> int:
    p = parser("network inspect", "Display detailed information on one or more networks")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.add_argument("-v", "--verbose", action="store_true")
    add_format(p)
    ns = p.parse_args(argv)
    from skiff.cli.each import inspect_each
    from skiff.client.networks import Networks

    def describe(name: str, exc: ApiError) -> str:
        return f"Error: No such network: {name}" if exc.status == 404 else str(exc)

    return inspect_each(ns.names, Networks(ctx.client()).inspect, ns.format, describe)


def rm(ctx: CliContext, argv: list[str]) -> int:
    p = parser("network rm", "Remove one or more networks")
    p.add_argument("names", nargs="+", metavar="NETWORK")
    p.add_argument("-f", "--force", action="store_true")
    ns = p.parse_args(argv)
    from skiff.cli.each import remove_each
    from skiff.client.networks import Networks

    return remove_each(ns.names, Networks(ctx.client()).remove, missing_ok=ns.force)


def connect(ctx: CliContext, argv: list[str]) -> int:
    p = parser("network connect", "Connect a container to a network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip", default="")
    ns = p.parse_args(argv)
    from skiff.client.networks import Networks

    Networks(ctx.client()).connect(ns.network, ns.container, ns.alias, ns.ip)
    return 0


def disconnect(ctx: CliContext, argv: list[str]) -> int:
    p = parser("network disconnect", "Disconnect a container from a network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-f", "--force", action="store_true")
    ns = p.parse_args(argv)
    from skiff.client.networks import Networks

    Networks(ctx.client()).disconnect(ns.network, ns.container, ns.force)
    return 0


def prune(ctx: CliContext, argv: list[str]) -> int:
    p = parser("network prune", "Remove all unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    ns = p.parse_args(argv)
    from skiff.cli.commands.image_prune import confirm
    from skiff.cli.each import print_deleted
    from skiff.client.networks import Networks

    filters = _filters(ns.filter)
    if not ns.force:
        print(WARN_PRUNE)
        if not confirm():
            return 0
    print_deleted("Networks", Networks(ctx.client()).prune(filters).get("NetworksDeleted") or [])
    return 0


VERBS = {"create": create, "ls": ls, "list": ls, "inspect": inspect, "rm": rm, "remove": rm}
VERBS |= {"connect": connect, "disconnect": disconnect, "prune": prune}


def run(ctx: CliContext, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    verb = VERBS.get(argv[0])
    if verb is None:
        print(
            f"skiff network: '{argv[0]}' is not a skiff command.\nSee 'skiff network --help'",
            file=sys.stderr,
        )
        return 1
    return verb(ctx, argv[1:])
