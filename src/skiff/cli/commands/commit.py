"""`skiff commit [-a] [-m] [-c] [-p] CONTAINER [REPOSITORY[:TAG]]`: prints the image id."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.commands.tag import split_reference
from skiff.cli.context import CliContext


def run(ctx: CliContext, argv: list[str], prog: str = "commit") -> int:
    p = parser(prog, "Create a new image from a container's changes")
    p.add_argument("container")
    p.add_argument("repository", nargs="?", default="")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-m", "--message", default="")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-p", "--pause", default="true")
    ns = p.parse_args(argv)
    from skiff.client.extras import Extras

    repo, tag = split_reference(ns.repository) if ns.repository else ("", None)
    result = Extras(ctx.client()).commit(
        ns.container,
        repo,
        tag or "",
        ns.message,
        ns.author,
        ns.pause.lower() not in ("false", "0"),
        ns.change,
    )
    print(result["Id"])
    return 0
