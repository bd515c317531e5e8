"""Linux capabilities, no_new_privs and the identity switch of a container process.

Names are the spec's ("CAP_SYS_ADMIN"); numbers are the kernel's. A name this
table knows but the running kernel does not (its number is above
/proc/sys/kernel/cap_last_cap) is skipped with a warning, as runc does: a
profile written for a newer kernel must still start on an older one. A name
nobody knows (a typo) is an error: `validate()` raises ValueError naming it.

Every privileged call that `switch_identity` makes goes through an
`IdentityOps` object, so the order of the calls can be checked in unit tests
with a recording fake; `LINUX` is the real one.
"""

from __future__ import annotations

import ctypes
import os

from skiff.linux.libc import check, libc

TYPE_CHECKING = False  # typing costs milliseconds at start; mypy still reads the block
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Protocol

    from skiff.oci.runtime_spec import Capabilities

    class IdentityOps(Protocol):
        def drop_bounding(self, keep: list[str]) -> None: ...
        def set_keepcaps(self, on: bool) -> None: ...
        def setgroups(self, gids: list[int]) -> None: ...
        def setgid(self, gid: int) -> None: ...
        def setuid(self, uid: int) -> None: ...
        def capset(
            self, effective: list[str], permitted: list[str], inheritable: list[str]
        ) -> None: ...
        def ambient_clear_all(self) -> None: ...
        def ambient_raise(self, names: list[str]) -> list[str]: ...
        def set_no_new_privs(self) -> None: ...


# capability(7) numbers, index = number.
NAMES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: number for number, name in enumerate(NAMES)}

# prctl(2) options
PR_GET_KEEPCAPS = 7
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_EINVAL = 22

_last_cap: int | None = None


def number(name: str) -> int:
    """The kernel's number for a capability name; ValueError when unknown."""
    try:
        return NUMBERS[name]
    except KeyError:
        raise ValueError(f"unknown capability {name!r}") from None


def validate(names: Iterable[str]) -> None:
    """Raise ValueError naming every capability this table does not know."""
    unknown = sorted({n for n in names if n not in NUMBERS})
    if unknown:
        raise ValueError(f"unknown capabilities: {', '.join(unknown)}")


def last_cap() -> int:
    """The highest capability number the running kernel knows (read once)."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last_cap = int(f.read())
        except OSError:
            # No /proc yet (or a very old kernel): probe the bounding set instead.
            n = 0
            while n < 63 and _prctl(PR_CAPBSET_READ, n + 1) >= 0:
                n += 1
            _last_cap = n
    return _last_cap


def unavailable(names: Iterable[str]) -> list[str]:
    """Known names the running kernel lacks (they are skipped, not applied)."""
    top = last_cap()
    return sorted({n for n in names if NUMBERS.get(n, -1) > top})


def to_mask(names: Iterable[str]) -> int:
    """A 64-bit mask of the names; unknown names raise, unavailable ones are left out."""
    top = last_cap()
    mask = 0
    for name in names:
        n = number(name)
        if n <= top:
            mask |= 1 << n
    return mask


def from_mask(mask: int) -> list[str]:
    """The names of the bits set in a mask (unnamed bits are left out)."""
    return [name for n, name in enumerate(NAMES) if mask >> n & 1]


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    ret: int = libc.prctl(
        ctypes.c_int(option),
        ctypes.c_ulong(arg2),
        ctypes.c_ulong(arg3),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )
    return ret


def drop_bounding(keep: list[str]) -> None:
    """Drop every capability not in `keep` from the bounding set (needs CAP_SETPCAP)."""
    kept = to_mask(keep)
    for n in range(last_cap() + 1):
        if kept >> n & 1:
            continue
        if _prctl(PR_CAPBSET_DROP, n) == -1:
            err = ctypes.get_errno()
            if err != _EINVAL:  # EINVAL: the kernel does not know this one; nothing to drop
                name = NAMES[n] if n < len(NAMES) else f"cap {n}"
                raise OSError(err, f"prctl(PR_CAPBSET_DROP, {name}): {os.strerror(err)}")


def bounding() -> list[str]:
    """The names in this process's bounding set."""
    return [
        NAMES[n]
        for n in range(min(last_cap(), len(NAMES) - 1) + 1)
        if _prctl(PR_CAPBSET_READ, n) == 1
    ]


def set_keepcaps(on: bool) -> None:
    """PR_SET_KEEPCAPS: keep the permitted set across a setuid away from root."""
    check(_prctl(PR_SET_KEEPCAPS, int(on)), "prctl(PR_SET_KEEPCAPS)")


def get_keepcaps() -> bool:
    return check(_prctl(PR_GET_KEEPCAPS), "prctl(PR_GET_KEEPCAPS)") == 1


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def capset(effective: list[str], permitted: list[str], inheritable: list[str]) -> None:
    """Set this thread's three sets with capset(2), version 3 (two 32-bit words)."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    for i, mask in enumerate((to_mask(effective), to_mask(permitted), to_mask(inheritable))):
        for word in (0, 1):
            setattr(data[word], _Data._fields_[i][0], mask >> (32 * word) & 0xFFFFFFFF)
    check(libc.capset(ctypes.byref(header), data), "capset")


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) masks of a thread (0: this one)."""
    header = _Header(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_Data * 2)()
    check(libc.capget(ctypes.byref(header), data), "capget")
    return (
        data[0].effective | data[1].effective << 32,
        data[0].permitted | data[1].permitted << 32,
        data[0].inheritable | data[1].inheritable << 32,
    )


