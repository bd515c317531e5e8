"""cgroup v2: one directory in the unified hierarchy, written as runc's fs2 driver does.

Not done: device rules. v2 has no devices.allow; runc attaches an eBPF
program (BPF_CGROUP_DEVICE) built from the rules. Until skiff does that,
`linux.resources.devices` is ignored on v2 (no error, like a runtime built
without eBPF support), so containers there can open any device node they can
see; the runtime's /dev setup (only the default nodes) is the only fence.

Ignored on v2 because the kernel has no such knob (runc ignores them too):
memory.kernel/kernelTCP/swappiness/disableOOMKiller, blockIO.leafWeight,
network (net_cls/net_prio). Realtime CPU values are an error.
"""

from __future__ import annotations

import errno
import os
import time

from skiff.cgroups import files
from skiff.cgroups.files import CgroupError, Files

TYPE_CHECKING = False  # typing costs ~15 ms at import; mypy treats this name as True

if TYPE_CHECKING:
    from typing import Any

    from skiff.oci.runtime_spec import BlockIO, Cpu, Memory, Resources

R = "linux.resources"


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares [2, 262144] → v2 cpu.weight [1, 10000] (runc's linear map)."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """v1 blkio.weight [10, 1000] → v2 io.weight [1, 10000] (runc's map)."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int, memory: int) -> int:
    """OCI swap is memory+swap; v2's memory.swap.max is swap alone.

    0 = unset, -1 = unlimited. Unlimited memory with unset swap means both
    unlimited, as on v1.
    """
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise CgroupError(R + ".memory.swap", "cannot limit swap without a memory limit")
    if swap < memory:
        raise CgroupError(R + ".memory.swap", f"memory+swap {swap} is below the memory {memory}")
    return swap - memory


def limit_str(value: int) -> str:
    return "max" if value == -1 else str(value)


