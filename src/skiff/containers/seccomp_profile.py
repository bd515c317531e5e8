"""Docker's default seccomp policy, built as an OCI `linux.seccomp` object (pure data + code).

The policy is an allow-list: every syscall not allowed fails with EPERM. What a
container may call depends on its capabilities (the bounding set), the machine's
architecture and the kernel:

    always         the syscalls in _ALLOWED (files, memory, processes, sockets, ...)
    kernel >= 4.8  ptrace, process_vm_readv/writev (older kernels let ptrace escape seccomp)
    per capability _BY_CAPABILITY: CAP_SYS_ADMIN unlocks mount, unshare, setns, clone with
                   namespace flags, ...; CAP_SYS_PTRACE ptrace; CAP_SYS_TIME settimeofday ...
    per arch       _BY_ARCH: arch_prctl on x86-64, set_tls on arm, ...
    with arguments socket: not AF_ALG (38) nor AF_VSOCK (40);
                   personality: only PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE and the query;
                   clone (without CAP_SYS_ADMIN): no namespace flags;
                   clone3 (without CAP_SYS_ADMIN): ENOSYS, so libc falls back to clone.

`default_profile(caps, arch)` returns the object for one container. The facts are
Docker's (moby profiles/seccomp/default.json); the layout here is skiff's own.
"""

from __future__ import annotations

import os

from skiff.runtime.seccomp_docker import native_arch

__all__ = ["default_profile", "scmp_architectures"]

ENOSYS = 38
EPERM = 1

# clone(2) flags that create namespaces: NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP.
CLONE_NAMESPACE_FLAGS = 0x7E020000

# personality(2) values a container may set: PER_LINUX, UNAME26, ADDR_NO_RANDOMIZE,
# UNAME26|ADDR_NO_RANDOMIZE, and 0xffffffff (query the current persona).
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

AF_ALG = 38
AF_VSOCK = 40


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Syscalls every container may make, grouped by what they touch.
_ALLOWED = frozenset().union(
    # paths, directories, file descriptors
    _names("""
        access faccessat faccessat2 chdir fchdir getcwd
        chmod fchmod fchmodat fchmodat2 chown chown32 fchown fchown32 fchownat lchown lchown32
        creat open openat openat2 close close_range dup dup2 dup3 fcntl fcntl64 flock
        link linkat symlink symlinkat unlink unlinkat rename renameat renameat2
        mkdir mkdirat mknod mknodat rmdir readlink readlinkat
        truncate truncate64 ftruncate ftruncate64 umask
        utime utimes utimensat utimensat_time64 futimesat getdents getdents64
        name_to_handle_at ioctl
    """),
    # file status and mounts (read-only views)
    _names("""
        stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx
        statfs statfs64 fstatfs fstatfs64 statmount listmount
    """),
    # extended attributes
    _names("""
        getxattr lgetxattr fgetxattr getxattrat setxattr lsetxattr fsetxattr setxattrat
        listxattr llistxattr flistxattr listxattrat
        removexattr lremovexattr fremovexattr removexattrat
    """),
    # reading, writing, syncing; asynchronous I/O (not io_uring)
    _names("""
        read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2
        lseek _llseek sendfile sendfile64 splice tee vmsplice copy_file_range readahead
        fadvise64 fadvise64_64 fallocate fsync fdatasync sync syncfs sync_file_range cachestat
        io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
    """),
    # waiting for events
    _names("""
        poll ppoll ppoll_time64 select _newselect pselect6 pselect6_time64
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old
        epoll_pwait epoll_pwait2 eventfd eventfd2 signalfd signalfd4
        timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64
        inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
    """),
    # memory
    _names("""
        brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages
        mlock mlock2 mlockall munlock munlockall membarrier memfd_create memfd_secret
        pkey_alloc pkey_free pkey_mprotect map_shadow_stack mseal
    """),
    # processes and threads
    _names("""
        execve execveat exit exit_group fork vfork wait4 waitid waitpid
        kill tkill tgkill getpid getppid gettid getpgid getpgrp setpgid getsid setsid
        prctl seccomp set_tid_address get_robust_list set_robust_list rseq restart_syscall
        pidfd_open pidfd_send_signal process_mrelease getcpu uretprobe riscv_hwprobe
        get_thread_area set_thread_area
        futex futex_time64 futex_requeue futex_wait futex_waitv futex_wake
    """),
    # credentials (the capabilities still decide what succeeds)
    _names("""
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32
        getresuid getresuid32 getresgid getresgid32 getgroups getgroups32
        setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
        setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32
        setgroups setgroups32 capget capset
    """),
    # signals
    _names("""
        rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend
        rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
        sigaltstack sigprocmask sigreturn pause alarm
    """),
    # clocks and timers (reading; setting needs CAP_SYS_TIME)
    _names("""
        clock_gettime clock_gettime64 clock_getres clock_getres_time64
        clock_nanosleep clock_nanosleep_time64 clock_adjtime clock_adjtime64 adjtimex
        nanosleep gettimeofday time times getitimer setitimer
        timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
        timer_settime timer_settime64
    """),
    # scheduling, limits, system information
    _names("""
        sched_getaffinity sched_setaffinity sched_getattr sched_setattr
        sched_getparam sched_setparam sched_getscheduler sched_setscheduler
        sched_get_priority_max sched_get_priority_min
        sched_rr_get_interval sched_rr_get_interval_time64 sched_yield
        getpriority setpriority ioprio_get ioprio_set
        getrlimit setrlimit ugetrlimit prlimit64 getrusage sysinfo uname getrandom
    """),
    # sockets (socket(2) itself is allowed by family, below)
    _names("""
        socketcall socketpair bind connect listen accept accept4
        getsockname getpeername getsockopt setsockopt shutdown
        send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64
    """),
    # System V and POSIX IPC, pipes
    _names("""
        ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl
        shmget shmat shmdt shmctl
        mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive
        mq_timedreceive_time64 mq_notify mq_getsetattr pipe pipe2
    """),
    # unprivileged sandboxing
    _names("landlock_create_ruleset landlock_add_rule landlock_restrict_self"),
)

