"""build_spec against the real thing: for each set of `docker run` flags, a private dockerd
(20.10, with containerd) writes its config.json (caught by a runtime wrapper that copies it,
then runs runc); skiff parses the same request (the container's inspect Config+HostConfig,
which is what the CLI sent after dockerd's defaults) and builds its own spec for the same
image, rootfs files and volumes. The key fields must agree.

Intentional differences, normalised away: skiff masks /sys/devices/virtual/powercap too
(Docker >= 23), gives --network host no network namespace entry (dockerd names its own),
ignores KernelMemory (Docker >= 25), and its seccomp policy is Docker's current one
(compared separately in tests/unit/containers/test_seccomp_profile.py).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from skiff.api.container_create import parse_create
from skiff.containers import devices
from skiff.containers.spec import ContainerFiles, HostFacts, build_spec
from skiff.linux.capabilities import NAMES
from skiff.runtime.seccomp_docker import native_arch
from skiff.testing.bundles import make_busybox_rootfs
from skiff.testing.containers import make_image
from skiff.testing.peers import PrivateDockerd

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("dockerd") is None or shutil.which("runc") is None or os.geteuid() != 0,
        reason="needs root, dockerd and runc",
    ),
]

PASSWD_EXTRA = "alice:x:1000:1000::/home/alice:/bin/sh\n"
GROUP_EXTRA = "wheel:x:10:alice,nobody\nalice:x:1000:\nstaff:x:50:alice\n"
IMAGE_CHANGES = [
    'CMD ["sleep","100"]',
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin FOO=img",
    "WORKDIR /w",
]

CAPTURE = """#!/bin/sh
prev=""
for a in "$@"; do
  if [ "$prev" = "--bundle" ]; then cp "$a/config.json" "{dir}/$(basename "$a").json"; fi
  prev="$a"
