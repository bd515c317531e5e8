"""`skiff diff CONTAINER`: changes to a container's filesystem (A/C/D), like docker."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext

KINDS = {0: "C", 1: "A", 2: "D"}


def run(ctx: CliContext, argv: list[str], prog: str = "diff") -> int:
    p = parser(prog, "Inspect changes to files or directories on a container's filesystem")
    p.add_argument("container")
    ns = p.parse_args(argv)
    from skiff.client.extras import Extras

    for change in Extras(ctx.client()).changes(ns.container):
        print(f"{KINDS.get(int(change['Kind']), '?')} {change['Path']}")
    return 0
