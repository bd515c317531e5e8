"""`skiff tag SOURCE TARGET`: another name for an image, like `docker tag`."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def split_reference(ref: str) -> tuple[str, str | None]:
    """ "repo:tag" -> (repo, tag); a digest or no tag -> (ref, None)."""
    if "@" in ref:
        return ref, None
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, None
    return name, tag


def run(ctx: CliContext, argv: list[str], prog: str = "tag") -> int:
    p = parser(prog, "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    ns = p.parse_args(argv)
    repo, tag = split_reference(ns.target)
    ctx.client().tag_image(ns.source, repo, tag)
    return 0
