"""`skiff image prune`: remove dangling (with -a: all unused) images, like docker."""

from __future__ import annotations

import sys

from skiff.cli.args import parse_filters, parser
from skiff.cli.context import CliContext
from skiff.cli.output import human_size

WARN_DANGLING = "WARNING! This will remove all dangling images."
WARN_ALL = "WARNING! This will remove all images without at least one container associated to them."


def confirm() -> bool:
    sys.stdout.write("Are you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def run(ctx: CliContext, argv: list[str], prog: str = "image prune") -> int:
    p = parser(prog, "Remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="remove all unused images")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("--filter", action="append", default=[], help="provide filter values")
    ns = p.parse_args(argv)
    filters = parse_filters(ns.filter)
    filters["dangling"] = ["false" if ns.all else "true"]
    if not ns.force:
        print(WARN_ALL if ns.all else WARN_DANGLING)
        if not confirm():
            return 0
    report = ctx.client().prune_images(filters)
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        print("Deleted Images:")
        for item in deleted:
            for key in ("Untagged", "Deleted"):
                if item.get(key):
                    print(f"{key.lower()}: {item[key]}")
        print()
    print(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}")
    return 0
