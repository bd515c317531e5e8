"""`skiff rmi IMAGE...` (and `skiff image rm`): untag and delete images, like `docker rmi`.

Each image is tried in turn; errors are collected and printed at the end (exit 1), as
the docker CLI does."""

from __future__ import annotations

import sys

from skiff.cli.args import parser
from skiff.cli.context import CliContext
from skiff.client import ApiError


def run(ctx: CliContext, argv: list[str], prog: str = "rmi") -> int:
    p = parser(prog, "Remove one or more images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--force", action="store_true", help="force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="do not delete untagged parents")
    ns = p.parse_args(argv)
    client = ctx.client()
    errors: list[str] = []
    for name in ns.images:
        try:
            items = client.remove_image(name, force=ns.force, noprune=ns.no_prune)
        except ApiError as exc:
            errors.append(str(exc))
            continue
        for item in items:
            for key in ("Untagged", "Deleted"):
                if item.get(key):
                    print(f"{key}: {item[key]}")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0
