"""`skiff top CONTAINER [ps OPTIONS]`: the running processes of a container."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def run(ctx: CliContext, argv: list[str], prog: str = "top") -> int:
    p = parser(prog, "Display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs="*")
    ns = p.parse_args(argv)
    from skiff.cli.format import tabulate
    from skiff.client.extras import Extras

    top = Extras(ctx.client()).top(ns.container, " ".join(ns.ps_args))
    lines = ["\t".join(top["Titles"])] + ["\t".join(row) for row in top["Processes"]]
    for line in tabulate(lines, minwidth=1, padding=1):
        print(line)
    return 0
