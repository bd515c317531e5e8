"""skiff-runtime's lifecycle against real namespaces and cgroups: create, start, state, kill, delete."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from .conftest import Runtime


def wait_status(rt: Runtime, cid: str, want: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = rt.state(cid)
        if state["status"] == want or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_run_prints_and_passes_the_exit_code(runtime: Runtime) -> None:
    bundle = runtime.bundle("a", ["sh", "-c", "echo hello from $(hostname); exit 3"])
    proc = runtime("run", "--bundle", bundle, "a", check=False)
    assert proc.stdout == "hello from skiff\n"
    assert proc.returncode == 3
    assert not os.listdir(runtime.root)


def test_create_start_state_kill_delete(runtime: Runtime, tmp_path: Any) -> None:
    bundle = runtime.bundle("c1", ["sleep", "60"])
    pid_file = tmp_path / "pid"
    runtime("create", "--bundle", bundle, "--pid-file", str(pid_file), "c1")
    state = runtime.state("c1")
    assert state["status"] == "created"
    assert state["id"] == "c1"
    assert state["bundle"] == bundle
    assert state["pid"] == int(pid_file.read_text())
    assert os.path.exists(f"/proc/{state['pid']}")

    runtime("start", "c1")
    assert runtime.state("c1")["status"] == "running"
    with open(f"/proc/{state['pid']}/cmdline", "rb") as f:
        cmdline = f.read()
    assert cmdline.split(b"\0")[0] == b"sleep"

    assert runtime("start", "c1", check=False).returncode != 0
    refused = runtime("delete", "c1", check=False)
    assert refused.returncode != 0
    assert "not stopped" in refused.stderr
    assert runtime.state("c1")["status"] == "running"

    runtime("kill", "c1", "KILL")
    assert wait_status(runtime, "c1", "stopped")["status"] == "stopped"
    runtime("delete", "c1")
    assert runtime("state", "c1", check=False).returncode != 0
    assert runtime.state_pid_gone(state["pid"])


def test_create_twice_is_refused_and_leaves_the_first_alone(runtime: Runtime) -> None:
    bundle = runtime.bundle("dup", ["sleep", "60"])
    runtime("create", "--bundle", bundle, "dup")
    pid = runtime.state("dup")["pid"]
    again = runtime("create", "--bundle", bundle, "dup", check=False)
    assert again.returncode != 0
    assert "exists" in again.stderr
    state = runtime.state("dup")
    assert state["status"] == "created"
    assert state["pid"] == pid
    runtime("delete", "dup")


def test_delete_force_of_a_running_container(runtime: Runtime) -> None:
    bundle = runtime.bundle("f", ["sleep", "60"])
    runtime("run", "--detach", "--bundle", bundle, "f")
    pid = runtime.state("f")["pid"]
    runtime("delete", "--force", "f")
    assert not os.path.exists(runtime.root / "f")
    assert runtime.state_pid_gone(pid)


def test_kill_all_and_ps(runtime: Runtime) -> None:
    bundle = runtime.bundle("k", ["sh", "-c", "sleep 60 & sleep 60 & wait"])
    runtime("run", "--detach", "--bundle", bundle, "k")
    deadline = time.monotonic() + 5
    pids: list[int] = []
    while len(pids) < 3 and time.monotonic() < deadline:
        pids = json.loads(runtime("ps", "--format", "json", "k").stdout)
    assert len(pids) == 3
    table = runtime("ps", "k").stdout
    assert "sleep 60" in table
    runtime("kill", "--all", "k", "9")
    assert wait_status(runtime, "k", "stopped")["status"] == "stopped"
    runtime("delete", "k")


def test_pause_and_resume(runtime: Runtime) -> None:
    bundle = runtime.bundle("p", ["sleep", "60"])
    runtime("run", "--detach", "--bundle", bundle, "p")
    runtime("pause", "p")
    assert runtime.state("p")["status"] == "paused"
    runtime("resume", "p")
    assert runtime.state("p")["status"] == "running"
    runtime("delete", "--force", "p")


def test_list(runtime: Runtime) -> None:
    bundle = runtime.bundle("l", ["sleep", "60"])
    runtime("create", "--bundle", bundle, "l")
    rows = json.loads(runtime("list", "--format", "json").stdout)
    assert [(r["id"], r["status"]) for r in rows] == [("l", "created")]
    assert "created" in runtime("list").stdout
    runtime("delete", "l")


def test_exec_joins_the_container(runtime: Runtime, tmp_path: Any) -> None:
    bundle = runtime.bundle("e", ["sleep", "60"], hostname="inside")
    runtime("run", "--detach", "--bundle", bundle, "e")
    out = runtime("exec", "e", "sh", "-c", "hostname; echo $$; cat /proc/1/cmdline").stdout
    hostname, pid, cmdline = out.split("\n", 2)
    assert hostname == "inside"
    assert int(pid) > 1
    assert cmdline.startswith("sleep")

    process = {
        "cwd": "/tmp",
        "args": ["sh", "-c", "pwd; id -u; exit 7"],
        "env": ["A=1"],
        "user": {"uid": 65534, "gid": 65534},
    }
    (tmp_path / "process.json").write_text(json.dumps(process))
    proc = runtime("exec", "--process", str(tmp_path / "process.json"), "e", check=False)
    assert proc.stdout == "/tmp\n65534\n"
    assert proc.returncode == 7

    missing = runtime("exec", "e", "no-such-binary", check=False)
    assert missing.returncode != 0
    assert "no-such-binary" in missing.stderr
    runtime("delete", "--force", "e")


def test_exec_without_what_create_recorded_reads_the_config(runtime: Runtime) -> None:
    """exec uses the namespaces and seccomp key create put in state.json; a state
    without them (an older create), or a compiled program gone from the cache,
    makes it read config.json instead, with the same result."""
    bundle = runtime.bundle("old", ["sleep", "60"], hostname="older")
    runtime("run", "--detach", "--bundle", bundle, "old")
    state_file = runtime.root / "old" / "state.json"
    doc = json.loads(state_file.read_text())
    assert doc["namespaces"]  # recorded by create
    assert isinstance(doc["seccomp_key"], str)
    del doc["namespaces"], doc["seccomp_key"]
    state_file.write_text(json.dumps(doc))
    script = "hostname; grep Seccomp: /proc/self/status"
    out = runtime("exec", "old", "sh", "-c", script).stdout.split()
    assert out[0] == "older"
    seccomp_mode = out[-1]

    doc["namespaces"], doc["seccomp_key"] = ["mount", "uts", "pid"], "0" * 64  # not cached
    state_file.write_text(json.dumps(doc))
    assert runtime("exec", "old", "sh", "-c", script).stdout.split() == [
        "older",
        "Seccomp:",
        seccomp_mode,
    ]
    runtime("delete", "--force", "old")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["process"]["user"].__setitem__("uid", "root"), "process.user.uid"),
        (lambda c: c["root"].__setitem__("path", "/no/such/rootfs"), "root.path"),
        (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "linux.namespaces[6].type"),
        (
            lambda c: c["process"].__setitem__(
                "rlimits", [{"type": "RLIMIT_X", "soft": 1, "hard": 1}]
            ),
            "process.rlimits[0].type",
        ),
        (
            lambda c: c["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "x"}),
            "mounts[7]",
        ),
        (lambda c: c["process"].__setitem__("args", ["/no/such/program"]), "/no/such/program"),
    ],
)
def test_bad_config_names_the_field_and_leaves_nothing(
    runtime: Runtime, edit: Any, field: str
) -> None:
    bundle = runtime.bundle("bad", ["true"])
    runtime.edit(bundle, edit)
    proc = runtime("create", "--bundle", bundle, "bad", check=False)
    assert proc.returncode != 0
    assert field in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (runtime.root / "bad").exists()
    assert not runtime.cgroup_dirs()


def test_invalid_json_is_refused(runtime: Runtime) -> None:
    bundle = runtime.bundle("j", ["true"])
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write("{not json")
    proc = runtime("create", "--bundle", bundle, "j", check=False)
    assert proc.returncode != 0
    assert "not valid JSON" in proc.stderr
    assert not (runtime.root / "j").exists()


def test_unknown_container(runtime: Runtime) -> None:
    for verb in (["state"], ["start"], ["kill"], ["delete"], ["pause"], ["exec", "--tty=false"]):
        proc = runtime(*verb, "ghost", check=False)
        assert proc.returncode != 0, verb
    assert runtime("delete", "--force", "ghost", check=False).returncode == 0


def test_spec_writes_a_default_config(tmp_path: Any, runtime: Runtime) -> None:
    runtime("spec", "--bundle", str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["process"]["args"] == ["sh"]
    assert runtime("spec", "--bundle", str(tmp_path), check=False).returncode != 0
    features = json.loads(runtime("features").stdout)
    assert "mount" in features["linux"]["namespaces"]


def test_parallel_runs_do_not_trip_over_each_other(runtime: Runtime) -> None:
    # Under load, stage-1's "pid" and init's first message raced on one channel.
    from concurrent.futures import ThreadPoolExecutor

    bundles = [runtime.bundle(f"par{i}", ["sh", "-c", f"exit {i}"]) for i in range(12)]

    def run(i: int) -> int:
        return runtime("run", "--bundle", bundles[i], f"par{i}", check=False).returncode

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(run, range(12)))
    assert codes == list(range(12))
    assert not os.listdir(runtime.root)
