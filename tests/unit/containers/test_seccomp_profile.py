"""skiff's default seccomp policy against Docker's own profile (read from the shared specs
folder when it is there; skipped otherwise): the same rules for every capability set,
architecture and kernel that changes them."""

from __future__ import annotations

import json
import os

import pytest

from skiff.containers.seccomp_profile import default_profile, scmp_architectures
from skiff.linux.capabilities import NAMES
from skiff.runtime.seccomp_docker import docker_profile_to_oci

REFERENCE = "/work/shared/specs/docker-default-seccomp.json"

DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

CAP_SETS = {
    "default": DEFAULT_CAPS,
    "sys_admin": [*DEFAULT_CAPS, "CAP_SYS_ADMIN"],
    "ptrace_time_nice": [*DEFAULT_CAPS, "CAP_SYS_PTRACE", "CAP_SYS_TIME", "CAP_SYS_NICE"],
    "none": [],
    "all": list(NAMES),
    "bpf_perfmon": ["CAP_BPF", "CAP_PERFMON", "CAP_SYSLOG", "CAP_DAC_READ_SEARCH"],
    "boot_module_pacct": ["CAP_SYS_BOOT", "CAP_SYS_MODULE", "CAP_SYS_PACCT", "CAP_SYS_RAWIO"],
}


def _rules(profile: dict[str, object]) -> set[tuple[str, str, object, str]]:
    """One (syscall, action, errnoRet, args) per syscall and rule: order-free."""
    out = set()
    syscalls = profile["syscalls"]
    assert isinstance(syscalls, list)
    for rule in syscalls:
        for name in rule["names"]:
            args = json.dumps(rule.get("args") or [], sort_keys=True)
            out.add((name, rule["action"], rule.get("errnoRet"), args))
    return out


@pytest.fixture(scope="module")
def reference() -> dict[str, object]:
    if not os.path.exists(REFERENCE):
        pytest.skip("Docker's default seccomp profile is not in the shared specs")
    with open(REFERENCE) as f:
        data = json.load(f)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("caps", CAP_SETS.values(), ids=list(CAP_SETS))
@pytest.mark.parametrize("arch", ["amd64", "arm64", "s390x", "ppc64le", "riscv64", "x86"])
@pytest.mark.parametrize("kernel", ["6.1.0-13-amd64", "4.4.0"])
def test_same_rules_as_dockers_profile(
    reference: dict[str, object], caps: list[str], arch: str, kernel: str
) -> None:
    want = docker_profile_to_oci(reference, caps, arch, kernel_release=kernel)
    got = default_profile(caps, arch, kernel)
    assert _rules(got) == _rules(want)
    assert got["defaultAction"] == want["defaultAction"]
    assert got.get("defaultErrnoRet") == want.get("defaultErrnoRet")
    assert got.get("architectures") == want.get("architectures")


def test_allowed_set_for_default_caps(reference: dict[str, object]) -> None:
    def allowed(p: dict[str, object]) -> set[str]:
        return {n for n, action, _, args in _rules(p) if action == "SCMP_ACT_ALLOW"}

    for caps in CAP_SETS.values():
        assert allowed(default_profile(caps, "amd64", "6.1.0")) == allowed(
            docker_profile_to_oci(reference, caps, "amd64", kernel_release="6.1.0")
        )


def test_namespace_syscalls_need_sys_admin() -> None:
    plain = _rules(default_profile(DEFAULT_CAPS, "amd64", "6.1.0"))
    names = {n for n, action, _, args in plain if action == "SCMP_ACT_ALLOW" and args == "[]"}
    assert {"mount", "unshare", "setns", "clone", "ptrace"} & names == {"ptrace"}
    assert ("clone3", "SCMP_ACT_ERRNO", 38, "[]") in plain
    admin = _rules(default_profile([*DEFAULT_CAPS, "CAP_SYS_ADMIN"], "amd64", "6.1.0"))
    assert ("clone", "SCMP_ACT_ALLOW", None, "[]") in admin
    assert not any(n == "clone3" and a == "SCMP_ACT_ERRNO" for n, a, _, _ in admin)


def test_architectures() -> None:
    assert scmp_architectures("amd64") == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert scmp_architectures("arm64") == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert scmp_architectures("sparc") == []
    assert "architectures" not in default_profile([], "sparc", "6.1")
