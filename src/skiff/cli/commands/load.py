"""`skiff load [-i FILE] [-q]`: images from a docker-archive tar, like `docker load`."""

from __future__ import annotations

import sys
from contextlib import ExitStack

from skiff.cli.args import parser
from skiff.cli.context import CliContext
from skiff.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, BinaryIO


def print_messages(messages: Iterable[dict[str, Any]]) -> int:
    """docker's jsonmessage display, plainly: `stream` text as is, `status` lines,
    an in-band `error` ends it with exit 1."""
    for message in messages:
        if message.get("error"):
            print(message["error"], file=sys.stderr)
            return 1
        if "stream" in message:
            sys.stdout.write(str(message["stream"]))
        elif message.get("progressDetail") or message.get("progress"):
            continue  # progress bars are for terminals; a plain line per layer is noise
        elif "status" in message:
            prefix = f"{message['id']}: " if message.get("id") else ""
            print(prefix + str(message["status"]))
        sys.stdout.flush()
    return 0


def run(ctx: CliContext, argv: list[str], prog: str = "load") -> int:
    p = parser(prog, "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", default="", help="read from tar archive file, not STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
    ns = p.parse_args(argv)
    with ExitStack() as stack:
        source: BinaryIO
        if ns.input:
            try:
                source = stack.enter_context(open(ns.input, "rb"))
            except OSError as exc:
                print(f"open {ns.input}: {(exc.strerror or str(exc)).lower()}", file=sys.stderr)
                return 1
        else:
            if sys.stdin.isatty():
                raise InvalidArgument("requested load from stdin, but stdin is empty")
            source = sys.stdin.buffer
        quiet = ns.quiet or not sys.stdout.isatty()
        return print_messages(ctx.client().load_images(source, quiet=quiet))
