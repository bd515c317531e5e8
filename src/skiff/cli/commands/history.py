"""`skiff history`: the layers of an image, newest first, as `docker history` prints them."""

from __future__ import annotations

import time

from skiff.cli.args import add_format, parser
from skiff.cli.context import CliContext
from skiff.cli.output import ellipsis, human_size_precision, print_formatted, since, truncate_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
DEFAULT_FORMAT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
CREATED_BY_WIDTH = 45


def rfc3339_local(unix: int) -> str:
    """Go's time.Unix(s, 0).Format(time.RFC3339): local time, "Z" for UTC."""
    local = time.localtime(unix)
    offset = local.tm_gmtoff
    zone = f"{'-' if offset < 0 else '+'}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + ("Z" if offset == 0 else zone)


def rows(entries: list[dict[str, Any]], trunc: bool, human: bool) -> list[dict[str, str]]:
    out = []
    for entry in entries:
        image_id = str(entry.get("Id", ""))
        created = int(entry.get("Created") or 0)
        created_by = str(entry.get("CreatedBy") or "").replace("\t", " ")
        size = int(entry.get("Size") or 0)
        created_at = rfc3339_local(created)
        out.append(
            {
                "Comment": str(entry.get("Comment") or ""),
                "CreatedAt": created_at,
                "CreatedBy": ellipsis(created_by, CREATED_BY_WIDTH) if trunc else created_by,
                "CreatedSince": since(created) if human else created_at,
                "ID": truncate_id(image_id)
                if trunc and image_id.startswith("sha256:")
                else image_id,
                "Size": human_size_precision(size) if human else str(size),
            }
        )
    return out


def take_bool_flag(
    argv: list[str], names: tuple[str, ...], default: bool
) -> tuple[bool, list[str]]:
    """A Go bool flag: `-H`, `-H=false`, `--human=0`; never takes the next word."""
    value, rest = default, []
    for arg in argv:
        name, eq, text = arg.partition("=")
        if name in names:
            value = text.lower() not in ("false", "0", "f") if eq else True
        else:
            rest.append(arg)
    return value, rest


def run(ctx: CliContext, argv: list[str], prog: str = "history") -> int:
    human, argv = take_bool_flag(argv, ("-H", "--human"), True)
    p = parser(prog, "Show the history of an image")
    p.add_argument("image")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    add_format(p, short=False)
    ns = p.parse_args(argv)
    entries = ctx.client().image_history(ns.image)
    fmt = "{{.ID}}" if ns.quiet else ns.format or DEFAULT_FORMAT
    headers = dict(HEADERS)
    if not human:
        headers["CreatedSince"] = "CREATED AT"
    print_formatted(fmt, rows(entries, trunc=not ns.no_trunc, human=human), headers)
    return 0
