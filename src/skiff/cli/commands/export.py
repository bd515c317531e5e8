"""`skiff export [-o FILE] CONTAINER`: the container's filesystem as a tar."""

from __future__ import annotations

import sys

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def run(ctx: CliContext, argv: list[str], prog: str = "export") -> int:
    p = parser(prog, "Export a container's filesystem as a tar archive")
    p.add_argument("container")
    p.add_argument("-o", "--output", default="")
    ns = p.parse_args(argv)
    if not ns.output and sys.stdout.isatty():
        print(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect", file=sys.stderr
        )
        return 1
    from skiff.client.extras import Extras

    chunks = Extras(ctx.client()).export(ns.container)
    out = open(ns.output, "wb") if ns.output else sys.stdout.buffer  # noqa: SIM115
    try:
        for chunk in chunks:
            out.write(chunk)
    finally:
        if ns.output:
            out.close()
    return 0