done
exec runc "$@"
"""


def cases(src: str) -> dict[str, list[str]]:
    return {
        "plain": [],
        "tty": ["-t", "-i"],
        "priv": ["--privileged"],
        "caps": ["--cap-add", "SYS_ADMIN", "--cap-drop", "CHOWN", "--cap-drop", "net_raw"],
        "capall": ["--cap-drop", "ALL", "--cap-add", "KILL"],
        "capaddall": ["--cap-add", "ALL", "--cap-drop", "MKNOD"],
        "user": ["-u", "nobody", "--group-add", "10", "--group-add", "staff"],
        "useralice": ["-u", "alice"],
        "usernum": ["-u", "1000:1000", "-w", "/tmp/x/y"],
        "usergrp": ["-u", "alice:wheel"],
        "res": ["--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m",
                "--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--cpuset-mems",
                "0", "--pids-limit", "100", "--oom-kill-disable", "--oom-score-adj", "100",
                "--ulimit", "nofile=1024:2048", "--ulimit", "core=-1"],
        "mem": ["--memory", "64m", "--memory-swappiness", "10"],
        "misc": ["-h", "myhost", "--domainname", "example.com", "-e", "FOO=bar", "-e",
                 "PATH=/x:/bin", "--read-only", "--shm-size", "128m", "--sysctl",
                 "kernel.msgmax=65536", "--security-opt", "no-new-privileges",
                 "--stop-signal", "SIGUSR1"],
        "seccompoff": ["--security-opt", "seccomp=unconfined"],
        "netnone": ["--network", "none"],
        "nethost": ["--network", "host"],
        "hostns": ["--ipc", "host", "--pid", "host", "--uts", "host"],
        "ipcnone": ["--ipc", "none"],
        "init": ["--init"],
        "mounts": ["--tmpfs", "/run:rw,size=10m,noexec", "--tmpfs", "/run2",
                   "-v", f"{src}:/b:ro", "-v", f"{src}/:/c/deeper/", "-v", "vol1:/v",
                   "-v", "/anon",
                   "--mount", f"type=bind,src={src},dst=/d,readonly",
                   "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777",
                   "--mount", f"type=bind,src={src},dst=/e,bind-nonrecursive"],
        "etcbind": ["-v", f"{src}:/etc/hosts", "--read-only", "-v", "vol4:/v4:ro"],
        "device": ["--device", "/dev/null:/dev/mynull:rw", "--device", "/dev/zero",
                   "--device-cgroup-rule", "c 42:* rmw"],
        "entry": ["--entrypoint", "sleep", "@", "100"],
        "entryempty": ["--entrypoint", "", "@", "sleep", "100"],
        "cmd": ["@", "sh", "-c", "sleep 100"],
    }  # fmt: skip


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    base = tempfile.mkdtemp(prefix="/tmp/cs-")
    capture = os.path.join(base, "cap")
    os.mkdir(capture)
    wrapper = os.path.join(base, "capture.sh")
    with open(wrapper, "w") as f:
        f.write(CAPTURE.replace("{dir}", capture))
    os.chmod(wrapper, 0o755)
    src = os.path.join(base, "src")
    os.mkdir(src)
    rootfs = make_busybox_rootfs(os.path.join(base, "rootfs"))
    with open(os.path.join(rootfs, "etc/passwd"), "a") as f:
        f.write(PASSWD_EXTRA)
    with open(os.path.join(rootfs, "etc/group"), "a") as f:
        f.write(GROUP_EXTRA)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(rootfs, arcname=".")
    dockerd = PrivateDockerd({"capture": wrapper})
    try:
        argv = ["import", *(x for c in IMAGE_CHANGES for x in ("-c", c)), "-", "busybox"]
        import subprocess

        proc = subprocess.run(
            ["docker", *argv],
            env=dockerd.env,
            input=buf.getvalue(),
            capture_output=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        yield {"dockerd": dockerd, "capture": capture, "src": src, "rootfs": rootfs}
    finally:
        problems = dockerd.stop()
        shutil.rmtree(base, ignore_errors=True)
        assert not problems


def _dockerd_all_caps() -> tuple[str, ...]:
    # dockerd 20.10 knows the capabilities up to CAP_AUDIT_READ; skiff grants what the
    # kernel and its own bounding set allow. Pin dockerd's list to compare the rest.
    return NAMES[: NAMES.index("CAP_AUDIT_READ") + 1]


def _run(
    world: dict[str, Any], name: str, flags: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    dockerd = world["dockerd"]
    args: list[str] = []
    if "@" in flags:
        i = flags.index("@")
        flags, args = flags[:i], flags[i + 1 :]
    dockerd.docker("run", "-d", "--runtime", "capture", "--name", name, *flags, "busybox", *args)
    inspect = json.loads(dockerd.docker("inspect", name).stdout)[0]
    path = os.path.join(world["capture"], inspect["Id"] + ".json")
    assert os.path.exists(path), dockerd.log_tail()
    with open(path) as f:
        reference = json.load(f)
    dockerd.docker("rm", "-f", name)
    return inspect, reference


def _skiff_spec(
    world: dict[str, Any], inspect: dict[str, Any], reference: dict[str, Any]
) -> dict[str, Any]:
    dockerd = world["dockerd"]
    body = dict(inspect["Config"])
    if inspect["HostConfig"].get("UTSMode") == "host":
        body.pop("Hostname", None)  # dockerd filled in the host's; the CLI sent none
    host_config = dict(inspect["HostConfig"])
    # dockerd fills these in at create; the CLI does not send them.
    for key in ("MaskedPaths", "ReadonlyPaths", "Runtime"):
        host_config.pop(key, None)
    body["HostConfig"] = host_config
    create = parse_create(body, name=inspect["Name"])
    image_config = json.loads(dockerd.docker("image", "inspect", "busybox").stdout)[0]["Config"]
    image = make_image(
        cmd=image_config.get("Cmd"),
        env=image_config.get("Env") or [],
        working_dir=image_config.get("WorkingDir") or "",
        entrypoint=image_config.get("Entrypoint"),
        user=image_config.get("User") or "",
    )
    by_dest = {m["destination"]: m for m in reference["mounts"]}
    files = ContainerFiles(
        hostname=by_dest.get("/etc/hostname", {}).get("source", ""),
        hosts=inspect["HostsPath"],
        resolv_conf=inspect["ResolvConfPath"],
    )
    volumes = {m["Destination"]: m["Source"] for m in inspect["Mounts"] if m["Type"] == "volume"}
    host = HostFacts(
        all_capabilities=_dockerd_all_caps(),
        arch=native_arch(),
        kernel_release=os.uname().release,
        cgroup_v2=os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
        init_path=shutil.which("docker-init") or "",
        hostname=socket.gethostname(),
        host_devices=devices.host_devices,
    )
    return build_spec(
        create,
        image,
        world["rootfs"],
        files,
        container_id=inspect["Id"],
        volumes=volumes,
        host=host,
    )


_DEFAULTS = {"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}


def _mounts(mounts: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The default mounts in order; then the user's, which dockerd sorts by depth only
    (equal depths come in Go map order): their depths in order and the set of them."""
    rows = [(m["destination"], m["type"], m["source"], m.get("options")) for m in mounts]
    k = 0
    while k < len(rows) and (
        (rows[k][0] in _DEFAULTS and rows[k][2] != rows[k][0]) or rows[k][0] == "/sbin/docker-init"
    ):
        k += 1
    tail = rows[k:]
    depths = [len(row[0].rstrip("/").split("/")) for row in tail]
    return rows[:k], depths, sorted(tail, key=lambda r: (len(r[0].split("/")), r[0]))