# Allowed from kernel 4.8 on: before it, ptrace could be used to bypass seccomp.
_PTRACE_SAFE_FROM = (4, 8)
_PTRACE = _names("ptrace process_vm_readv process_vm_writev")

# What each capability in the bounding set adds.
_BY_CAPABILITY: dict[str, frozenset[str]] = {
    "CAP_DAC_READ_SEARCH": _names("open_by_handle_at"),
    "CAP_SYS_ADMIN": _names("""
        bpf clone clone3 fanotify_init lookup_dcookie perf_event_open quotactl quotactl_fd
        mount umount umount2 mount_setattr move_mount open_tree
        fsconfig fsmount fsopen fspick
        lsm_get_self_attr lsm_list_modules lsm_set_self_attr
        setdomainname sethostname setns unshare syslog
    """),
    "CAP_SYS_BOOT": _names("reboot"),
    "CAP_SYS_CHROOT": _names("chroot"),
    "CAP_SYS_MODULE": _names("init_module finit_module delete_module"),
    "CAP_SYS_PACCT": _names("acct"),
    "CAP_SYS_PTRACE": _PTRACE | _names("kcmp pidfd_getfd process_madvise"),
    "CAP_SYS_RAWIO": _names("iopl ioperm"),
    "CAP_SYS_TIME": _names("settimeofday stime clock_settime clock_settime64"),
    "CAP_SYS_TTY_CONFIG": _names("vhangup"),
    "CAP_SYS_NICE": _names("get_mempolicy set_mempolicy set_mempolicy_home_node mbind"),
    "CAP_SYSLOG": _names("syslog"),
    "CAP_BPF": _names("bpf"),
    "CAP_PERFMON": _names("perf_event_open"),
}

# What each architecture adds (profile naming: Go's GOARCH).
_X86_LDT = _names("modify_ldt")
_ARM = _names("arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls")
_S390 = _names("s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr")
_BY_ARCH: dict[str, frozenset[str]] = {
    "amd64": _names("arch_prctl") | _X86_LDT,
    "x32": _names("arch_prctl") | _X86_LDT,
    "x86": _X86_LDT,
    "arm": _ARM,
    "arm64": _ARM,
    "ppc64le": _names("sync_file_range2 swapcontext"),
    "s390": _S390,
    "s390x": _S390,
    "riscv64": _names("riscv_flush_icache"),
}

