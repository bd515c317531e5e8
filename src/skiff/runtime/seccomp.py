"""Build and load an OCI `linux.seccomp` filter with libseccomp, the way runc does.

    program_for(spec, cache)   compile to BPF (or find it compiled) before forking
    load_seccomp(spec, prog)   in the container process, the last thing before execve
    build_filter(spec)         the libseccomp context (tests export it as text)

Compiling Docker's default profile takes libseccomp 5-20 ms (more in a fresh
fork, whose pages are all copied on write), paid on every create and exec. The
compiled program depends only on the spec, the machine and libseccomp, so
`program_for` keeps it in a cache folder named by a hash of those, and the
container process loads the bytes with the seccomp(2) syscall (about 1 ms),
which is what seccomp_load does with the same program and flags.

runc's rules, kept here:
- SCMP_ACT_KILL is KILL_THREAD; ERRNO and TRACE return `errnoRet`, EPERM when
  unset; `errnoRet` on any other action is an error (the spec says fail).
- A syscall name libseccomp cannot resolve on this machine is skipped
  silently: profiles list syscalls of newer kernels and other architectures.
- A rule whose action equals the default action is skipped (libseccomp
  refuses it, and it changes nothing).
- Conditions on distinct arguments are ANDed in one rule; when one argument
  has several conditions, each condition becomes its own rule (ORed), which
  is what profiles that list `socket` three times with one arg mean.
- The native architecture is always in the filter; `architectures` add more.
- libseccomp's own NO_NEW_PRIVS attribute is turned off: no_new_privs is the
  process spec's business (skiff.linux.capabilities.switch_identity). Without
  no_new_privs, loading needs CAP_SYS_ADMIN, so such callers load first.

Why not pyseccomp: its import runs ctypes.util.find_library twice (which
imports subprocess, shutil and re) and costs 30-45 ms on this machine kind,
most of the 50 ms budget of a container start. libseccomp.so.2's ABI is stable
and we need ten of its functions, bound below with ctypes and loaded only when
a filter is built. Its constants are cross-checked against pyseccomp's in the
unit tests.

SCMP_ACT_NOTIFY is not supported: it needs the listener fd sent with the
container state to `listenerPath` by the runtime's parent process; this raises
Unsupported. WAIT_KILLABLE_RECV needs libseccomp >= 2.6 (this machine: 2.5.4).
"""

from __future__ import annotations

import ctypes
import os

from skiff.errors import InvalidArgument, Unsupported

TYPE_CHECKING = False  # typing costs milliseconds at start; mypy still reads the block
if TYPE_CHECKING:
    from skiff.oci.runtime_spec import Seccomp, SeccompArg

EPERM = 1
SYSCALL_ARGS = 6  # a syscall has at most six arguments
NR_SCMP_ERROR = -1  # seccomp_syscall_resolve_name: unknown name

# SCMP_ACT_* values (seccomp.h); ERRNO and TRACE carry 16 bits of data.
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
ACT_NOTIFY = 0x7FC00000
ACTIONS = {
    "SCMP_ACT_KILL": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS,
    "SCMP_ACT_TRAP": ACT_TRAP,
    "SCMP_ACT_ERRNO": ACT_ERRNO,
    "SCMP_ACT_TRACE": ACT_TRACE,
    "SCMP_ACT_LOG": ACT_LOG,
    "SCMP_ACT_ALLOW": ACT_ALLOW,
}
WITH_ERRNO = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})

# enum scmp_compare
OPS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,  # (arg & value) == valueTwo
}

