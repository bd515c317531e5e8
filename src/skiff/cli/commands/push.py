"""`skiff push NAME[:TAG]`: an image to a registry, like `docker push`."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def run(ctx: CliContext, argv: list[str], prog: str = "push") -> int:
    from skiff.cli.commands.tag import split_reference
    from skiff.cli.credentials import auth_header
    from skiff.cli.progress import show_progress

    p = parser(prog, "Upload an image to a registry")
    p.add_argument("image", metavar="NAME[:TAG]")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    ns = p.parse_args(argv)
    name, tag = split_reference(ns.image)
    return show_progress(ctx.client().push_image(name, tag, auth_header(ns.image)), quiet=ns.quiet)
