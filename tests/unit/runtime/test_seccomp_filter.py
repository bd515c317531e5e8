"""Building seccomp filters without loading them (no root needed)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from skiff.errors import InvalidArgument, Unsupported
from skiff.oci.runtime_spec import Seccomp
from skiff.oci.spec_reader import Reader
from skiff.runtime import seccomp
from skiff.runtime.seccomp_docker import docker_profile_to_oci, native_arch

DOCKER_PROFILE = Path("/work/shared/specs/docker-default-seccomp.json")


def spec(data: dict[str, object]) -> Seccomp:
    return Seccomp(Reader(data, "linux.seccomp"))


def pfc(data: dict[str, object]) -> str:
    """The filter libseccomp would load, as its pseudo-C text."""
    filt = seccomp.build_filter(spec(data))
    try:
        with tempfile.TemporaryFile("w+") as f:
            filt.export_pfc(f.fileno())
            f.seek(0)
            return f.read()
    finally:
        filt.release()


def test_actions() -> None:
    assert seccomp.action_value("SCMP_ACT_ALLOW", None) == 0x7FFF0000
    assert seccomp.action_value("SCMP_ACT_ERRNO", None) == 0x00050001  # EPERM by default
    assert seccomp.action_value("SCMP_ACT_ERRNO", 38) == 0x00050026
    assert seccomp.action_value("SCMP_ACT_TRACE", None) == 0x7FF00001
    assert seccomp.action_value("SCMP_ACT_KILL", None) == 0
    assert seccomp.action_value("SCMP_ACT_KILL_THREAD", None) == 0
    assert seccomp.action_value("SCMP_ACT_KILL_PROCESS", None) == 0x80000000
    assert seccomp.action_value("SCMP_ACT_TRAP", None) == 0x00030000
    assert seccomp.action_value("SCMP_ACT_LOG", None) == 0x7FFC0000


def test_errno_ret_only_with_errno_or_trace() -> None:
    with pytest.raises(InvalidArgument, match="errnoRet"):
        seccomp.action_value("SCMP_ACT_ALLOW", 1)
    with pytest.raises(InvalidArgument, match="16 bits"):
        seccomp.action_value("SCMP_ACT_ERRNO", 70000)
    with pytest.raises(Unsupported, match="NOTIFY"):
        seccomp.action_value("SCMP_ACT_NOTIFY", None)
    with pytest.raises(InvalidArgument, match="errnoRet"):
        seccomp.build_filter(
            spec({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1, "syscalls": []})
        )


def test_constants_agree_with_pyseccomp() -> None:
    pyseccomp = pytest.importorskip("pyseccomp")
    assert seccomp.ACTIONS["SCMP_ACT_KILL_PROCESS"] == pyseccomp.KILL_PROCESS
    assert seccomp.ACTIONS["SCMP_ACT_KILL_THREAD"] == pyseccomp.KILL_THREAD
    assert seccomp.ACTIONS["SCMP_ACT_TRAP"] == pyseccomp.TRAP
    assert seccomp.ACTIONS["SCMP_ACT_LOG"] == pyseccomp.LOG
    assert seccomp.ACTIONS["SCMP_ACT_ALLOW"] == pyseccomp.ALLOW
    assert seccomp.ACT_NOTIFY == pyseccomp.NOTIFY
    assert seccomp.action_value("SCMP_ACT_ERRNO", 13) == pyseccomp.ERRNO(13)
    assert seccomp.action_value("SCMP_ACT_TRACE", 13) == pyseccomp.TRACE(13)
    for name, op in seccomp.OPS.items():
        assert op == getattr(pyseccomp, name.removeprefix("SCMP_CMP_"))
    for name, token in seccomp.ARCHES.items():
        theirs = getattr(pyseccomp.Arch, name.removeprefix("SCMP_ARCH_"), None)
        assert theirs in (None, token), name
    assert seccomp.ARCHES["SCMP_ARCH_X86_64"] == pyseccomp.Arch.X86_64


def test_conditions_group_like_runc() -> None:
    one = spec(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {
                    "names": ["socket"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [
                        {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                        {"index": 1, "value": 0xF, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"},
                    ],
                },
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [
                        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                    ],
                },
            ],
        }
    )
    # Distinct arguments: one rule, ANDed.
    assert seccomp.conditions(one.syscalls[0].args) == [[(0, 4, 2, 0), (1, 7, 0xF, 1)]]
    # The same argument twice: one rule each, ORed.
    assert seccomp.conditions(one.syscalls[1].args) == [[(0, 4, 0, 0)], [(0, 4, 8, 0)]]


def test_filter_denies_mkdir_with_eperm() -> None:
    text = pfc(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
        }
    )
    assert "mkdir" in text
    assert "ERRNO(1)" in text


def test_unknown_syscalls_and_default_action_rules_are_skipped() -> None:
    text = pfc(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "syscalls": [
                {"names": ["no_such_syscall_ever", "getpid"], "action": "SCMP_ACT_ALLOW"},
                # equal to the default action: libseccomp would refuse it
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                # differs from the default by its errno: kept
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            ],
        }
    )
    assert "getpid" in text
    assert "no_such_syscall_ever" not in text
    assert "mkdir" not in text
    assert "ERRNO(38)" in text


def test_architectures_native_is_always_there() -> None:
    if native_arch() != "amd64":
        pytest.skip("x86_64 only")
    text = pfc(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}],
        }
    )
    assert "x86_64" in text
    assert "x86" in text.replace("x86_64", "")
    assert "x32" in text
    with pytest.raises(InvalidArgument, match="SCMP_ARCH_VAX"):
        seccomp.build_filter(
            spec({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})
        )


def test_flags() -> None:
    text = pfc(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_LOG"}],
        }
    )
    assert "mkdir" in text
    if seccomp.libseccomp_version() < (2, 6, 0):
        with pytest.raises(Unsupported, match="WAIT_KILLABLE_RECV"):
            seccomp.build_filter(
                spec(
                    {
                        "defaultAction": "SCMP_ACT_ALLOW",
                        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                    }
                )
            )


def test_notify_is_unsupported_before_libseccomp_is_touched() -> None:
    with pytest.raises(Unsupported, match="listenerPath"):
        seccomp.build_filter(
            spec(
                {
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "listenerPath": "/run/agent.sock",
                    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
                }
            )
        )


@pytest.mark.skipif(not DOCKER_PROFILE.exists(), reason="no copy of Docker's profile")
def test_docker_default_profile_builds() -> None:
    profile = json.loads(DOCKER_PROFILE.read_text())
    oci = docker_profile_to_oci(profile, ["CAP_CHOWN", "CAP_KILL"], native_arch())
    text = pfc(oci)
    assert "ptrace" in text
    assert "ERRNO(38)" in text  # clone3 -> ENOSYS without CAP_SYS_ADMIN
