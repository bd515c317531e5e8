"""`skiff container prune [-f] [--filter]`: remove all stopped containers."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext

WARNING = "WARNING! This will remove all stopped containers."


def run(ctx: CliContext, argv: list[str], prog: str = "container prune") -> int:
    p = parser(prog, "Remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
    ns = p.parse_args(argv)
    from skiff.cli.args import parse_filters
    from skiff.cli.commands.image_prune import confirm
    from skiff.cli.each import print_deleted
    from skiff.cli.output import human_size
    from skiff.client.extras import Extras

    if not ns.force:
        print(WARNING)
        if not confirm():
            return 0
    report = Extras(ctx.client()).prune_containers(parse_filters(ns.filter))
    print_deleted("Containers", report.get("ContainersDeleted") or [])
    print(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}")
    return 0
