"""`skiff volume create|ls|inspect|rm|prune`, as docker's volume commands."""

from __future__ import annotations

import sys

from skiff.cli.args import add_format, parser
from skiff.cli.context import CliContext

USAGE = """Usage:  skiff volume COMMAND

Manage volumes

Commands:
  create      Create a volume
  inspect     Display detailed information on one or more volumes
  ls          List volumes
  prune       Remove unused local volumes
  rm          Remove one or more volumes
"""

WARN_PRUNE = "WARNING! This will remove anonymous local volumes not used by at least one container."
WARN_PRUNE_ALL = "WARNING! This will remove all local volumes not used by at least one container."


def _pairs(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, _, val = value.partition("=")
        out[key] = val
    return out


def _filters(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise SystemExit(_bad_filter(value))
        out.setdefault(key, []).append(val)
    return out


def _bad_filter(value: str) -> int:
    print(f"bad format of filter (expected name=value): {value}", file=sys.stderr)
    return 125


def create(ctx: CliContext, argv: list[str]) -> int:
    p = parser("volume create", "Create a volume")
    p.add_argument("name", nargs="?", default="")
    p.add_argument("--name", dest="name_flag", default="")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    ns = p.parse_args(argv)
    from skiff.client.extras import Extras

    volume = Extras(ctx.client()).create_volume(
        ns.name or ns.name_flag, ns.driver, _pairs(ns.label), _pairs(ns.opt)
    )
    print(volume["Name"])
    return 0


def ls(ctx: CliContext, argv: list[str]) -> int:
    p = parser("volume ls", "List volumes")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    add_format(p, short=False)
    ns = p.parse_args(argv)
    from skiff.cli.output import print_formatted
    from skiff.client.extras import Extras

    volumes = Extras(ctx.client()).volumes(_filters(ns.filter))
    if ns.quiet:
        for v in volumes:
            print(v["Name"])
        return 0
    rows = [
        {
            **v,
            "Labels": ",".join(f"{k}={val}" for k, val in sorted((v.get("Labels") or {}).items())),
        }
        for v in volumes
    ]
    print_formatted(ns.format or "table {{.Driver}}\t{{.Name}}", rows, {"Name": "VOLUME NAME"})
    return 0


def inspect(ctx: CliContext, argv: list[str]) -> int:
    p = parser("volume inspect", "Display detailed information on one or more volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    add_format(p)
    ns = p.parse_args(argv)
    from skiff.cli.each import inspect_each
    from skiff.client.extras import Extras

    return inspect_each(ns.names, Extras(ctx.client()).inspect_volume, ns.format)


def rm(ctx: CliContext, argv: list[str]) -> int:
    p = parser("volume rm", "Remove one or more volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.add_argument("-f", "--force", action="store_true")
    ns = p.parse_args(argv)
    from skiff.cli.each import remove_each
    from skiff.client.extras import Extras

    extras = Extras(ctx.client())
    return remove_each(ns.names, lambda name: extras.remove_volume(name, ns.force))


def prune(ctx: CliContext, argv: list[str]) -> int:
    p = parser("volume prune", "Remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    ns = p.parse_args(argv)
    from skiff.cli.commands.image_prune import confirm
    from skiff.cli.each import print_deleted
    from skiff.cli.output import human_size
    from skiff.client.extras import Extras

    filters = _filters(ns.filter)
    if ns.all:
        filters["all"] = ["true"]
    if not ns.force:
        print(WARN_PRUNE_ALL if ns.all else WARN_PRUNE)
        if not confirm():
            return 0
    report = Extras(ctx.client()).prune_volumes(filters)
    print_deleted("Volumes", report.get("VolumesDeleted") or [])
    print(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}")
    return 0


VERBS = {"create": create, "ls": ls, "list": ls, "inspect": inspect, "rm": rm, "remove": rm}
VERBS["prune"] = prune


def run(ctx: CliContext, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    verb = VERBS.get(argv[0])
    if verb is None:
        print(
            f"skiff volume: '{argv[0]}' is not a skiff command.\nSee 'skiff volume --help'",
            file=sys.stderr,
        )
        return 1
    return verb(ctx, argv[1:])