class V2Manager:
    version = 2

    def __init__(
        self,
        path: str,
        root: str | None = None,
        controllers: tuple[str, ...] | None = None,
        trace: list[tuple[str, str]] | None = None,
    ) -> None:
        """`path`: the container's directory; `root`: the cgroup2 mount (found by
        walking up from `path` if not given); `controllers`: which to enable in
        ancestors' subtree_control on create (default: all available, as runc)."""
        self._path = path.rstrip("/")
        self._root = root.rstrip("/") if root else None
        self._controllers = controllers
        self._files = Files(trace)

    def paths(self) -> dict[str, str]:
        return {"": self._path}  # runc's state.json key for the unified hierarchy

    def _mount_root(self) -> str:
        if self._root:
            return self._root
        p = os.path.dirname(self._path)
        while not files.exists(p, "cgroup.controllers") and p != "/":
            p = os.path.dirname(p)
        while p != "/" and files.exists(os.path.dirname(p), "cgroup.controllers"):
            p = os.path.dirname(p)
        return p

    # lifecycle

    def create(self) -> None:
        root = self._mount_root()
        rel = os.path.relpath(self._path, root)
        if rel.startswith(".."):
            raise CgroupError("linux.cgroupsPath", f"{self._path} is not below {root}")
        current = root
        for part in rel.split("/"):
            self._enable_controllers(current)
            current = os.path.join(current, part)
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            except OSError as e:
                raise CgroupError("linux.cgroupsPath", f"mkdir {current}: {e.strerror}") from e

    def _enable_controllers(self, d: str) -> None:
        """Delegate controllers to children. Failures are ignored, as runc does:
        a cgroup with processes of its own cannot delegate (no internal
        processes rule), and apply() reports the missing control file later."""
        try:
            available = files.read(d, "cgroup.controllers").split()
            enabled = set(files.read(d, "cgroup.subtree_control").split())
        except OSError:
            return
        wanted = [
            c
            for c in available
            if c not in enabled and (self._controllers is None or c in self._controllers)
        ]
        if not wanted:
            return
        path = os.path.join(d, "cgroup.subtree_control")
        if not self._try_write(path, " ".join("+" + c for c in wanted)):
            for c in wanted:  # one by one: enable what can be
                self._try_write(path, "+" + c)

    def _try_write(self, path: str, value: str) -> bool:
        try:
            self._files.write_raw(path, value)
        except OSError:
            return False
        return True

    def add(self, pid: int) -> None:
        self._files.write(self._path, "cgroup.procs", str(pid), "cgroup.procs")

    def join(self) -> None:
        self._files.write(self._path, "cgroup.procs", "0", "cgroup.procs")

    def pids(self) -> list[int]:
        return files.procs(self._path)

    def destroy(self) -> None:
        files.remove_tree(self._path)

    # freezer

    def freeze(self) -> None:
        self._files.write(self._path, "cgroup.freeze", "1", "cgroup freeze")
        deadline = time.monotonic() + 10
        while not self._frozen():
            if time.monotonic() > deadline:
                raise CgroupError("cgroup freeze", f"{self._path} did not freeze in 10s")
            time.sleep(0.01)

    def thaw(self) -> None:
        self._files.write(self._path, "cgroup.freeze", "0", "cgroup thaw")

    def _frozen(self) -> bool:
        for line in files.read(self._path, "cgroup.events").splitlines():
            if line.startswith("frozen "):
                return line.split()[1] == "1"
        return False

    def state(self) -> str:
        try:
            wanted = files.read(self._path, "cgroup.freeze")
        except FileNotFoundError:
            return "thawed"  # kernels before 5.2: no freezer, never frozen
        if wanted != "1":
            return "thawed"
        deadline = time.monotonic() + 10
        while not self._frozen() and time.monotonic() < deadline:
            time.sleep(0.01)  # freezing: settles shortly
        return "frozen"

    # limits

    def apply(self, resources: Resources) -> None:
        r = resources
        if r.memory is not None:
            self._memory(r.memory)
        if r.cpu is not None:
            self._cpu(r.cpu)
        if r.pids_limit is not None:
            value = "max" if r.pids_limit < 0 else str(r.pids_limit)
            self._files.write(self._path, "pids.max", value, R + ".pids.limit")
        if r.block_io is not None:
            self._io(r.block_io)
        for i, h in enumerate(r.hugepage_limits):
            field = f"{R}.hugepageLimits[{i}]"
            name = f"hugetlb.{h.page_size}.max"
            if not files.exists(self._path, name):
                raise CgroupError(field, f"hugepage size {h.page_size!r} is not available")
            self._files.write(self._path, name, str(h.limit), field)
            rsvd = f"hugetlb.{h.page_size}.rsvd.max"
            if files.exists(self._path, rsvd):
                self._files.write(self._path, rsvd, str(h.limit), field)
        # r.devices: needs an eBPF program; not done (see the module notes).
        self._unified(r.unified)

    def _memory(self, m: Memory) -> None:
        d = self._path
        limit, swap = m.limit or 0, m.swap or 0
        reservation = m.reservation or 0
        if not (limit or swap or reservation):
            return
        if m.check_before_update and limit > 0:
            # v1 refuses a limit below usage; v2 would OOM-kill instead.
            usage = files.read_int(d, "memory.current") or 0
            if limit <= usage:
                raise CgroupError(
                    R + ".memory.limit", f"{limit} is not above current usage {usage}"
                )
        v2_swap = swap_to_v2(swap, limit)
        value = limit_str(v2_swap) if v2_swap else ("0" if swap > 0 else "")
        if value:
            try:
                self._files.write_raw(os.path.join(d, "memory.swap.max"), value)
            except OSError as e:
                # No swap accounting: "unlimited" or "none" already holds.
                if not (e.errno == errno.ENOENT and value in ("max", "0")):
                    raise CgroupError(R + ".memory.swap", f"memory.swap.max={value}: {e}") from e
        if limit:
            self._files.write(d, "memory.max", limit_str(limit), R + ".memory.limit")
        if reservation:
            field = R + ".memory.reservation"
            self._files.write(d, "memory.low", limit_str(reservation), field)

    def _cpu(self, c: Cpu) -> None:
        d = self._path
        if c.realtime_period or c.realtime_runtime:
            raise CgroupError(R + ".cpu.realtimeRuntime", "realtime is not supported on cgroup v2")
        if c.idle is not None:
            self._files.write(d, "cpu.idle", str(c.idle), R + ".cpu.idle")
        if c.shares:
            weight = str(shares_to_weight(c.shares))
            self._files.write(d, "cpu.weight", weight, R + ".cpu.shares")
        burst_later = None
        if c.burst is not None:
            try:
                self._files.write_raw(os.path.join(d, "cpu.max.burst"), str(c.burst))
            except OSError as e:
                if e.errno != errno.EINVAL or not c.quota:
                    raise CgroupError(R + ".cpu.burst", f"cpu.max.burst: {e.strerror}") from e
                burst_later = c.burst  # needs the new quota first
        if c.quota or c.period:
            value = str(c.quota) if c.quota and c.quota > 0 else "max"
            if c.period:
                value += f" {c.period}"
            self._files.write(d, "cpu.max", value, R + ".cpu.quota")
            if burst_later is not None:
                self._files.write(d, "cpu.max.burst", str(burst_later), R + ".cpu.burst")
        for value_s, name, field in (
            (c.cpus, "cpuset.cpus", "cpus"),
            (c.mems, "cpuset.mems", "mems"),
        ):
            if value_s:
                self._files.write(d, name, value_s, f"{R}.cpu.{field}")

    def _io(self, b: BlockIO) -> None:
        d = self._path
        base = R + ".blockIO"
        bfq = files.exists(d, "io.bfq.weight")
        if b.weight:
            if bfq:
                self._files.write(d, "io.bfq.weight", str(b.weight), base + ".weight")
            else:
                value = str(blkio_weight_to_io_weight(b.weight))
                self._files.write(d, "io.weight", value, base + ".weight")
        if bfq:  # only BFQ takes per-device weights
            for i, wd in enumerate(b.weight_device):
                if wd.weight:
                    value = f"{wd.major}:{wd.minor} {wd.weight}"
                    self._files.write(d, "io.bfq.weight", value, f"{base}.weightDevice[{i}]")
        for devices, key, field in (
            (b.throttle_read_bps, "rbps", "throttleReadBpsDevice"),
            (b.throttle_write_bps, "wbps", "throttleWriteBpsDevice"),
            (b.throttle_read_iops, "riops", "throttleReadIOPSDevice"),
            (b.throttle_write_iops, "wiops", "throttleWriteIOPSDevice"),
        ):
            for i, td in enumerate(devices):
                value = f"{td.major}:{td.minor} {key}={td.rate}"
                self._files.write(d, "io.max", value, f"{base}.{field}[{i}]")

    def _unified(self, unified: dict[str, str]) -> None:
        for key, value in unified.items():
            field = f"{R}.unified[{key!r}]"
            if "/" in key or key in (".", "..") or not key:
                raise CgroupError(field, "must be a file name in the container's cgroup")
            path = os.path.join(self._path, key)
            # Multi-line values (io.max for several devices) are one write per line.
            for line in value.splitlines() or [""]:
                try:
                    self._files.write_raw(path, line)
                except OSError as e:
                    msg = f"writing {line!r} to {path}: {e.strerror}"
                    if e.errno in (errno.ENOENT, errno.EPERM):
                        controller = key.partition(".")[0]
                        available = self._available()
                        if controller != "cgroup" and controller not in available:
                            msg = f"controller {controller!r} is not enabled for {self._path}"
                    raise CgroupError(field, msg) from e

    def _available(self) -> list[str]:
        try:
            return files.read(self._path, "cgroup.controllers").split()
        except OSError:
            return []

    # statistics

    def stats(self) -> dict[str, Any]:
        d = self._path
        out: dict[str, Any] = {}
        if files.exists(d, "memory.current"):
            out["memory"] = {
                "usage": files.read_int(d, "memory.current") or 0,
                "max_usage": files.read_int(d, "memory.peak"),
                "limit": files.read_int(d, "memory.max"),
                "stat": files.read_keyed(d, "memory.stat"),
            }
        st = files.read_keyed(d, "cpu.stat")
        if "usage_usec" in st:
            out["cpu"] = {
                "usage_ns": st["usage_usec"] * 1000,
                "user_ns": st.get("user_usec", 0) * 1000,
                "system_ns": st.get("system_usec", 0) * 1000,
                "percpu_ns": [],
                "periods": st.get("nr_periods", 0),
                "throttled_periods": st.get("nr_throttled", 0),
                "throttled_ns": st.get("throttled_usec", 0) * 1000,
            }
        if files.exists(d, "pids.current"):
            out["pids"] = {
                "current": files.read_int(d, "pids.current") or 0,
                "limit": files.read_int(d, "pids.max"),
            }
        return out
