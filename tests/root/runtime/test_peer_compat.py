"""What dockerd and containerd's shim ask of the runtime beyond the basic lifecycle.

Each test here pins down a difference from runc found by running skiff-runtime
under a real dockerd/containerd (tests/integration/test_runtime_peers.py).
"""

from __future__ import annotations

import json
import os

from .conftest import Runtime


def _memory_limit(runtime: Runtime, cid: str) -> int:
    with open(os.path.join(runtime.root, cid, "state.json")) as f:
        paths = json.load(f)["cgroup_paths"]
    if "memory" in paths:
        name = os.path.join(paths["memory"], "memory.limit_in_bytes")
    else:
        name = os.path.join(next(iter(paths.values())), "memory.max")
    with open(name) as f:
        text = f.read().strip()
    return -1 if text == "max" else int(text)


def test_blkio_weight_zero_is_accepted_as_unset(runtime: Runtime) -> None:
    # dockerd's spec always carries "blockIO": {"weight": 0}.
    bundle = runtime.bundle("w", ["true"])
    runtime.edit(bundle, lambda c: c["linux"].setdefault("resources", {}).update(
        {"blockIO": {"weight": 0}, "cpu": {"shares": 0}}
    ))  # fmt: skip
    assert runtime("run", "--bundle", bundle, "w").returncode == 0


def test_update_resources_from_stdin(runtime: Runtime) -> None:
    # containerd's shim runs `update --resources - ID` for `docker update`.
    bundle = runtime.bundle("u", ["sleep", "60"])
    runtime("run", "--detach", "--bundle", bundle, "u")
    new = {"memory": {"limit": 64 << 20}, "cpu": {"cpus": "", "mems": ""}, "pids": {"limit": 40}}
    runtime("update", "--resources", "-", "u", input=json.dumps(new))
    assert _memory_limit(runtime, "u") == 64 << 20
    runtime("update", "--memory", str(32 << 20), "u")
    assert _memory_limit(runtime, "u") == 32 << 20
    bad = runtime("update", "--resources", "-", "u", input='{"pids": {"limit": "x"}}', check=False)
    assert bad.returncode != 0
    assert "linux.resources.pids.limit" in bad.stderr
    runtime("delete", "--force", "u")
    gone = runtime("update", "--memory", "1000000", "u", check=False)
    assert gone.returncode != 0


def test_systemd_cgroup_flag_maps_slice_prefix_name(runtime: Runtime) -> None:
    # containerd's SystemdCgroup option: `--systemd-cgroup create` with
    # cgroupsPath "slice:prefix:name"; without the flag it would be a plain
    # (odd) relative path under the runtime's own cgroup.
    slice_name = f"skifftest{runtime.test_id}.slice"
    bundle = runtime.bundle("sd", ["sleep", "60"])
    runtime.edit(bundle, lambda c: c["linux"].update(cgroupsPath=f"{slice_name}:test:sd"))
    try:
        runtime("--systemd-cgroup", "run", "--detach", "--bundle", bundle, "sd")
        pid = runtime.state("sd")["pid"]
        with open(f"/proc/{pid}/cgroup") as f:
            assert f"/{slice_name}/test-sd.scope\n" in f.read()
        runtime("delete", "--force", "sd")
    finally:
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            path = os.path.join("/sys/fs/cgroup", hierarchy, slice_name)
            if os.path.isdir(path):
                os.rmdir(path)


# Runs skiff-runtime with every fork's parent side delayed, as a loaded host
# (containerd's shim under a test suite) may delay it: stage 1 then reports
# init's pid only after init has gone on to mount the rootfs and ask for hooks.
SLOW_FORK = """
import os, sys, time
real_fork = os.fork
def slow_fork():
    pid = real_fork()
    if pid:
        time.sleep(0.3)
    return pid
os.fork = slow_fork
from skiff.runtime.cli.main import main
sys.exit(main())
"""


def test_create_keeps_its_protocol_order_when_stage1_is_slow(runtime: Runtime) -> None:
    import subprocess
    import sys

    bundle = runtime.bundle("slow", ["true"])
    argv = [sys.executable, "-c", SLOW_FORK, "--root", str(runtime.root)]
    proc = subprocess.run(
        [*argv, "run", "--bundle", bundle, "slow"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_program_that_cannot_run_fails_create_in_runcs_words(runtime: Runtime) -> None:
    # dockerd turns these create errors into exit codes 126 and 127.
    for name, program, words in (
        ("noexec", "/etc/passwd", 'exec: "/etc/passwd": permission denied'),
        ("dir", "/etc", 'exec: "/etc": permission denied'),
        ("missing", "/nope", 'exec: "/nope": no such file or directory'),
    ):
        bundle = runtime.bundle(name, [program])
        proc = runtime("create", "--bundle", bundle, name, check=False)
        assert proc.returncode != 0
        assert words in proc.stderr
        assert not os.path.exists(os.path.join(runtime.root, name))