# SCMP_ARCH_* tokens are the kernel's AUDIT_ARCH_* values: ELF machine | flags.
_64BIT = 0x80000000
_LE = 0x40000000
_MIPS_N32 = 0x20000000
ARCHES = {
    "SCMP_ARCH_X86": 3 | _LE,
    "SCMP_ARCH_X86_64": 62 | _64BIT | _LE,
    "SCMP_ARCH_X32": 62 | _LE,
    "SCMP_ARCH_ARM": 40 | _LE,
    "SCMP_ARCH_AARCH64": 183 | _64BIT | _LE,
    "SCMP_ARCH_MIPS": 8,
    "SCMP_ARCH_MIPS64": 8 | _64BIT,
    "SCMP_ARCH_MIPS64N32": 8 | _64BIT | _MIPS_N32,
    "SCMP_ARCH_MIPSEL": 8 | _LE,
    "SCMP_ARCH_MIPSEL64": 8 | _64BIT | _LE,
    "SCMP_ARCH_MIPSEL64N32": 8 | _64BIT | _LE | _MIPS_N32,
    "SCMP_ARCH_PPC": 20,
    "SCMP_ARCH_PPC64": 21 | _64BIT,
    "SCMP_ARCH_PPC64LE": 21 | _64BIT | _LE,
    "SCMP_ARCH_S390": 22,
    "SCMP_ARCH_S390X": 22 | _64BIT,
    "SCMP_ARCH_PARISC": 15,
    "SCMP_ARCH_PARISC64": 15 | _64BIT,
    "SCMP_ARCH_RISCV64": 243 | _64BIT | _LE,
    "SCMP_ARCH_LOONGARCH64": 258 | _64BIT | _LE,
    "SCMP_ARCH_M68K": 4,
    "SCMP_ARCH_SH": 42 | _LE,
    "SCMP_ARCH_SHEB": 42,
}

# Kernel flags for seccomp(SECCOMP_SET_MODE_FILTER), as seccomp_load passes them.
KERNEL_FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
SECCOMP_SET_MODE_FILTER = 1
# seccomp(2)'s number by machine; elsewhere the program is loaded by libseccomp.
SYS_SECCOMP = {"x86_64": 317, "aarch64": 277, "ppc64le": 358, "s390x": 348, "riscv64": 277}
BPF_INSTRUCTION = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k

# enum scmp_filter_attr
ATTR_CTL_NNP = 3
FLAG_ATTRS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 4,  # SCMP_FLTATR_CTL_TSYNC
    "SECCOMP_FILTER_FLAG_LOG": 6,  # SCMP_FLTATR_CTL_LOG
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7,  # SCMP_FLTATR_CTL_SSB
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 10,  # SCMP_FLTATR_CTL_WAITKILL (2.6+)
}


def action_value(action: str, errno_ret: int | None) -> int:
    """The libseccomp action for a spec action and its optional errnoRet."""
    if action == "SCMP_ACT_NOTIFY":
        raise Unsupported(
            "seccomp: SCMP_ACT_NOTIFY (a seccomp agent at listenerPath) is not supported"
        )
    if action not in ACTIONS:
        raise InvalidArgument(f"seccomp: unknown action {action!r}")
    if action not in WITH_ERRNO:
        if errno_ret is not None:
            raise InvalidArgument(
                f"seccomp: errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {action}"
            )
        return ACTIONS[action]
    ret = EPERM if errno_ret is None else errno_ret
    if not 0 <= ret <= 0xFFFF:
        raise InvalidArgument(f"seccomp: errnoRet {ret} does not fit in 16 bits")
    return ACTIONS[action] | ret


def arch_token(name: str) -> int:
    try:
        return ARCHES[name]
    except KeyError:
        raise InvalidArgument(f"seccomp: unknown architecture {name!r}") from None


def conditions(args: list[SeccompArg]) -> list[list[tuple[int, int, int, int]]]:
    """The (index, op, value, valueTwo) groups to add, one rule per group (runc's rule)."""
    conds = [(a.index, OPS[a.op], a.value, a.value_two) for a in args]
    if len({c[0] for c in conds}) < len(conds):
        return [[c] for c in conds]
    return [conds]


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_lib: ctypes.CDLL | None = None


