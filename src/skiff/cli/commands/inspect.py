"""`skiff inspect` / `skiff image inspect`: low-level information as a JSON array, like
`docker inspect`. Objects that are not found are reported at the end (exit 1); the found
ones are still printed, as docker does. Containers first, then images."""

from __future__ import annotations

import json
import sys

from skiff.cli.args import add_format, parser
from skiff.cli.context import CliContext
from skiff.client import ApiError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def indent_json(value: Any) -> str:
    """Go's json.MarshalIndent(v, "", "    "), with its HTML escaping."""
    text = json.dumps(value, indent=4, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def run(ctx: CliContext, argv: list[str], prog: str = "inspect") -> int:
    p = parser(prog, "Display detailed information on one or more images")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_format(p)
    p.add_argument("--type", default="", help="only this type of object (image)")
    ns = p.parse_args(argv)
    if ns.type not in ("", "image", "container"):
        print(f'"{ns.type}" is not a valid value for --type', file=sys.stderr)
        return 1
    from skiff.cli.each import inspect_each

    client = ctx.client()

    def inspect(name: str) -> Any:
        if ns.type in ("", "container"):
            try:
                return client.get_json(f"/containers/{name}/json")
            except ApiError as exc:
                if exc.status != 404 or ns.type == "container":
                    raise
        return client.inspect_image(name)

    def describe(name: str, exc: ApiError) -> str:
        generic = prog == "inspect" and exc.status == 404
        return f"Error: No such object: {name}" if generic else str(exc)

    return inspect_each(ns.names, inspect, ns.format, describe)
