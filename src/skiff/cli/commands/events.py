"""`skiff events`: stream events, like `docker events`."""

from __future__ import annotations

import datetime
import sys

from skiff.cli.args import add_format, parse_filters, parser
from skiff.cli.context import CliContext
from skiff.cli.output import print_formatted
from skiff.cli.timestamps import to_api_timestamp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def format_event(event: dict[str, Any]) -> str:
    """docker's default line: TIME TYPE ACTION ID (attr=value, ...)."""
    nanos = int(event.get("timeNano") or int(event.get("time", 0)) * 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(nanos // 1_000_000_000).astimezone()
    offset = stamp.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    when = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 1_000_000_000:09d}{zone}"
    actor = event.get("Actor") or {}
    line = f"{when} {event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")"
    return line


def run(ctx: CliContext, argv: list[str]) -> int:
    p = parser("events", "Get real time events from the server")
    p.add_argument("-f", "--filter", action="append", default=[], help="filter (key=value)")
    p.add_argument("--since", default=None, help="show events created since timestamp")
    p.add_argument("--until", default=None, help="stream events until this timestamp")
    add_format(p, short=False)
    ns = p.parse_args(argv)
    since = to_api_timestamp(ns.since) if ns.since else None
    until = to_api_timestamp(ns.until) if ns.until else None
    stream = ctx.client().events(since, until, parse_filters(ns.filter))
    try:
        for event in stream:
            if ns.format:
                print_formatted(ns.format, [event])
            else:
                print(format_event(event))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    return 0
