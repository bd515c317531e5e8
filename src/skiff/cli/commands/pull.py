"""`skiff pull NAME[:TAG|@DIGEST]`: an image from a registry, like `docker pull`."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def split_pull_reference(ref: str) -> tuple[str, str | None]:
    """What the API's fromImage/tag take: a digest stays in the name."""
    if "@" in ref:
        return ref, None
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return name, tag


def run(ctx: CliContext, argv: list[str], prog: str = "pull") -> int:
    from skiff.cli.credentials import auth_header
    from skiff.cli.progress import show_progress

    p = parser(prog, "Download an image from a registry")
    p.add_argument("image", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", default="", help="os/arch[/variant] to pull")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    ns = p.parse_args(argv)
    name, tag = split_pull_reference(ns.image)
    messages = ctx.client().pull_image(name, tag, ns.platform or None, auth_header(ns.image))
    code = show_progress(messages, quiet=ns.quiet)
    if code == 0 and ns.quiet:
        print(ns.image if "/" in name or "@" in ns.image else f"docker.io/library/{ns.image}")
    return code
