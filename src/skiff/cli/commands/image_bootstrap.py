"""`skiff image bootstrap busybox [REF]`: make an image from the host, no registry needed.

skiff's own command (docker has none): the daemon builds a one-layer busybox image from
the host's busybox-static and tags it (default busybox:latest)."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext

KINDS = ("busybox",)


def run(ctx: CliContext, argv: list[str], prog: str = "image bootstrap") -> int:
    p = parser(prog, "Make an image from the host's binaries (busybox-static)")
    p.add_argument("kind", choices=KINDS)
    p.add_argument("reference", nargs="?", default=None, help="tag (default busybox:latest)")
    ns = p.parse_args(argv)
    image = ctx.client().bootstrap_image(ns.kind, ns.reference)
    print(image.get("Id", ""))
    return 0
