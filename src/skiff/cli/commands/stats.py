"""`skiff stats [--no-stream] CONTAINER...`: docker's columns, from /containers/{id}/stats."""

from __future__ import annotations

import sys
from typing import Any

from skiff.cli.args import parser
from skiff.cli.context import CliContext

DEFAULT_FORMAT = (
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
    "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
)
HEADERS = {
    "ID": "CONTAINER ID",
    "Name": "NAME",
    "CPUPerc": "CPU %",
    "MemUsage": "MEM USAGE / LIMIT",
    "MemPerc": "MEM %",
    "NetIO": "NET I/O",
    "BlockIO": "BLOCK I/O",
    "PIDs": "PIDS",
}


def row(stats: dict[str, Any]) -> dict[str, str]:
    """docker's calculateCPUPercentUnix and memory usage minus inactive_file (cgroup v2)."""
    from skiff.cli.output import bytes_binary, human_size

    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or 1
    percent = cpu_delta / system_delta * online * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage", 0) - (memory.get("stats") or {}).get("inactive_file", 0)
    limit = memory.get("limit", 0)
    pids = (stats.get("pids_stats") or {}).get("current", 0)
    return {
        "ID": str(stats.get("id", ""))[:12],
        "Name": str(stats.get("name", "")).lstrip("/"),
        "CPUPerc": f"{percent:.2f}%",
        "MemUsage": f"{bytes_binary(max(usage, 0))} / {bytes_binary(limit)}",
        "MemPerc": f"{(usage / limit * 100) if limit else 0:.2f}%",
        "NetIO": f"{human_size(0)} / {human_size(0)}",
        "BlockIO": f"{human_size(0)} / {human_size(0)}",
        "PIDs": str(pids),
    }


def run(ctx: CliContext, argv: list[str], prog: str = "stats") -> int:
    p = parser(prog, "Display a live stream of container(s) resource usage statistics")
    p.add_argument("containers", nargs="+")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--format", default="")
    ns = p.parse_args(argv)
    from skiff.cli.output import print_formatted
    from skiff.client.extras import Extras

    extras = Extras(ctx.client())
    fmt = ns.format or DEFAULT_FORMAT
    if ns.no_stream:
        rows = [row(next(extras.stats(name))) for name in ns.containers]
        print_formatted(fmt, rows, HEADERS)
        return 0
    streams = [extras.stats(name, stream=True) for name in ns.containers]
    while True:
        rows = [row(next(s)) for s in streams]
        sys.stdout.write("\033[2J\033[H")
        print_formatted(fmt, rows, HEADERS)
        sys.stdout.flush()
