"""`skiff import FILE|- [REPOSITORY[:TAG]]`: an image from a rootfs tarball, like
`docker import` (`-c/--change` Dockerfile lines, `-m/--message`, `--platform`)."""

from __future__ import annotations

import sys
from contextlib import ExitStack

from skiff.cli.args import parser
from skiff.cli.commands.load import print_messages
from skiff.cli.commands.tag import split_reference
from skiff.cli.context import CliContext
from skiff.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO


def run(ctx: CliContext, argv: list[str], prog: str = "import") -> int:
    p = parser(prog, "Import the contents from a tarball to create a filesystem image")
    p.add_argument("file", metavar="file|URL|-")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-c", "--change", action="append", default=[], help="Dockerfile instruction")
    p.add_argument("-m", "--message", default=None, help="commit message for the image")
    p.add_argument("--platform", default=None, help="os[/arch[/variant]] of the image")
    ns = p.parse_args(argv)
    if ns.file.startswith(("http://", "https://")):
        raise InvalidArgument("importing from a URL is not supported by skiff")
    repo, tag = split_reference(ns.reference) if ns.reference else (None, None)
    with ExitStack() as stack:
        source: BinaryIO
        if ns.file == "-":
            source = sys.stdin.buffer
        else:
            try:
                source = stack.enter_context(open(ns.file, "rb"))
            except OSError as exc:
                print(f"open {ns.file}: {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
                return 1
        messages = ctx.client().import_image(source, repo, tag, ns.message, ns.change, ns.platform)
        return print_messages(messages)
