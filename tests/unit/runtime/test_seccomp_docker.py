from __future__ import annotations

import json
from pathlib import Path

import pytest

from skiff.errors import InvalidArgument
from skiff.oci.runtime_spec import Seccomp
from skiff.oci.spec_reader import Reader
from skiff.runtime.seccomp_docker import docker_profile_to_oci, native_arch

DOCKER_PROFILE = Path("/work/shared/specs/docker-default-seccomp.json")
ARCH_MAP = [
    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": None},
]


def convert(
    rules: list[dict[str, object]],
    caps: list[str] | None = None,
    arch: str = "amd64",
    kernel: str = "6.1.0-13-amd64",
    **top: object,
) -> dict[str, object]:
    profile: dict[str, object] = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules, **top}
    return docker_profile_to_oci(profile, caps or [], arch, kernel_release=kernel)


def names(oci: dict[str, object]) -> list[str]:
    calls = oci["syscalls"]
    assert isinstance(calls, list)
    return [n for call in calls for n in call["names"]]


def test_includes_caps_need_every_cap() -> None:
    rule = {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
    assert names(convert([rule])) == []
    assert names(convert([rule], ["CAP_SYS_ADMIN"])) == ["bpf"]
    both = {**rule, "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}}
    assert names(convert([both], ["CAP_SYS_ADMIN"])) == []
    assert names(convert([both], ["CAP_SYS_ADMIN", "CAP_BPF"])) == ["bpf"]


def test_excludes_caps_any_cap_excludes() -> None:
    rule = {
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": 38,
        "excludes": {"caps": ["CAP_SYS_ADMIN"]},
    }
    assert convert([rule])["syscalls"] == [
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    ]
    assert names(convert([rule], ["CAP_SYS_ADMIN"])) == []


def test_arches_in_includes_and_excludes() -> None:
    only_x86 = {
        "names": ["arch_prctl"],
        "action": "SCMP_ACT_ALLOW",
        "includes": {"arches": ["amd64", "x32"]},
    }
    not_s390 = {
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "excludes": {"arches": ["s390", "s390x"]},
    }
    assert names(convert([only_x86, not_s390], arch="amd64")) == ["arch_prctl", "clone"]
    assert names(convert([only_x86, not_s390], arch="arm64")) == ["clone"]
    assert names(convert([only_x86, not_s390], arch="s390x")) == []


def test_min_kernel() -> None:
    inc = {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}}
    exc = {"names": ["old"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}}
    assert names(convert([inc, exc], kernel="4.4.0-210-generic")) == ["old"]
    assert names(convert([inc, exc], kernel="4.8.0")) == ["ptrace", "old"]
    assert names(convert([inc, exc], kernel="5.10.0-28-amd64")) == ["ptrace"]
    assert names(convert([inc, exc], kernel="6.18.44-fc-v595")) == ["ptrace"]


def test_arch_map_picks_this_arch_and_its_sub_arches() -> None:
    assert convert([], archMap=ARCH_MAP)["architectures"] == [
        "SCMP_ARCH_X86_64",
        "SCMP_ARCH_X86",
        "SCMP_ARCH_X32",
    ]
    assert convert([], arch="arm64", archMap=ARCH_MAP)["architectures"] == [
        "SCMP_ARCH_AARCH64",
        "SCMP_ARCH_ARM",
    ]
    assert convert([], arch="riscv64", archMap=ARCH_MAP)["architectures"] == ["SCMP_ARCH_RISCV64"]
    assert "architectures" not in convert([], arch="ppc64le", archMap=ARCH_MAP)


def test_top_level_fields_and_name() -> None:
    oci = convert(
        [{"name": "mkdir", "action": "SCMP_ACT_ERRNO", "comment": "no dirs"}],
        defaultErrnoRet=1,
        architectures=["SCMP_ARCH_X86_64"],
        flags=["SECCOMP_FILTER_FLAG_LOG"],
    )
    assert oci == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }


def test_errors() -> None:
    with pytest.raises(InvalidArgument, match="archMap"):
        convert([], architectures=["SCMP_ARCH_X86_64"], archMap=ARCH_MAP)
    with pytest.raises(InvalidArgument, match="'name' and 'names'"):
        convert([{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}])
    with pytest.raises(InvalidArgument, match=r"syscalls\[0\].includes.caps"):
        convert([{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": "CAP_X"}}])


def test_native_arch() -> None:
    assert native_arch() in {"amd64", "arm64", "x86", "arm", "ppc64le", "s390x", "riscv64"}


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


@pytest.mark.skipif(not DOCKER_PROFILE.exists(), reason="no copy of Docker's profile")
def test_docker_default_profile() -> None:
    profile = json.loads(DOCKER_PROFILE.read_text())
    oci = docker_profile_to_oci(profile, DEFAULT_CAPS, "amd64", kernel_release="6.1.0")
    seccomp = Seccomp(Reader(oci, "linux.seccomp"))  # a valid OCI object
    assert seccomp.default_action == "SCMP_ACT_ERRNO"
    assert seccomp.default_errno_ret == 1
    assert seccomp.architectures == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = {n for r in seccomp.syscalls if r.action == "SCMP_ACT_ALLOW" for n in r.names}
    assert {"read", "write", "ptrace", "arch_prctl", "chroot", "modify_ldt"} <= allowed
    assert not {"mount", "bpf", "reboot", "s390_runtime_instr", "riscv_flush_icache"} & allowed
    clone = [r for r in seccomp.syscalls if r.names == ["clone"]]
    assert len(clone) == 1
    assert clone[0].args[0].op == "SCMP_CMP_MASKED_EQ"
    assert clone[0].args[0].index == 0  # not the s390 variant
    assert [r.errno_ret for r in seccomp.syscalls if r.names == ["clone3"]] == [38]

    admin = docker_profile_to_oci(profile, [*DEFAULT_CAPS, "CAP_SYS_ADMIN"], "amd64")
    admin_names = names(admin)
    assert "mount" in admin_names
    assert "clone3" in admin_names
    assert not [c for c in admin["syscalls"] if c.get("errnoRet") == 38]

    arm = docker_profile_to_oci(profile, DEFAULT_CAPS, "arm64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in names(arm)
    assert "arm_fadvise64_64" in names(arm)
