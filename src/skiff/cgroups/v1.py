"""cgroup v1: one directory per controller hierarchy, written as runc's fs driver does.

`paths` maps each controller ("memory", "cpu", ...) to the container's
directory in that hierarchy; co-mounted controllers share one directory.
Zero means "not set" for memory, cpu, blkio and classid values, as in runc;
pids uses -1 (or less) for "max" and 0 as a real limit (runtime-spec 1.3).
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

    from skiff.oci.runtime_spec import BlockIO, Cpu, DeviceRule, Memory, Resources

R = "linux.resources"


class V1Manager:
    version = 1

    def __init__(self, paths: dict[str, str], trace: list[tuple[str, str]] | None = None) -> None:
        self._paths = dict(paths)
        self._files = Files(trace)

    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def _dirs(self) -> list[str]:
        return list(dict.fromkeys(self._paths.values()))

    def _dir(self, controller: str, field: str) -> str:
        d = self._paths.get(controller)
        if d is None:
            raise CgroupError(field, f"the {controller} cgroup controller is not mounted")
        return d

    # lifecycle

    def create(self) -> None:
        for controller, d in self._paths.items():
            try:
                if controller == "cpuset":
                    _cpuset_mkdir(d, self._files)
                else:
                    os.makedirs(d, exist_ok=True)
            except OSError as e:
                raise CgroupError("linux.cgroupsPath", f"mkdir {d}: {e.strerror}") from e

    def add(self, pid: int) -> None:
        for d in self._dirs():
            self._files.write(d, "cgroup.procs", str(pid), "cgroup.procs")

    def join(self) -> None:
        # A move by pid, or through cgroup.procs, takes the kernel's global
        # cgroup_threadgroup_rwsem for writing, and the first writer of a burst
        # waits for an RCU grace period (10-30 ms on this machine kind). A thread
        # that writes "0" to `tasks` moves only itself, which needs no such lock
        # (cgroup_procs_write_start). With a single thread, that is the process.
        for d in self._dirs():
            self._files.write(d, "tasks", "0", "tasks")

    def pids(self) -> list[int]:
        for controller in ("devices", "freezer", "pids", "memory"):
            if controller in self._paths:
                return files.procs(self._paths[controller])
        return files.procs(self._dirs()[0]) if self._paths else []

    def destroy(self) -> None:
        for d in self._dirs():
            files.remove_tree(d)

    # freezer

    def freeze(self) -> None:
        d = self._dir("freezer", "cgroup freeze")
        # A v1 freeze can stall in FREEZING while processes fork; retry, thawing
        # now and then, as runc does (the real fix is cgroup v2's freezer).
        for i in range(1000):
            if i % 50 == 49:
                self._files.write(d, "freezer.state", "THAWED", "cgroup freeze")
                time.sleep(0.01)
            self._files.write(d, "freezer.state", "FROZEN", "cgroup freeze")
            if i % 25 == 24:
                time.sleep(0.00001)
            state = files.read(d, "freezer.state")
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise CgroupError("cgroup freeze", f"unexpected freezer state {state!r}")
        self._files.write(d, "freezer.state", "THAWED", "cgroup freeze")
        raise CgroupError("cgroup freeze", f"{d} stuck in FREEZING")

    def thaw(self) -> None:
        d = self._dir("freezer", "cgroup thaw")
        self._files.write(d, "freezer.state", "THAWED", "cgroup thaw")

    def state(self) -> str:
        d = self._paths.get("freezer")
        if d is None:
            return "thawed"
        for _ in range(10000):  # FREEZING settles within milliseconds; cap at ~10 s
            state = files.read(d, "freezer.state")
            if state == "THAWED":
                return "thawed"
            if state == "FROZEN":
                # FROZEN only because an ancestor is frozen is not "paused".
                try:
                    return "frozen" if files.read(d, "freezer.self_freezing") == "1" else "thawed"
                except FileNotFoundError:
                    return "frozen"
            time.sleep(0.001)
        raise CgroupError("cgroup state", f"{d} stuck in FREEZING")

    # limits

    def apply(self, resources: Resources) -> None:
        r = resources
        if r.unified:
            raise CgroupError(R + ".unified", "not supported on cgroup v1")
        if r.memory is not None:
            self._memory(r.memory)
        if r.cpu is not None:
            self._cpu(r.cpu)
            self._cpuset(r.cpu)
        if r.pids_limit is not None:
            value = "max" if r.pids_limit < 0 else str(r.pids_limit)
            d = self._dir("pids", R + ".pids.limit")
            self._files.write(d, "pids.max", value, R + ".pids.limit")
        if r.block_io is not None:
            self._blkio(r.block_io)
        for i, h in enumerate(r.hugepage_limits):
            field = f"{R}.hugepageLimits[{i}]"
            d = self._dir("hugetlb", field)
            name = f"hugetlb.{h.page_size}.limit_in_bytes"
            if not files.exists(d, name):
                raise CgroupError(field, f"hugepage size {h.page_size!r} is not supported")
            self._files.write(d, name, str(h.limit), field)
            rsvd = f"hugetlb.{h.page_size}.rsvd.limit_in_bytes"
            if files.exists(d, rsvd):
                self._files.write(d, rsvd, str(h.limit), field)
        if r.network is not None:
            if r.network.class_id:
                field = R + ".network.classID"
                d = self._dir("net_cls", field)
                self._files.write(d, "net_cls.classid", str(r.network.class_id), field)
            for i, (name, prio) in enumerate(r.network.priorities):
                field = f"{R}.network.priorities[{i}]"
                d = self._dir("net_prio", field)
                self._files.write(d, "net_prio.ifpriomap", f"{name} {prio}", field)
        if r.devices:
            self._devices(r.devices)

    def _memory(self, m: Memory) -> None:
        d = self._dir("memory", R + ".memory")
        limit, swap = m.limit or 0, m.swap or 0
        has_memsw = files.exists(d, "memory.memsw.limit_in_bytes")
        if not has_memsw:
            swap = 0  # no swap accounting on this host: nothing to limit
        elif limit == -1 and swap == 0:
            swap = -1  # "unlimited memory" means unlimited memory+swap too
        # The kernel keeps memsw >= limit at every step: raising, write memsw
        # first; lowering, write the limit first.
        swap_first = False
        if limit and swap:
            current = int(files.read(d, "memory.limit_in_bytes"))  # unlimited is huge here
            swap_first = swap == -1 or current < swap
        if swap_first:
            self._set_swap(d, swap)
            self._set_limit(d, limit)
        else:
            self._set_limit(d, limit)
            self._set_swap(d, swap)
        for value, name, field in (
            (m.kernel, "memory.kmem.limit_in_bytes", "kernel"),
            (m.kernel_tcp, "memory.kmem.tcp.limit_in_bytes", "kernelTCP"),
        ):
            if value and files.exists(d, name):
                try:
                    self._files.write_raw(os.path.join(d, name), str(value))
                except OSError as e:
                    # Kernels from 5.16 keep the file but refuse kmem limits.
                    if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise CgroupError(f"{R}.memory.{field}", e.strerror or "") from e
        if m.reservation:
            field = R + ".memory.reservation"
            self._files.write(d, "memory.soft_limit_in_bytes", str(m.reservation), field)
        if m.disable_oom_killer:
            self._files.write(d, "memory.oom_control", "1", R + ".memory.disableOOMKiller")
        if m.swappiness is not None:
            field = R + ".memory.swappiness"
            if m.swappiness > 100:
                raise CgroupError(field, f"{m.swappiness} is out of range 0-100")
            self._files.write(d, "memory.swappiness", str(m.swappiness), field)

    def _set_limit(self, d: str, limit: int) -> None:
        if not limit:
            return
        path = os.path.join(d, "memory.limit_in_bytes")
        try:
            self._files.write_raw(path, str(limit))
        except OSError as e:
            msg = f"writing {limit} to {path}: {e.strerror}"
            if e.errno == errno.EBUSY:
                usage = files.read_int(d, "memory.usage_in_bytes")
                msg = f"cannot set the limit to {limit} below current usage ({usage})"
            raise CgroupError(R + ".memory.limit", msg) from e

    def _set_swap(self, d: str, swap: int) -> None:
        if swap:
            self._files.write(d, "memory.memsw.limit_in_bytes", str(swap), R + ".memory.swap")

    def _cpu(self, c: Cpu) -> None:
        wanted = (c.shares, c.period, c.quota, c.realtime_period, c.realtime_runtime)
        if not any(wanted) and c.burst is None and c.idle is None:
            return  # cpus/mems only: no need for the cpu controller
        d = self._dir("cpu", R + ".cpu")
        if c.shares:
            field = R + ".cpu.shares"
            self._files.write(d, "cpu.shares", str(c.shares), field)
            got = files.read_int(d, "cpu.shares")
            if got != c.shares:  # the kernel clamps to [2, 262144] silently
                raise CgroupError(field, f"{c.shares} is out of range (kernel set {got})")
        # period and quota must stay consistent with the parent's at each step:
        # if the new period is refused, set the quota, then retry the period.
        quota = bool(c.quota)
        period = self._try(d, "cpu.cfs_period_us", c.period or None, quota, R + ".cpu.period")
        burst = None
        if c.burst is not None and files.exists(d, "cpu.cfs_burst_us"):
            burst = self._try(d, "cpu.cfs_burst_us", c.burst, quota, R + ".cpu.burst")
        if c.quota:
            self._files.write(d, "cpu.cfs_quota_us", str(c.quota), R + ".cpu.quota")
            if period is not None:
                self._files.write(d, "cpu.cfs_period_us", str(period), R + ".cpu.period")
            if burst is not None:
                self._files.write(d, "cpu.cfs_burst_us", str(burst), R + ".cpu.burst")
        if c.idle is not None:
            self._files.write(d, "cpu.idle", str(c.idle), R + ".cpu.idle")
        rt_field = R + ".cpu.realtimePeriod"
        runtime = bool(c.realtime_runtime)
        rt_period = self._try(d, "cpu.rt_period_us", c.realtime_period or None, runtime, rt_field)
        if c.realtime_runtime:
            field = R + ".cpu.realtimeRuntime"
            self._files.write(d, "cpu.rt_runtime_us", str(c.realtime_runtime), field)
            if rt_period is not None:
                self._files.write(d, "cpu.rt_period_us", str(rt_period), rt_field)

    def _try(
        self, d: str, name: str, value: int | None, retry_later: bool, field: str
    ) -> int | None:
        """Write `value` unless None; if refused with EINVAL and `retry_later`,
        return it so the caller writes it again after the value it depends on."""
        if value is None:
            return None
        try:
            self._files.write_raw(os.path.join(d, name), str(value))
        except OSError as e:
            if e.errno == errno.EINVAL and retry_later:
                return value
            raise CgroupError(field, f"writing {value} to {name}: {e.strerror}") from e
        return None

    def _cpuset(self, c: Cpu) -> None:
        for value, name, field in (
            (c.cpus, "cpuset.cpus", "cpus"),
            (c.mems, "cpuset.mems", "mems"),
        ):
            if value:
                d = self._dir("cpuset", f"{R}.cpu.{field}")
                self._files.write(d, name, value, f"{R}.cpu.{field}")

    def _blkio(self, b: BlockIO) -> None:
        base = R + ".blockIO"
        d = self._dir("blkio", base)
        # CFQ's files, or BFQ's (kernels from 5.0 have no CFQ).
        bfq = not files.exists(d, "blkio.weight")
        weight = "blkio.bfq.weight" if bfq else "blkio.weight"
        weight_device = "blkio.bfq.weight_device" if bfq else "blkio.weight_device"
        if b.weight:
            self._files.write(d, weight, str(b.weight), base + ".weight")
        if b.leaf_weight:
            self._files.write(d, "blkio.leaf_weight", str(b.leaf_weight), base + ".leafWeight")
        for i, wd in enumerate(b.weight_device):
            field = f"{base}.weightDevice[{i}]"
            if wd.weight:
                self._files.write(d, weight_device, f"{wd.major}:{wd.minor} {wd.weight}", field)
            if wd.leaf_weight:
                value = f"{wd.major}:{wd.minor} {wd.leaf_weight}"
                self._files.write(d, "blkio.leaf_weight_device", value, field)
        for devices, name, key in (
            (b.throttle_read_bps, "read_bps_device", "throttleReadBpsDevice"),
            (b.throttle_write_bps, "write_bps_device", "throttleWriteBpsDevice"),
            (b.throttle_read_iops, "read_iops_device", "throttleReadIOPSDevice"),
            (b.throttle_write_iops, "write_iops_device", "throttleWriteIOPSDevice"),
        ):
            for i, td in enumerate(devices):
                value = f"{td.major}:{td.minor} {td.rate}"
                self._files.write(d, "blkio.throttle." + name, value, f"{base}.{key}[{i}]")

    def _devices(self, rules: list[DeviceRule]) -> None:
        # The kernel applies devices.allow/deny writes with the spec's own
        # semantics (a type-"a" deny resets to deny-all, later rules add or
        # remove exceptions), so writing the rules in order is exact for a
        # fresh cgroup. runc's emulator additionally diffs against the current
        # rules so an update never briefly denies a running container; we
        # rewrite them (see the package notes).
        d = self._dir("devices", R + ".devices")
        for i, rule in enumerate(rules):
            name = "devices.allow" if rule.allow else "devices.deny"
            self._files.write(d, name, device_rule(rule), f"{R}.devices[{i}]")

    # statistics

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        d = self._paths.get("memory")
        if d and files.exists(d, "memory.usage_in_bytes"):
            out["memory"] = {
                "usage": files.read_int(d, "memory.usage_in_bytes") or 0,
                "max_usage": files.read_int(d, "memory.max_usage_in_bytes"),
                "limit": files.read_int(d, "memory.limit_in_bytes"),
                "stat": files.read_keyed(d, "memory.stat"),
            }
        d = self._paths.get("cpuacct")
        if d and files.exists(d, "cpuacct.usage"):
            percpu = files.read(d, "cpuacct.usage_percpu").split()
            out["cpu"] = {
                "usage_ns": files.read_int(d, "cpuacct.usage") or 0,
                "user_ns": files.read_int(d, "cpuacct.usage_user"),
                "system_ns": files.read_int(d, "cpuacct.usage_sys"),
                "percpu_ns": [int(x) for x in percpu],
            }
            c = self._paths.get("cpu")
            if c:
                st = files.read_keyed(c, "cpu.stat")
                out["cpu"]["periods"] = st.get("nr_periods", 0)
                out["cpu"]["throttled_periods"] = st.get("nr_throttled", 0)
                out["cpu"]["throttled_ns"] = st.get("throttled_time", 0)
        d = self._paths.get("pids")
        if d and files.exists(d, "pids.current"):
            out["pids"] = {
                "current": files.read_int(d, "pids.current") or 0,
                "limit": files.read_int(d, "pids.max"),
            }
        return out


def device_rule(rule: DeviceRule) -> str:
    """The v1 devices.allow/deny line: "c 1:3 rwm", "*" for an unset number."""
    if rule.type == "a":
        return "a"
    major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
    minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
    return f"{rule.type} {major}:{minor} {rule.access}"


def _cpuset_mkdir(d: str, fs: Files) -> None:
    """mkdir -p, copying cpuset.cpus/mems down from the parent into every level
    below the hierarchy root where they are empty (new or not, as runc): the
    kernel refuses tasks in a cpuset with empty cpus or mems and does not
    inherit them."""
    p = os.path.dirname(d)
    while p != "/" and not files.exists(p, "cpuset.cpus"):
        p = os.path.dirname(p)
    while p != "/" and files.exists(os.path.dirname(p), "cpuset.cpus"):
        p = os.path.dirname(p)
    root = p  # the cpuset mount: the top directory with cpuset.cpus
    level = root
    for part in os.path.relpath(d, root).split("/"):
        parent, level = level, os.path.join(level, part)
        if not os.path.isdir(level):
            os.mkdir(level)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if files.exists(level, name) and not files.read(level, name):
                fs.write(level, name, files.read(parent, name), "linux.cgroupsPath")
