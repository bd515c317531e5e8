"""features: what this runtime supports, in the runtime spec's features.md shape."""

from __future__ import annotations

import json

from skiff.runtime.cli.args import parse

TYPE_CHECKING = False

if TYPE_CHECKING:
    from skiff.runtime.cli.main import Globals

MOUNT_OPTIONS = sorted(
    [
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "rbind",
        "relatime",
        "remount",
        "ro",
        "rprivate",
        "rshared",
        "rslave",
        "runbindable",
        "rw",
        "shared",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "unbindable",
    ]
)


def features() -> dict[str, object]:
    from skiff.linux.capabilities import NAMES
    from skiff.oci.runtime_spec import HOOK_KINDS, NAMESPACE_TYPES, SECCOMP_ACTIONS, SECCOMP_OPS

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": list(HOOK_KINDS),
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(NAMES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {
                "enabled": True,
                "actions": sorted(SECCOMP_ACTIONS - {"SCMP_ACT_NOTIFY"}),
                "operators": sorted(SECCOMP_OPS),
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runtime-spec.features": "skiff-runtime"},
    }


def command(g: Globals, argv: list[str]) -> int:
    parse(argv, [])
    print(json.dumps(features(), indent=4))
    return 0
