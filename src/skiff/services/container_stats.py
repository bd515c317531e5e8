"""`docker top` and `docker stats` from the container's cgroup.

The cgroup is the one the bundle's config.json names (linux.cgroupsPath), opened with
skiff.cgroups; `top` runs the host's `ps` and keeps the rows whose PID is in the
cgroup (as dockerd does); `stats` samples cgroup counters into Docker's StatsJSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from skiff.errors import Conflict, InvalidArgument
from skiff.services.core import ContainerCore, is_running

ZERO_TIME = "0001-01-01T00:00:00Z"


def cgroup_manager(c: Any) -> Any:
    from skiff.cgroups import open_manager

    try:
        with open(os.path.join(c.dir, "config.json"), "rb") as f:
            spec = json.loads(f.read())
        path = str((spec.get("linux") or {}).get("cgroupsPath") or "")
    except (OSError, ValueError):
        path = ""
    return open_manager(path or f"/skiff/{c.id}", c.id)


def top(c: Any, ps_args: str = "") -> dict[str, Any]:
    """Titles and Processes of `ps` (default `-ef`) filtered to the container's pids."""
    if not is_running(c):
        raise Conflict(f"Container {c.id} is not running")
    pids = set(cgroup_manager(c).pids())
    args = ps_args.split() if ps_args else ["-ef"]
    try:
        out = subprocess.run(
            ["ps", *args], capture_output=True, check=True, text=True, timeout=30
        ).stdout
    except subprocess.CalledProcessError as exc:
        raise InvalidArgument(f"ps: {exc.stderr.strip() or exc}") from None
    return parse_ps(out, pids)


def parse_ps(output: str, pids: set[int]) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    try:
        pid_col = titles.index("PID")
    except ValueError:
        raise InvalidArgument("Couldn't find PID field in ps output") from None
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= pid_col:
            continue
        try:
            pid = int(fields[pid_col])
        except ValueError:
            continue
        if pid in pids:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


def _now() -> str:
    ts = time.time()
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts % 1 * 1e9):09d}Z"


def system_cpu_usage() -> int:
    """/proc/stat's cpu line in nanoseconds (Docker's system_cpu_usage)."""
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(x) for x in line.split()[1:8])
                return ticks * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))
    return 0


def _host_memory() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _empty_cpu() -> dict[str, Any]:
    return {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def sample(c: Any, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """One StatsJSON; `previous` fills precpu_stats and preread (Docker's shape)."""
    wire: dict[str, Any] = {
        "read": _now(),
        "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": {
            "io_service_bytes_recursive": None,
            "io_serviced_recursive": None,
            "io_queue_recursive": None,
            "io_service_time_recursive": None,
            "io_wait_time_recursive": None,
            "io_merged_recursive": None,
            "io_time_recursive": None,
            "sectors_recursive": None,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _empty_cpu(),
        "precpu_stats": previous["cpu_stats"] if previous else _empty_cpu(),
        "memory_stats": {},
        "name": "/" + c.name,
        "id": c.id,
    }
    if not is_running(c):
        return wire
    raw = cgroup_manager(c).stats()
    online = os.cpu_count() or 1
    cpu = raw.get("cpu")
    if cpu is not None:
        usage: dict[str, Any] = {
            "total_usage": cpu["usage_ns"],
            "usage_in_kernelmode": cpu["system_ns"],
            "usage_in_usermode": cpu["user_ns"],
        }
        if cpu.get("percpu_ns"):
            usage["percpu_usage"] = list(cpu["percpu_ns"])
        wire["cpu_stats"] = {
            "cpu_usage": usage,
            "system_cpu_usage": system_cpu_usage(),
            "online_cpus": online,
            "throttling_data": {
                "periods": cpu.get("periods", 0),
                "throttled_periods": cpu.get("throttled_periods", 0),
                "throttled_time": cpu.get("throttled_ns", 0),
            },
        }
    memory = raw.get("memory")
    if memory is not None:
        limit = memory.get("limit")
        host = _host_memory()
        wire["memory_stats"] = {
            "usage": memory["usage"],
            "stats": dict(memory.get("stat") or {}),
            "limit": min(limit, host) if limit else host,
        }
        if memory.get("max_usage") is not None:
            wire["memory_stats"]["max_usage"] = memory["max_usage"]
    pids = raw.get("pids")
    if pids is not None:
        wire["pids_stats"] = {"current": pids["current"]}
        if pids.get("limit"):
            wire["pids_stats"]["limit"] = pids["limit"]
    return wire


class StatsService:
    def __init__(self, core: ContainerCore) -> None:
        self._core = core

    async def top(self, ref: str, ps_args: str = "") -> dict[str, Any]:
        c = self._core.get(ref)
        return await asyncio.to_thread(top, c, ps_args)

    async def sample(self, ref: str, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        c = self._core.get(ref)
        return await asyncio.to_thread(sample, c, previous)