def libseccomp() -> ctypes.CDLL:
    """libseccomp.so.2, loaded and typed on first use."""
    global _lib
    if _lib is None:
        lib = ctypes.CDLL("libseccomp.so.2")
        ctx, u32, i32, uint = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint
        sigs: list[tuple[str, list[type], type | None]] = [
            ("seccomp_init", [u32], ctx),
            ("seccomp_release", [ctx], None),
            ("seccomp_load", [ctx], i32),
            ("seccomp_attr_set", [ctx, i32, u32], i32),
            ("seccomp_arch_add", [ctx, u32], i32),
            ("seccomp_arch_exist", [ctx, u32], i32),
            ("seccomp_syscall_resolve_name", [ctypes.c_char_p], i32),
            ("seccomp_rule_add_array", [ctx, u32, i32, uint, ctypes.POINTER(_ArgCmp)], i32),
            ("seccomp_export_pfc", [ctx, i32], i32),
            ("seccomp_export_bpf", [ctx, i32], i32),
            ("seccomp_version", [], ctypes.POINTER(_Version)),
        ]
        for name, argtypes, restype in sigs:
            fn = getattr(lib, name)
            fn.argtypes = argtypes
            fn.restype = restype
        _lib = lib
    return _lib


def libseccomp_version() -> tuple[int, int, int]:
    v = libseccomp().seccomp_version().contents
    return (v.major, v.minor, v.micro)


def _check(rc: int, what: str) -> None:
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")


class Filter:
    """One libseccomp filter context; release() frees it (after load, or on error)."""

    def __init__(self, default_action: int) -> None:
        self.lib = libseccomp()
        self.ctx = self.lib.seccomp_init(default_action)
        if not self.ctx:
            raise InvalidArgument(f"seccomp: libseccomp refused default action {default_action:#x}")

    def set_attr(self, attr: int, value: int) -> None:
        _check(self.lib.seccomp_attr_set(self.ctx, attr, value), f"seccomp_attr_set({attr})")

    def add_arch(self, token: int) -> None:
        if self.lib.seccomp_arch_exist(self.ctx, token) == 0:
            return  # the native arch is always there
        _check(self.lib.seccomp_arch_add(self.ctx, token), "seccomp_arch_add")

    def add_rule(self, action: int, nr: int, conds: list[tuple[int, int, int, int]]) -> None:
        arr = (_ArgCmp * SYSCALL_ARGS)(*(_ArgCmp(*c) for c in conds))
        _check(
            self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(conds), arr),
            f"seccomp_rule_add(syscall {nr})",
        )

    def export_pfc(self, fd: int) -> None:
        _check(self.lib.seccomp_export_pfc(self.ctx, fd), "seccomp_export_pfc")

    def export_bpf(self) -> bytes:
        """The compiled program, as seccomp_load would hand it to the kernel."""
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(self.lib.seccomp_export_bpf(self.ctx, fd), "seccomp_export_bpf")
            size = os.lseek(fd, 0, os.SEEK_CUR)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def load(self) -> None:
        _check(self.lib.seccomp_load(self.ctx), "seccomp_load")

    def release(self) -> None:
        if self.ctx:
            self.lib.seccomp_release(self.ctx)
            self.ctx = None


def build_filter(spec: Seccomp) -> Filter:
    """A filter for `spec`, not loaded; the caller releases it."""
    default = action_value(spec.default_action, spec.default_errno_ret)
    # Map every action before touching libseccomp, so a bad spec fails cleanly.
    actions = [action_value(rule.action, rule.errno_ret) for rule in spec.syscalls]
    arches = [arch_token(a) for a in spec.architectures]
    filt = Filter(default)
    try:
        filt.set_attr(ATTR_CTL_NNP, 0)
        for flag in spec.flags:
            try:
                filt.set_attr(FLAG_ATTRS[flag], 1)
            except OSError as e:
                version = ".".join(map(str, libseccomp_version()))
                raise Unsupported(
                    f"seccomp: {flag} is not supported here (libseccomp {version}): {e}"
                ) from None
        for name, token in zip(spec.architectures, arches, strict=True):
            try:
                filt.add_arch(token)
            except OSError as e:
                raise Unsupported(
                    f"seccomp: libseccomp cannot add architecture {name}: {e}"
                ) from None
        resolve = filt.lib.seccomp_syscall_resolve_name
        for rule, action in zip(spec.syscalls, actions, strict=True):
            if action == default:
                continue
            groups = conditions(rule.args)
            for name in rule.names:
                nr = resolve(name.encode())
                if nr == NR_SCMP_ERROR:
                    continue
                for group in groups:
                    try:
                        filt.add_rule(action, nr, group)
                    except OSError as e:
                        raise OSError(
                            e.errno, f"seccomp: adding a rule for {name}: {e.strerror}"
                        ) from None
    except BaseException:
        filt.release()
        raise
    return filt


