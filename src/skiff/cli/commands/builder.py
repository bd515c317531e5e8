"""`skiff builder prune`: drop the build cache (and the cached images nobody uses)."""

from __future__ import annotations

from skiff.cli.args import parser
from skiff.cli.context import CliContext


def run(ctx: CliContext, argv: list[str], prog: str = "builder") -> int:
    from skiff.cli.progress import human_bytes

    if not argv or argv[0] != "prune":
        print("Usage:  skiff builder prune [-f]", flush=True)
        return 0 if not argv else 125
    p = parser(f"{prog} prune", "Remove build cache")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("-a", "--all", action="store_true", help="remove all unused build cache")
    p.parse_args(argv[1:])
    result = ctx.client().prune_build_cache()
    for item in result.get("CachesDeleted") or []:
        print(item)
    print(f"Total reclaimed space: {human_bytes(int(result.get('SpaceReclaimed') or 0))}")
    return 0
