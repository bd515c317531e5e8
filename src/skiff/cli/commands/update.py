"""`skiff update [--memory] [--cpus] [--pids-limit] [--restart] ... CONTAINER...`."""

from __future__ import annotations

import sys
from typing import Any

from skiff.cli.args import parser
from skiff.cli.context import CliContext
from skiff.client import ApiError

_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_bytes(text: str) -> int:
    """docker's RAMInBytes: "64m", "1g", "512k", "100"."""
    low = text.strip().lower().removesuffix("b") or "0"
    unit = _UNITS.get(low[-1], 1)
    number = low[:-1] if low[-1] in _UNITS else low
    return int(float(number) * unit)


def restart_policy(text: str) -> dict[str, Any]:
    name, _, count = text.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def run(ctx: CliContext, argv: list[str], prog: str = "update") -> int:
    p = parser(prog, "Update configuration of one or more containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-m", "--memory", default="")
    p.add_argument("--memory-swap", default="")
    p.add_argument("--memory-reservation", default="")
    p.add_argument("--cpus", default="")
    p.add_argument("-c", "--cpu-shares", type=int, default=0)
    p.add_argument("--cpuset-cpus", default="")
    p.add_argument("--pids-limit", type=int, default=0)
    p.add_argument("--restart", default="")
    ns = p.parse_args(argv)
    body: dict[str, Any] = {}
    if ns.memory:
        body["Memory"] = parse_bytes(ns.memory)
    if ns.memory_swap:
        body["MemorySwap"] = -1 if ns.memory_swap == "-1" else parse_bytes(ns.memory_swap)
    if ns.memory_reservation:
        body["MemoryReservation"] = parse_bytes(ns.memory_reservation)
    if ns.cpus:
        body["NanoCpus"] = int(float(ns.cpus) * 1e9)
    if ns.cpu_shares:
        body["CpuShares"] = ns.cpu_shares
    if ns.cpuset_cpus:
        body["CpusetCpus"] = ns.cpuset_cpus
    if ns.pids_limit:
        body["PidsLimit"] = ns.pids_limit
    if ns.restart:
        body["RestartPolicy"] = restart_policy(ns.restart)
    from skiff.client.extras import Extras

    extras = Extras(ctx.client())
    code = 0
    for name in ns.containers:
        try:
            extras.update(name, body)
            print(name)
        except ApiError as exc:
            print(str(exc), file=sys.stderr)
            code = 1
    return code