class Program:
    """A compiled filter: BPF instructions and the seccomp(2) flags to load them with."""

    __slots__ = ("bpf", "flags")

    def __init__(self, bpf: bytes, flags: int) -> None:
        if not bpf or len(bpf) % BPF_INSTRUCTION or len(bpf) // BPF_INSTRUCTION > 0xFFFF:
            raise ValueError(f"seccomp: a BPF program of {len(bpf)} bytes is not valid")
        self.bpf = bpf
        self.flags = flags


def spec_key(spec: Seccomp) -> str:
    """A name for what the compiled program depends on: the spec, machine, libseccomp."""
    import hashlib

    rules = [
        (r.names, r.action, r.errno_ret, [(a.index, a.op, a.value, a.value_two) for a in r.args])
        for r in spec.syscalls
    ]
    text = repr(
        (
            spec.default_action,
            spec.default_errno_ret,
            spec.architectures,
            spec.flags,
            rules,
            machine(),
            libseccomp_version(),
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def compile_program(spec: Seccomp) -> Program:
    flags = 0
    for flag in spec.flags:
        flags |= KERNEL_FLAGS.get(flag, 0)
    filt = build_filter(spec)
    try:
        return Program(filt.export_bpf(), flags)
    finally:
        filt.release()


def cached_program(cache: str, key: str) -> Program | None:
    """The program stored under `key` in `cache`, or None."""
    try:
        with open(os.path.join(cache, key), "rb") as f:
            stored = f.read()
        return Program(stored[4:], int.from_bytes(stored[:4], "little"))
    except (OSError, ValueError):
        return None


def program_for(spec: Seccomp, cache: str | None, key: str = "") -> Program:
    """The compiled program for `spec` (whose spec_key is `key`, when known): from
    `cache` (a folder) when compiled before, else compiled and stored there. A
    cache that cannot be read or written only costs the compile."""
    if cache is None:
        return compile_program(spec)
    key = key or spec_key(spec)
    path = os.path.join(cache, key)
    found = cached_program(cache, key)
    if found is not None:
        return found
    program = compile_program(spec)
    try:
        os.makedirs(cache, mode=0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(program.flags.to_bytes(4, "little") + program.bpf)
        os.replace(tmp, path)  # whole or absent: a reader never sees half a program
    except OSError:
        pass
    return program


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_machine = ""


def machine() -> str:
    """The machine's name (uname -m), asked of the kernel once. Not platform.machine():
    importing `platform` costs ~13 ms, a tenth of a runtime command."""
    global _machine
    if not _machine:
        _machine = os.uname().machine
    return _machine


def can_load_programs() -> bool:
    """Whether load_program knows seccomp(2)'s number here (else libseccomp loads)."""
    return machine() in SYS_SECCOMP


def load_program(program: Program) -> None:
    """Install `program` on this process (irreversibly) with seccomp(2)."""
    nr = SYS_SECCOMP.get(machine())
    if nr is None:
        raise Unsupported(f"seccomp: loading a program on {machine()} needs libseccomp")
    buf = ctypes.create_string_buffer(program.bpf, len(program.bpf))
    prog = _SockFprog(len(program.bpf) // BPF_INSTRUCTION, ctypes.addressof(buf))
    from skiff.linux.libc import check, libc

    check(
        libc.syscall(
            ctypes.c_long(nr),
            ctypes.c_long(SECCOMP_SET_MODE_FILTER),
            ctypes.c_long(program.flags),
            ctypes.byref(prog),
        ),
        "seccomp_load",
    )


def load_seccomp(spec: Seccomp | None, prebuilt: Program | None = None) -> None:
    """Install the filter for `spec` on this process (irreversibly): `prebuilt`, its
    program compiled before a fork, or else built and loaded by libseccomp here.
    `spec` may be None only with a program this machine loads by syscall."""
    if prebuilt is not None and can_load_programs():
        load_program(prebuilt)
        return
    if spec is None:
        raise Unsupported(f"seccomp: no filter spec to build on {machine()}")
    filt = build_filter(spec)
    try:
        filt.load()
    finally:
        filt.release()
