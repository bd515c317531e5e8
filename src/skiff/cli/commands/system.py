"""`skiff system`: df, plus info and events under their docker names."""

from __future__ import annotations

import importlib
import sys

from skiff.cli.args import add_format, parser
from skiff.cli.context import CliContext
from skiff.cli.output import human_size, print_formatted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


SUBCOMMANDS = {"info": "skiff.cli.commands.info", "events": "skiff.cli.commands.events"}
HEADERS = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}
DEFAULT_DF_FORMAT = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"


def _reclaimable(reclaim: int, total: int) -> str:
    if total <= 0:
        return human_size(reclaim)
    return f"{human_size(reclaim)} ({reclaim * 100 // total}%)"


def summarize(df: dict[str, Any]) -> list[dict[str, str]]:
    images = df.get("Images") or []
    containers = df.get("Containers") or []
    volumes = df.get("Volumes") or []
    cache = df.get("BuildCache") or []
    img_size = int(df.get("LayersSize") or 0)
    # docker's formatter: what images with containers use is kept, the rest reclaimable
    img_used = sum(
        int(i.get("Size", 0)) - int(i.get("SharedSize", 0))
        for i in images
        if i.get("Containers") and i.get("Size", -1) != -1 and i.get("SharedSize", -1) != -1
    )
    img_reclaim = img_size - img_used
    ctr_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    ctr_reclaim = sum(int(c.get("SizeRw") or 0) for c in containers if c.get("State") != "running")

    def vol_size(v: dict[str, Any]) -> int:
        return max(0, int((v.get("UsageData") or {}).get("Size", 0)))

    def vol_used(v: dict[str, Any]) -> bool:
        return int((v.get("UsageData") or {}).get("RefCount", 0)) > 0

    vol_total = sum(vol_size(v) for v in volumes)
    vol_reclaim = sum(vol_size(v) for v in volumes if not vol_used(v))
    cache_total = sum(int(b.get("Size") or 0) for b in cache)
    cache_reclaim = sum(
        int(b.get("Size") or 0) for b in cache if not b.get("InUse") and not b.get("Shared")
    )
    return [
        {
            "Type": "Images",
            "TotalCount": str(len(images)),
            "Active": str(sum(1 for i in images if i.get("Containers"))),
            "Size": human_size(img_size),
            "Reclaimable": _reclaimable(img_reclaim, img_size),
        },
        {
            "Type": "Containers",
            "TotalCount": str(len(containers)),
            "Active": str(sum(1 for c in containers if c.get("State") == "running")),
            "Size": human_size(ctr_size),
            "Reclaimable": _reclaimable(ctr_reclaim, ctr_size),
        },
        {
            "Type": "Local Volumes",
            "TotalCount": str(len(volumes)),
            "Active": str(sum(1 for v in volumes if vol_used(v))),
            "Size": human_size(vol_total),
            "Reclaimable": _reclaimable(vol_reclaim, vol_total),
        },
        {
            "Type": "Build Cache",
            "TotalCount": str(len(cache)),
            "Active": str(sum(1 for b in cache if b.get("InUse"))),
            "Size": human_size(cache_total),
            "Reclaimable": _reclaimable(cache_reclaim, cache_total),
        },
    ]


def df(ctx: CliContext, argv: list[str]) -> int:
    p = parser("system df", "Show skiff disk usage")
    add_format(p, short=False)
    p.add_argument("-v", "--verbose", action="store_true", help="show detailed information")
    ns = p.parse_args(argv)
    usage = ctx.client().disk_usage()
    if ns.verbose and not ns.format:
        print_formatted("json", [usage])
        return 0
    print_formatted(ns.format or DEFAULT_DF_FORMAT, summarize(usage), HEADERS)
    return 0


def run(ctx: CliContext, argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("Usage:  skiff system COMMAND\n\nCommands:\n  df\n  events\n  info")
        return 0
    sub, rest = argv[0], argv[1:]
    if sub == "df":
        return df(ctx, rest)
    if sub in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[sub])
        code: int = module.run(ctx, rest)
        return code
    print(f"skiff system: unknown command: {sub}", file=sys.stderr)
    return 1