def ambient_clear_all() -> None:
    if _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) == -1:
        err = ctypes.get_errno()
        if err != _EINVAL:  # EINVAL: a kernel before 4.3 has no ambient set; runc goes on
            raise OSError(err, f"prctl(PR_CAP_AMBIENT_CLEAR_ALL): {os.strerror(err)}")


def ambient_raise(names: list[str]) -> list[str]:
    """Raise each name in the ambient set; returns "CAP_X: reason" for each that failed.

    A cap can be ambient only when it is both permitted and inheritable. runc
    warns and goes on when a raise fails (older runc ignored the error), so
    the caller gets the failures to warn about rather than an exception.
    """
    top = last_cap()
    failed = []
    for name in names:
        n = number(name)
        if n > top:
            continue
        if _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, n) == -1:
            failed.append(f"{name}: {os.strerror(ctypes.get_errno())}")
    return failed


def ambient() -> list[str]:
    """The names in this thread's ambient set."""
    top = min(last_cap(), len(NAMES) - 1)
    return [
        NAMES[n] for n in range(top + 1) if _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, n) == 1
    ]


def set_no_new_privs() -> None:
    check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "prctl(PR_SET_NO_NEW_PRIVS)")


def get_no_new_privs() -> bool:
    return check(_prctl(PR_GET_NO_NEW_PRIVS), "prctl(PR_GET_NO_NEW_PRIVS)") == 1


def _setgroups(gids: list[int]) -> None:
    # In a user namespace whose setgroups file says "deny" (unprivileged
    # mappings), setgroups(2) always fails; runc skips it there too.
    try:
        with open("/proc/self/setgroups", "rb") as f:
            if f.read().strip() == b"deny":
                return
    except OSError:
        pass
    os.setgroups(gids)


class _Linux:
    """The real calls, as `IdentityOps`."""

    drop_bounding = staticmethod(drop_bounding)
    set_keepcaps = staticmethod(set_keepcaps)
    setgroups = staticmethod(_setgroups)
    setgid = staticmethod(os.setgid)
    setuid = staticmethod(os.setuid)
    capset = staticmethod(capset)
    ambient_clear_all = staticmethod(ambient_clear_all)
    ambient_raise = staticmethod(ambient_raise)
    set_no_new_privs = staticmethod(set_no_new_privs)


LINUX = _Linux()


def switch_identity(
    caps: Capabilities,
    uid: int,
    gid: int,
    additional_gids: list[int],
    no_new_privs: bool,
    *,
    warn: Callable[[str], None] | None = None,
    ops: IdentityOps | None = None,
) -> None:
    """Become the container process's user with its capabilities, in runc's order.

    Called by the container init and by exec, as root (in the container's user
    namespace), after namespaces, mounts and rlimits and before seccomp and exec.

    The order, and why:
    1. Drop the bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP, which
       the process may be about to lose; and the bounding set caps what any
       later execve can gain from file capabilities.
    2. PR_SET_KEEPCAPS on: setuid from 0 to non-zero would otherwise clear the
       permitted set, leaving nothing for step 6 to choose from.
    3-5. setgroups, then setgid, then setuid: the groups and the gid can only
       be changed while we still are uid 0 (CAP_SETGID is checked against the
       current ids), so the uid goes last.
    6. PR_SET_KEEPCAPS off again, so it does not leak into the container
       process (a later setuid there should clear caps as usual).
    7. capset(effective, permitted, inheritable): after setuid the effective
       set is empty; this sets the three sets the spec asks for.
    8. Ambient last: a cap can be raised in the ambient set only when it is
       already in both permitted and inheritable (step 7).
    9. no_new_privs last (runc's place); it only has to precede execve.

    Seccomp is the caller's, and where depends on no_new_privs (as in runc):
    with it, load the filter after this function, right before execve, so as
    few syscalls as possible run under it; without it, loading a filter needs
    CAP_SYS_ADMIN, so load it *before* this function, while still root.

    Capabilities the kernel does not know are skipped; `warn` hears about
    them and about ambient caps that could not be raised (runc warns too).
    Unknown names raise ValueError before anything is changed.
    """
    sys_ = ops if ops is not None else LINUX
    every = [
        *caps.of("bounding"),
        *caps.of("effective"),
        *caps.of("permitted"),
        *caps.of("inheritable"),
        *caps.of("ambient"),
    ]
    validate(every)
    if warn is not None:
        skipped = unavailable(every)
        if skipped:
            warn(f"ignoring capabilities unavailable on this kernel: {', '.join(skipped)}")

    sys_.drop_bounding(caps.of("bounding"))
    sys_.set_keepcaps(True)
    sys_.setgroups(additional_gids)
    sys_.setgid(gid)
    sys_.setuid(uid)
    sys_.set_keepcaps(False)
    sys_.capset(caps.of("effective"), caps.of("permitted"), caps.of("inheritable"))
    sys_.ambient_clear_all()
    failed = sys_.ambient_raise(caps.of("ambient"))
    if failed and warn is not None:
        warn(f"can't raise ambient capabilities: {'; '.join(failed)}")
    if no_new_privs:
        sys_.set_no_new_privs()
