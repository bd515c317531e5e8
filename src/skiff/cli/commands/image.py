"""`skiff image COMMAND`: docker's image management command, each verb in its own module."""

from __future__ import annotations

import importlib
import sys

from skiff.cli.context import CliContext

# verb -> (module, the name its usage shows)
VERBS: dict[str, str] = {
    "ls": "skiff.cli.commands.images",
    "list": "skiff.cli.commands.images",
    "inspect": "skiff.cli.commands.inspect",
    "history": "skiff.cli.commands.history",
    "tag": "skiff.cli.commands.tag",
    "rm": "skiff.cli.commands.rmi",
    "remove": "skiff.cli.commands.rmi",
    "import": "skiff.cli.commands.import_",
    "save": "skiff.cli.commands.save",
    "load": "skiff.cli.commands.load",
    "prune": "skiff.cli.commands.image_prune",
    "bootstrap": "skiff.cli.commands.image_bootstrap",
}

USAGE = """Usage:  skiff image COMMAND

Manage images

Commands:
  bootstrap   Make an image from the host's busybox-static (skiff's own)
  history     Show the history of an image
  import      Import the contents from a tarball to create a filesystem image
  inspect     Display detailed information on one or more images
  load        Load an image from a tar archive or STDIN
  ls          List images
  prune       Remove unused images
  rm          Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
"""


def run(ctx: CliContext, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    verb, rest = argv[0], argv[1:]
    module_name = VERBS.get(verb)
    if module_name is None:
        print(
            f"skiff image: '{verb}' is not a skiff command.\nSee 'skiff image --help'",
            file=sys.stderr,
        )
        return 1
    module = importlib.import_module(module_name)
    code: int = module.run(ctx, rest, prog=f"image {verb}")
    return code