# The native libseccomp architecture -> the ones a process on it may also use.
_COMPAT_ARCHES: dict[str, tuple[str, ...]] = {
    "X86_64": ("X86", "X32"),
    "AARCH64": ("ARM",),
    "MIPS64": ("MIPS", "MIPS64N32"),
    "MIPS64N32": ("MIPS", "MIPS64"),
    "MIPSEL64": ("MIPSEL", "MIPSEL64N32"),
    "MIPSEL64N32": ("MIPSEL", "MIPSEL64"),
    "S390X": ("S390",),
    "RISCV64": (),
    "LOONGARCH64": (),
}
_GOARCH_TO_SCMP = {
    "amd64": "X86_64",
    "arm64": "AARCH64",
    "mips64": "MIPS64",
    "mips64n32": "MIPS64N32",
    "mipsel64": "MIPSEL64",
    "mipsel64n32": "MIPSEL64N32",
    "s390x": "S390X",
    "riscv64": "RISCV64",
    "loong64": "LOONGARCH64",
}


def scmp_architectures(arch: str) -> list[str]:
    """["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"] for "amd64"; [] if unknown."""
    native = _GOARCH_TO_SCMP.get(arch)
    if native is None:
        return []
    return ["SCMP_ARCH_" + a for a in (native, *_COMPAT_ARCHES[native])]


def _kernel(release: str) -> tuple[int, int]:
    numbers = []
    for piece in release.split("-", 1)[0].split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit()) if piece[:1].isdigit() else ""
        numbers.append(int(digits) if digits else 0)
    while len(numbers) < 2:
        numbers.append(0)
    return numbers[0], numbers[1]


def _arg(index: int, value: int, op: str) -> dict[str, object]:
    return {"index": index, "value": value, "op": op}


def default_profile(
    caps: list[str] | tuple[str, ...],
    arch: str | None = None,
    kernel_release: str | None = None,
) -> dict[str, object]:
    """The OCI seccomp object for a container whose bounding set is `caps`.

    `arch` is Go's name for this machine ("amd64", "arm64"; default: this machine's);
    `kernel_release` defaults to `uname -r`.
    """
    arch = arch or native_arch()
    release = kernel_release if kernel_release is not None else os.uname().release
    have = set(caps)
    allowed = set(_ALLOWED) | _BY_ARCH.get(arch, frozenset())
    if _kernel(release) >= _PTRACE_SAFE_FROM:
        allowed |= _PTRACE
    for cap, names in _BY_CAPABILITY.items():
        if cap in have:
            allowed |= names

    rules: list[dict[str, object]] = [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}]

    def allow_if(name: str, *args: dict[str, object]) -> None:
        rules.append({"names": [name], "action": "SCMP_ACT_ALLOW", "args": list(args)})

    allow_if("socket", _arg(0, AF_ALG, "SCMP_CMP_LT"))
    for family in range(AF_ALG + 1, AF_VSOCK):
        allow_if("socket", _arg(0, family, "SCMP_CMP_EQ"))
    allow_if("socket", _arg(0, AF_VSOCK, "SCMP_CMP_GT"))
    for persona in PERSONALITIES:
        allow_if("personality", _arg(0, persona, "SCMP_CMP_EQ"))
    if "CAP_SYS_ADMIN" not in have:
        # s390 passes clone's flags second.
        flags_index = 1 if arch in ("s390", "s390x") else 0
        allow_if("clone", _arg(flags_index, CLONE_NAMESPACE_FLAGS, "SCMP_CMP_MASKED_EQ"))
        # clone3 passes its flags in a struct seccomp cannot read: make libc fall back.
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS})

    profile: dict[str, object] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": EPERM}
    architectures = scmp_architectures(arch)
    if architectures:
        profile["architectures"] = architectures
    profile["syscalls"] = rules
    return profile
