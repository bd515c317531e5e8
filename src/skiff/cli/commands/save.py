"""`skiff save [-o FILE] IMAGE...`: images as a docker-archive tar, like `docker save`."""

from __future__ import annotations

import os
import sys

from skiff.cli.args import parser
from skiff.cli.context import CliContext
from skiff.errors import InvalidArgument


def run(ctx: CliContext, argv: list[str], prog: str = "save") -> int:
    p = parser(prog, "Save one or more images to a tar archive (streamed to STDOUT by default)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", default="", help="write to a file, instead of STDOUT")
    ns = p.parse_args(argv)
    if not ns.output and sys.stdout.isatty():
        raise InvalidArgument(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect"
        )
    chunks = ctx.client().save_images(ns.images)
    first = next(chunks, b"")  # an error (no such image) comes before any file is made
    if not ns.output:
        out = sys.stdout.buffer
        out.write(first)
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return 0
    tmp = f"{ns.output}.skiff-{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(first)
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, ns.output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0
