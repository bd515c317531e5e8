"""Docker's seccomp profile format -> an OCI `linux.seccomp` object, as moby does it.

Docker's format (its default profile, `--security-opt seccomp=FILE`) is the OCI
object plus:
- `archMap`: [{architecture, subArchitectures}]; only the entry of the
  daemon's own architecture is used (it and its sub-architectures). It is an
  error to give both `architectures` and `archMap`.
- per rule `name` (one syscall; not together with `names`), `comment`, and
  `includes` / `excludes` with `arches` (Go/libseccomp names: "amd64",
  "arm64", "s390x", ...), `caps` (matched against the container's bounding
  set) and `minKernel` ("4.8"). A rule is dropped when an exclude matches
  (any listed cap present, the arch listed, the kernel at least minKernel)
  or an include fails (a listed cap missing, the arch not listed, the
  kernel older than minKernel).

The daemon calls this when it writes a container's config.json.
"""

from __future__ import annotations

import os

from skiff.errors import InvalidArgument

# Go's GOARCH / libseccomp's names for this machine -> the SCMP_ARCH_* token (moby's table).
NATIVE_TO_SCMP = {
    "x86": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mipsel64n32": "SCMP_ARCH_MIPSEL64N32",
    "mipsle": "SCMP_ARCH_MIPSEL",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390": "SCMP_ARCH_S390",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
}

# uname -m -> the names used in profiles' includes/excludes.arches.
MACHINE_TO_NATIVE = {
    "x86_64": "amd64",
    "i386": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loong64",
    "mips64": "mips64",
}


def native_arch() -> str:
    """This machine's architecture in the profiles' naming ("amd64", "arm64", ...)."""
    machine = os.uname().machine
    return MACHINE_TO_NATIVE.get(machine, machine)


def _kernel_version(release: str) -> tuple[int, ...]:
    """ "6.1.0-13-amd64" -> (6, 1, 0); "4.8" -> (4, 8)."""
    parts = []
    for piece in release.split("-", 1)[0].split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise InvalidArgument(f"seccomp profile: bad kernel version {release!r}")
    return tuple(parts)


def _kernel_at_least(min_kernel: str, release: str) -> bool:
    want = _kernel_version(min_kernel)
    have = _kernel_version(release)
    width = max(len(want), len(have))
    return have + (0,) * (width - len(have)) >= want + (0,) * (width - len(want))


def _obj(value: object, where: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"seccomp profile: {where} must be an object")
    return value


def _list(value: object, where: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"seccomp profile: {where} must be an array")
    return value


def _strs(value: object, where: str) -> list[str]:
    items = _list(value, where)
    if not all(isinstance(x, str) for x in items):
        raise InvalidArgument(f"seccomp profile: {where} must be an array of strings")
    return [str(x) for x in items]


def _rule_applies(
    rule: dict[str, object], where: str, caps: set[str], arch: str, kernel_release: str
) -> bool:
    excludes = _obj(rule.get("excludes"), where + ".excludes")
    includes = _obj(rule.get("includes"), where + ".includes")
    if arch in _strs(excludes.get("arches"), where + ".excludes.arches"):
        return False
    if any(c in caps for c in _strs(excludes.get("caps"), where + ".excludes.caps")):
        return False
    newer = excludes.get("minKernel")
    if newer and _kernel_at_least(str(newer), kernel_release):
        return False
    only = _strs(includes.get("arches"), where + ".includes.arches")
    if only and arch not in only:
        return False
    if any(c not in caps for c in _strs(includes.get("caps"), where + ".includes.caps")):
        return False
    older = includes.get("minKernel")
    return not (older and not _kernel_at_least(str(older), kernel_release))


def docker_profile_to_oci(
    profile: dict[str, object],
    caps: list[str],
    arch: str,
    *,
    kernel_release: str | None = None,
) -> dict[str, object]:
    """The OCI `linux.seccomp` object for a container with bounding set `caps` on `arch`.

    `arch` is in the profiles' naming ("amd64"; see `native_arch()`).
    `kernel_release` defaults to this machine's (`uname -r`), for minKernel.
    """
    release = kernel_release if kernel_release is not None else os.uname().release
    if profile.get("architectures") and profile.get("archMap"):
        raise InvalidArgument(
            "'architectures' and 'archMap' were specified in the seccomp profile, "
            "use either 'architectures' or 'archMap'"
        )
    out: dict[str, object] = {"defaultAction": profile.get("defaultAction", "")}
    for key in ("defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"):
        if profile.get(key) is not None:
            out[key] = profile[key]

    arches = _strs(profile.get("architectures"), "architectures")
    scmp_arch = NATIVE_TO_SCMP.get(arch)
    for i, item in enumerate(_list(profile.get("archMap"), "archMap")):
        entry = _obj(item, f"archMap[{i}]")
        if scmp_arch is not None and entry.get("architecture") == scmp_arch:
            arches.append(scmp_arch)
            arches += _strs(entry.get("subArchitectures"), f"archMap[{i}].subArchitectures")
            break
    if arches:
        out["architectures"] = arches

    have = set(caps)
    syscalls: list[dict[str, object]] = []
    for i, item in enumerate(_list(profile.get("syscalls"), "syscalls")):
        where = f"syscalls[{i}]"
        rule = _obj(item, where)
        if not _rule_applies(rule, where, have, arch, release):
            continue
        names = _strs(rule.get("names"), where + ".names")
        name = rule.get("name")
        if name:
            if names:
                raise InvalidArgument(
                    f"seccomp profile: {where}: 'name' and 'names' were specified, "
                    "use either 'name' or 'names'"
                )
            names = [str(name)]
        call: dict[str, object] = {"names": names, "action": rule.get("action", "")}
        for key in ("errnoRet", "args"):
            if rule.get(key) is not None:
                call[key] = rule[key]
        syscalls.append(call)
    out["syscalls"] = syscalls
    return out
