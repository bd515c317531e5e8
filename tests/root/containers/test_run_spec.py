"""A spec from build_spec runs under skiff-runtime on a busybox rootfs with Docker's
defaults in force: capabilities, seccomp, masked and read-only paths, hostname, env, user."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from skiff.api.container_create import parse_create
from skiff.containers.spec import ContainerFiles, HostFacts, build_spec
from skiff.testing.bundles import make_busybox_rootfs
from skiff.testing.containers import make_image
from skiff.testing.peers import remove_cgroups

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]

DOCKER_DEFAULT_CAPS = "00000000a80425fb"
PROBE = (
    "grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; "
    "echo host=$(hostname); echo env=$FOO,$HOSTNAME; echo id=$(id -u):$(id -g):$(id -G); "
    "echo timers=$(wc -c < /proc/timer_list); echo firmware=$(ls /sys/firmware | wc -l); "
    "(echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo procsys=rw || echo procsys=ro; "
    "unshare -m true 2>/dev/null && echo unshare=ok || echo unshare=denied; "
    "echo cwd=$(pwd)"
)


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    base = tempfile.mkdtemp(prefix="/tmp/cs-")
    rootfs = make_busybox_rootfs(os.path.join(base, "rootfs"))
    with open(os.path.join(rootfs, "etc/group"), "a") as f:
        f.write("wheel:x:10:nobody\n")
    files = {}
    for name, text in (
        ("hostname", "web\n"),
        ("hosts", "127.0.0.1 localhost\n"),
        ("resolv.conf", ""),
    ):
        files[name] = os.path.join(base, name)
        with open(files[name], "w") as f:
            f.write(text)
    cgroup = f"skiff-cspec-{uuid.uuid4().hex[:8]}"
    try:
        yield {"base": base, "rootfs": rootfs, "files": files, "cgroup": cgroup}
    finally:
        remove_cgroups(cgroup)
        shutil.rmtree(base, ignore_errors=True)


def run(world: dict[str, Any], body: dict[str, Any]) -> dict[str, str]:
    container_id = uuid.uuid4().hex * 2
    create = parse_create({"Image": "busybox", "Cmd": ["sh", "-c", PROBE], **body})
    image = make_image(env=["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FOO=img"], working_dir="/srv")
    files = world["files"]
    spec = build_spec(
        create,
        image,
        world["rootfs"],
        ContainerFiles(files["hostname"], files["hosts"], files["resolv.conf"]),
        container_id=container_id,
        host=HostFacts.detect(),
        cgroup_parent="/" + world["cgroup"],
    )
    bundle = os.path.join(world["base"], container_id[:12])
    os.mkdir(bundle)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    state = os.path.join(world["base"], "state")
    argv = [sys.executable, "-m", "skiff.runtime.cli.main", "--root", state]
    proc = subprocess.run(
        [*argv, "run", "--bundle", bundle, container_id[:12]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    subprocess.run(
        [*argv, "delete", "--force", container_id[:12]], capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.replace(":\t", "=").partition("=")
        out[key.strip()] = value.strip()
    return out


def test_docker_defaults_in_force(world: dict[str, Any]) -> None:
    out = run(world, {"Hostname": "web"})
    assert out["CapEff"] == DOCKER_DEFAULT_CAPS
    assert out["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert out["Seccomp"] == "2"
    assert out["NoNewPrivs"] == "0"
    assert out["host"] == "web"
    assert out["env"] == "img,web"
    assert out["id"] == "0:0:0"
    assert out["timers"] == "0"  # masked: /dev/null over it
    assert out["firmware"] == "0"  # masked: an empty read-only tmpfs
    assert out["procsys"] == "ro"
    assert out["unshare"] == "denied"  # no CAP_SYS_ADMIN, and seccomp forbids it
    assert out["cwd"] == "/srv"  # made in the rootfs


def test_user_groups_and_no_new_privileges(world: dict[str, Any]) -> None:
    body = {
        "User": "nobody",
        "Env": ["FOO=mine"],
        "HostConfig": {"GroupAdd": ["50"], "SecurityOpt": ["no-new-privileges"]},
    }
    out = run(world, body)
    assert out["id"] == "65534:65534:65534 10 50"
    assert out["CapEff"] == "0000000000000000"
    assert out["CapBnd"] == DOCKER_DEFAULT_CAPS
    assert out["NoNewPrivs"] == "1"
    assert out["env"].startswith("mine,")


def test_cap_add_and_unconfined(world: dict[str, Any]) -> None:
    out = run(
        world, {"HostConfig": {"CapAdd": ["SYS_ADMIN"], "SecurityOpt": ["seccomp=unconfined"]}}
    )
    assert out["Seccomp"] == "0"
    assert int(out["CapEff"], 16) == int(DOCKER_DEFAULT_CAPS, 16) | (1 << 21)
    assert out["unshare"] == "ok"