def key_fields(spec: dict[str, Any]) -> dict[str, Any]:
    p = spec["process"]
    linux = spec["linux"]
    gids = p["user"].get("additionalGids") or []
    resources = json.loads(json.dumps(linux.get("resources", {})))
    resources.get("memory", {}).pop("kernel", None)
    seccomp = linux.get("seccomp")
    return {
        "args": p["args"],
        "env": p["env"],
        "cwd": p["cwd"],
        "user": (p["user"]["uid"], p["user"]["gid"], gids[:1], sorted(gids[1:])),
        "capabilities": p.get("capabilities"),
        "terminal": p.get("terminal", False),
        "rlimits": p.get("rlimits"),
        "oomScoreAdj": p.get("oomScoreAdj"),
        "noNewPrivileges": p.get("noNewPrivileges", False),
        "hostname": spec.get("hostname"),
        "readonly": spec["root"].get("readonly", False),
        "mounts": _mounts(spec["mounts"]),
        "sysctl": linux.get("sysctl"),
        "resources": resources,
        "namespaces": [
            (ns["type"], "path" in ns)
            for ns in linux.get("namespaces", [])
            if not ns.get("path", "").endswith("/netns/default")
        ],
        "devices": linux.get("devices", []),
        "maskedPaths": [
            x for x in linux.get("maskedPaths", []) if x != "/sys/devices/virtual/powercap"
        ],
        "readonlyPaths": linux.get("readonlyPaths", []),
        "rootfsPropagation": linux.get("rootfsPropagation", ""),
        "seccomp": seccomp and (seccomp["defaultAction"], seccomp.get("architectures")),
    }


@pytest.mark.parametrize("case", list(cases("SRC")))
def test_spec_matches_dockerd(world: dict[str, Any], case: str) -> None:
    flags = cases(world["src"])[case]
    inspect, reference = _run(world, "c-" + case, flags)
    ours = _skiff_spec(world, inspect, reference)
    want, got = key_fields(reference), key_fields(ours)
    assert {k: v for k, v in got.items() if v != want[k]} == {
        k: v for k, v in want.items() if v != got[k]
    }, f"{case}: {flags}"


def test_host_devices_walk_matches_runc(world: dict[str, Any]) -> None:
    _, reference = _run(world, "c-devwalk", ["--privileged"])
    assert list(reference["linux"]["devices"]) == [d.to_spec() for d in devices.host_devices()]
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
