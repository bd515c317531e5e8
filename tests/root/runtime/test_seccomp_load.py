"""Loading seccomp filters for real, in forked children only: the test process gets none."""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from skiff.oci.runtime_spec import Seccomp
from skiff.oci.spec_reader import Reader
from skiff.runtime.seccomp import load_seccomp
from skiff.runtime.seccomp_docker import docker_profile_to_oci, native_arch

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.root

DOCKER_PROFILE = Path("/work/shared/specs/docker-default-seccomp.json")


def in_child(fn: Callable[[], object]) -> tuple[int, object]:
    """Run fn in a forked child; (wait status, fn's JSON result or {"error": ...})."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            os.close(r)
            out: object = fn()
        except BaseException as e:
            out, code = {"error": f"{type(e).__name__}: {e}"}, 1
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    return status, json.loads(data) if data else None


def seccomp_mode() -> str:
    with open("/proc/self/status") as f:
        return next(line.split(":")[1].strip() for line in f if line.startswith("Seccomp:"))


def errno_of(call: Callable[[], object]) -> int:
    try:
        call()
    except OSError as e:
        return e.errno or -1
    return 0


def load(data: dict[str, object]) -> None:
    load_seccomp(Seccomp(Reader(data, "linux.seccomp")))


@pytest.fixture(autouse=True)
def _parent_stays_unfiltered() -> object:
    assert seccomp_mode() == "0"
    yield
    assert seccomp_mode() == "0"


def test_mkdir_denied_with_eperm(tmp_path: Path) -> None:
    def child() -> object:
        load(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
            }
        )
        (tmp_path / "file").write_text("still works")
        return {
            "mode": seccomp_mode(),
            "nnp": Path("/proc/self/status").read_text().count("NoNewPrivs:\t0"),
            "mkdir": errno_of(lambda: os.mkdir(tmp_path / "d")),
            "read": (tmp_path / "file").read_text(),
            "pid": os.getpid() > 1,
        }

    status, out = in_child(child)
    assert os.WIFEXITED(status), (status, out)
    # mode 2 = filter; libseccomp's own no_new_privs is off (that is the process spec's)
    assert out == {"mode": "2", "nnp": 1, "mkdir": errno.EPERM, "read": "still works", "pid": True}
    assert not (tmp_path / "d").exists()


def test_errno_ret_and_default_errno_ret() -> None:
    def child() -> object:
        load(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
                    {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
                ],
            }
        )
        return [errno_of(lambda: os.mkdir("/nonexistent/x")), errno_of(os.getcwd)]

    status, out = in_child(child)
    assert os.WIFEXITED(status), (status, out)
    assert out == [errno.ENOSPC, errno.ENOSYS]


def test_kill_process_dies_by_sigsys() -> None:
    def child() -> object:
        load(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}],
            }
        )
        os.getppid()
        return "survived"

    status, out = in_child(child)
    assert os.WIFSIGNALED(status), (status, out)
    assert os.WTERMSIG(status) == signal.SIGSYS
    assert out is None


def test_arg_comparisons(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.write_text("x")
    rules: list[dict[str, object]] = [
        {
            # kill(pid, SIGUSR1) only: EQ on the second argument
            "names": ["kill"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EACCES,
            "args": [{"index": 1, "value": signal.SIGUSR1, "op": "SCMP_CMP_EQ"}],
        },
        {
            # no file creation: (flags & O_CREAT) == O_CREAT; flags are openat's third argument
            "names": ["openat"],
            "action": "SCMP_ACT_ERRNO",
            "args": [
                {
                    "index": 2,
                    "value": os.O_CREAT,
                    "valueTwo": os.O_CREAT,
                    "op": "SCMP_CMP_MASKED_EQ",
                }
            ],
        },
        {
            # two arguments in one rule: ANDed
            "names": ["setpgid"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EDOM,
            "args": [
                {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 100, "op": "SCMP_CMP_GT"},
            ],
        },
    ]

    def child() -> object:
        load({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules})
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        me = os.getpid()
        return {
            "kill_usr1": errno_of(lambda: os.kill(me, signal.SIGUSR1)),
            "kill_usr2": errno_of(lambda: os.kill(me, signal.SIGUSR2)),
            "create": errno_of(lambda: os.open(tmp_path / "new", os.O_WRONLY | os.O_CREAT)),
            "read": errno_of(lambda: os.close(os.open(existing, os.O_RDONLY))),
            "setpgid_big": errno_of(lambda: os.setpgid(0, 1000)),  # both conditions hold
            "setpgid_self": errno_of(lambda: os.setpgid(0, 0)),  # the second does not
        }

    status, out = in_child(child)
    assert os.WIFEXITED(status), (status, out)
    assert out == {
        "kill_usr1": errno.EACCES,
        "kill_usr2": 0,
        "create": errno.EPERM,
        "read": 0,
        "setpgid_big": errno.EDOM,
        "setpgid_self": 0,
    }
    assert not (tmp_path / "new").exists()


def test_unknown_syscall_names_are_skipped() -> None:
    def child() -> object:
        load(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["not_a_syscall", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
                ],
            }
        )
        return errno_of(lambda: os.mkdir("/nonexistent/x"))

    status, out = in_child(child)
    assert os.WIFEXITED(status), (status, out)
    assert out == errno.EPERM


@pytest.mark.skipif(not DOCKER_PROFILE.exists(), reason="no copy of Docker's profile")
def test_docker_default_profile_loads_and_works(tmp_path: Path) -> None:
    # How long it takes is measured by bench/seccomp_load.py, not asserted here.
    profile = json.loads(DOCKER_PROFILE.read_text())
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]

    def child() -> object:
        oci = docker_profile_to_oci(profile, caps, native_arch())
        load(oci)
        (tmp_path / "d").mkdir()  # allowed
        return {
            "unshare": errno_of(unshare_mount_ns),
            "mkdir": (tmp_path / "d").is_dir(),
        }

    status, out = in_child(child)
    assert os.WIFEXITED(status), (status, out)
    assert isinstance(out, dict)
    assert out["mkdir"] is True
    assert out["unshare"] == errno.EPERM  # unshare needs CAP_SYS_ADMIN in Docker's profile


def unshare_mount_ns() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) == -1:  # CLONE_NEWNS; os.unshare is 3.12+
        raise OSError(ctypes.get_errno(), "unshare")
